#include "catchup/service.hpp"

#include "core/await.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>

namespace cwhook::catchup {

namespace net = boost::asio;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::string default_instance_name()
{
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') {
        return "cwhook";
    }
    return name;
}

struct service::state : std::enable_shared_from_this<service::state> {
    state(net::any_io_executor ex, store::event_store& st, engine& en, settings s, std::string i)
        : store(st), eng(en), cfg(std::move(s)), instance(std::move(i)), timer(std::move(ex))
    {
    }

    net::awaitable<bool> beat(bool clean)
    {
        auto r = co_await await_completion<result<void>>(
            [&](auto done) { return store.beat(instance, now_us(), clean, std::move(done)); });
        co_return r&&* r;
    }

    // Whether this instance was away longer than gap_after since its last beat or clean stop.
    net::awaitable<bool> was_away()
    {
        auto rows = co_await await_completion<result<std::vector<store::heartbeat>>>(
            [&](auto done) { return store.read_heartbeats(std::move(done)); });
        if (!rows || !*rows) {
            co_return false;
        }
        const auto gap = duration_cast<microseconds>(cfg.gap_after).count();
        for (const auto& h : **rows) {
            if (h.instance == instance) {
                const auto last = std::max(h.beat_at_us, h.clean_stop_at_us);
                co_return now_us() - last > gap;
            }
        }
        co_return false; // never ran here: nothing was missed by this instance
    }

    net::awaitable<void> run(const char* trigger)
    {
        run_options o;
        o.trigger = trigger;
        co_await eng.run(o);
    }

    net::awaitable<void> reconcile()
    {
        run_options o;
        o.trigger = "reconcile";
        co_await eng.reconcile(o);
    }

    net::awaitable<void> loop()
    {
        auto self = shared_from_this();
        const bool away = co_await was_away();
        co_await beat(false);
        if (stopped) {
            co_return;
        }
        co_await run(away ? "gap" : "start");
        if (!cfg.reconcile_deletes.empty() && !stopped) {
            co_await reconcile();
        }
        auto next_run = std::chrono::steady_clock::now() + cfg.interval;
        auto next_reconcile = std::chrono::steady_clock::now() + cfg.reconcile_interval;
        while (!stopped) {
            const auto now = std::chrono::steady_clock::now();
            const auto wait = std::min({cfg.heartbeat_interval, duration_cast<milliseconds>(next_run - now),
                                        duration_cast<milliseconds>(next_reconcile - now)});
            // The wall clock across the wait: a jump past gap_after means this process was not
            // running (suspended host, SIGSTOP) and callbacks may have been lost meanwhile.
            const auto wall_before = now_us();
            timer.expires_after(std::max(wait, milliseconds(0)));
            boost::system::error_code ec;
            co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
            if (stopped) {
                break;
            }
            const auto late =
                now_us() - wall_before - duration_cast<microseconds>(std::max(wait, milliseconds(0))).count();
            co_await beat(false);
            if (late > duration_cast<microseconds>(cfg.gap_after).count()) {
                log::warn("catch-up: this process was away; looking for missed changes",
                          {{"away_s", late / 1'000'000}});
                co_await run("gap");
                next_run = std::chrono::steady_clock::now() + cfg.interval;
            } else if (std::chrono::steady_clock::now() >= next_run) {
                co_await run("interval");
                next_run = std::chrono::steady_clock::now() + cfg.interval;
            }
            if (!cfg.reconcile_deletes.empty() && std::chrono::steady_clock::now() >= next_reconcile && !stopped) {
                co_await reconcile();
                next_reconcile = std::chrono::steady_clock::now() + cfg.reconcile_interval;
            }
        }
    }

    store::event_store& store;
    engine& eng;
    settings cfg;
    std::string instance;
    net::steady_timer timer;
    std::atomic<bool> stopped{false};
    bool started = false;
};

service::service(net::any_io_executor ex, store::event_store& store, engine& e, settings s, std::string instance)
    : s_(std::make_shared<state>(std::move(ex), store, e, std::move(s), std::move(instance)))
{
}

service::~service()
{
    stop();
}

void service::start()
{
    if (s_->started) {
        return;
    }
    s_->started = true;
    net::co_spawn(s_->timer.get_executor(), s_->loop(), net::detached);
}

void service::stop()
{
    if (s_->stopped.exchange(true) || !s_->started) {
        return;
    }
    net::post(s_->timer.get_executor(), [s = s_] { s->timer.cancel(); });
    // The clean stop is a direct store write (the io threads may be stopping): waited for here.
    auto written = std::make_shared<std::promise<void>>();
    auto fut = written->get_future();
    const bool queued = s_->store.beat(s_->instance, now_us(), true, [written](result<void>) { written->set_value(); });
    if (queued) {
        fut.wait_for(std::chrono::seconds(5));
    }
}

} // namespace cwhook::catchup
