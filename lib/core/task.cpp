// Design: each supervised task is one shared state holding its factory and policy; the
// co_spawn completion handler is the only place that sees how a run ended, so logging,
// counting and the restart-or-stop decision live there and nothing reaches io_context::run().
// A restart is scheduled on a timer of the task's executor: io_context::stop() abandons a
// pending restart together with everything else.
#include "core/task.hpp"

#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <memory>

namespace cwhook::task {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

struct supervised {
    net::any_io_executor ex;
    std::string name;
    factory make;
    policy p;
    metrics::counter* failures = nullptr;
    metrics::counter* restarts = nullptr;
    net::steady_timer timer;
    clock::time_point started{};
    unsigned in_row = 0; // failures without a long run in between

    supervised(net::any_io_executor e, std::string n, factory f, policy pol)
        : ex(std::move(e)), name(std::move(n)), make(std::move(f)), p(std::move(pol)), timer(ex)
    {
        if (p.metrics != nullptr) {
            const auto labels = fmt::format("task=\"{}\"", name);
            failures = &p.metrics->get_counter("cwhook_task_failures_total", labels);
            restarts = &p.metrics->get_counter("cwhook_task_restarts_total", labels);
        }
    }
};

std::string describe(const std::exception_ptr& e)
{
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown exception";
    }
}

void launch(const std::shared_ptr<supervised>& s);

void finished(const std::shared_ptr<supervised>& s, const std::exception_ptr& e)
{
    if (!e) {
        log::debug("background task ended", {{"task", s->name}});
        return;
    }
    const std::string what = describe(e);
    log::error("background task failed", {{"task", s->name}, {"error", what}});
    if (s->failures != nullptr) {
        s->failures->inc();
    }
    if (s->p.action == on_failure::stop) {
        if (s->p.stop) {
            s->p.stop(fmt::format("{} failed: {}", s->name, what));
        }
        return;
    }
    // A loop that ran for a while before failing starts its backoff afresh.
    if (clock::now() - s->started >= s->p.max_backoff) {
        s->in_row = 0;
    }
    const auto delay = restart_delay(s->p, s->in_row++);
    log::warn("restarting background task",
              {{"task", s->name}, {"delay_ms", static_cast<std::int64_t>(delay.count())}});
    s->timer.expires_after(delay);
    s->timer.async_wait([s](boost::system::error_code ec) {
        if (ec) {
            return;
        }
        if (s->restarts != nullptr) {
            s->restarts->inc();
        }
        launch(s);
    });
}

void launch(const std::shared_ptr<supervised>& s)
{
    s->started = clock::now();
    // The factory runs inside the spawned coroutine, so a throwing factory is a failed run.
    net::co_spawn(
        s->ex, [s] { return s->make(); }, [s](const std::exception_ptr& e) { finished(s, e); });
}

} // namespace

void spawn_supervised(const net::any_io_executor& ex, std::string name, factory make, policy p)
{
    launch(std::make_shared<supervised>(ex, std::move(name), std::move(make), std::move(p)));
}

std::chrono::milliseconds restart_delay(const policy& p, unsigned in_row)
{
    const auto cap = std::max<std::int64_t>(p.max_backoff.count(), 0);
    std::int64_t d = std::max<std::int64_t>(p.backoff.count(), 0);
    for (unsigned i = 0; i < in_row && d < cap; ++i) {
        d *= 2;
    }
    return std::chrono::milliseconds(std::min(d, cap));
}

} // namespace cwhook::task
