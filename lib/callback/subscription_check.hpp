// The daemon's periodic look at the declared subscriptions ([[subscriptions]]): every
// manage.check_interval it lists system/callbacks and plans a sync (without prune). A missing
// or inactive subscription logs a warning and shows in the gauges
// cwhook_subscriptions_missing / cwhook_subscriptions_inactive; with manage.auto_heal the plan
// is applied. Runs as one coroutine on the application's executor.
// Thread-safe: start()/stop() from any thread.
#pragma once

#include "core/metrics.hpp"
#include "manage/api.hpp"
#include "manage/settings.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace cwhook::callback {

class subscription_check {
public:
    subscription_check(boost::asio::any_io_executor ex, manage::api& api, std::vector<manage::subscription> desired,
                       std::chrono::milliseconds interval, bool auto_heal, metrics::registry& metrics);
    ~subscription_check();

    void start(); // first round at once, then every interval
    void stop();  // the loop ends at its next wake-up

    // One round (tests): true when the check itself succeeded.
    boost::asio::awaitable<bool> run_once();

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::callback
