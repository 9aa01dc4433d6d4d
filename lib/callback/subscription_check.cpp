#include "callback/subscription_check.hpp"

#include "core/log.hpp"
#include "core/task.hpp"
#include "manage/sync.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>

namespace cwhook::callback {

namespace net = boost::asio;

struct subscription_check::state : std::enable_shared_from_this<subscription_check::state> {
    net::any_io_executor ex;
    manage::api& api;
    std::vector<manage::subscription> desired;
    std::chrono::milliseconds interval;
    bool auto_heal;
    metrics::registry& registry;
    metrics::gauge& missing;
    metrics::gauge& inactive;
    metrics::counter& checks_ok;
    metrics::counter& checks_failed;
    metrics::counter& healed;
    net::steady_timer timer;
    std::atomic<bool> stopped{false};

    state(net::any_io_executor e, manage::api& a, std::vector<manage::subscription> d, std::chrono::milliseconds i,
          bool heal, metrics::registry& m)
        : ex(std::move(e)), api(a), desired(std::move(d)), interval(i), auto_heal(heal), registry(m),
          missing(m.get_gauge("cwhook_subscriptions_missing")), inactive(m.get_gauge("cwhook_subscriptions_inactive")),
          checks_ok(m.get_counter("cwhook_subscription_checks_total", "outcome=\"ok\"")),
          checks_failed(m.get_counter("cwhook_subscription_checks_total", "outcome=\"failed\"")),
          healed(m.get_counter("cwhook_subscription_repairs_total")), timer(ex)
    {
    }

    net::awaitable<bool> round()
    {
        const manage::conditions everything;
        auto actual = co_await api.list_callbacks(everything);
        if (!actual) {
            checks_failed.inc();
            log::warn("subscription check failed", {{"error", actual.error().message}});
            co_return false;
        }
        const auto plan = manage::make_plan(desired, *actual, false);
        const auto n_missing = static_cast<std::int64_t>(plan.count(manage::action::create));
        const auto n_inactive = static_cast<std::int64_t>(plan.count(manage::action::reenable));
        missing.set(n_missing);
        inactive.set(n_inactive);
        checks_ok.inc();
        if (n_missing + n_inactive > 0) {
            log::warn("subscriptions missing or inactive in Manage",
                      {{"missing", n_missing}, {"inactive", n_inactive}, {"auto_heal", auto_heal ? "on" : "off"}});
        }
        if (auto_heal && plan.has_changes()) {
            const auto results = co_await manage::apply_plan(api, plan);
            std::int64_t ok = 0;
            for (const auto& r : results) {
                ok += r.ok ? 1 : 0;
            }
            healed.inc(static_cast<std::uint64_t>(ok));
            if (ok == static_cast<std::int64_t>(results.size())) {
                missing.set(0);
                inactive.set(0);
            }
            const auto failed_n = static_cast<std::int64_t>(results.size()) - ok;
            log::info("subscriptions repaired", {{"changes", ok}, {"failed", failed_n}});
        }
        co_return true;
    }

    net::awaitable<void> run()
    {
        auto self = shared_from_this();
        while (!stopped) {
            co_await round();
            if (stopped) {
                break;
            }
            timer.expires_after(interval);
            co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        }
    }
};

subscription_check::subscription_check(net::any_io_executor ex, manage::api& api,
                                       std::vector<manage::subscription> desired, std::chrono::milliseconds interval,
                                       bool auto_heal, metrics::registry& metrics)
    : state_(std::make_shared<state>(std::move(ex), api, std::move(desired), interval, auto_heal, metrics))
{
}

subscription_check::~subscription_check()
{
    state_->stopped = true;
}

void subscription_check::start()
{
    task::policy p;
    p.metrics = &state_->registry;
    task::spawn_supervised(
        state_->ex, "subscription_check", [st = state_] { return st->run(); }, std::move(p));
}

void subscription_check::stop()
{
    state_->stopped = true;
    net::post(state_->ex, [st = state_] { st->timer.cancel(); });
}

net::awaitable<bool> subscription_check::run_once()
{
    auto st = state_;
    co_return co_await st->round();
}

} // namespace cwhook::callback
