// GET /api/subscriptions and POST /api/subscriptions/sync of the admin API: the configuration's
// [[subscriptions]] next to what Manage holds (missing, inactive, extra), as the plan
// `cwhook subscriptions sync` would carry out, and applying that plan once the operator has
// seen it. Internal to lib/callback.
// Thread-safe: handlers run on the server's threads; one apply at a time (a second answers 409).
#pragma once

#include "core/metrics.hpp"
#include "http/router.hpp"
#include "manage/api.hpp"
#include "manage/settings.hpp"
#include "manage/sync.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::callback::detail {

class admin_subscriptions {
public:
    // cwhook_subscriptions_missing / _inactive, which the periodic check sets too: every look
    // at Manage from here (a plan shown, a plan applied) brings them up to date.
    struct gauges {
        metrics::gauge& missing;
        metrics::gauge& inactive;
    };

    // api: nullptr when [manage] lacks REST credentials; `why_not` then names the keys.
    admin_subscriptions(manage::api* api, std::vector<manage::subscription> desired, std::string why_not, gauges g);

    // ?prune=true|false: the plan, with "plan_id" (its digest) and the counts by state.
    boost::asio::awaitable<http::response> show(http::request& req);
    // {"plan_id":"...","prune":bool}: applies the plan when it is still the one shown (else
    // 409 plan_changed, nothing done).
    boost::asio::awaitable<http::response> sync(http::request& req);

private:
    void record(const manage::plan& p, const std::vector<manage::applied>& results);
    // The view's listing of Manage's callbacks: reused for listing_reuse, so that reloads and
    // scripts polling the view cost Manage at most one list per interval. An apply always
    // lists afresh (that listing then serves the view) and forgets it once it changed Manage.
    boost::asio::awaitable<manage::outcome<std::vector<manage::callback>>> list_for_view();
    void remember(const std::vector<manage::callback>& entries);
    void forget();

    static constexpr std::chrono::seconds listing_reuse{2};
    struct listing {
        std::chrono::steady_clock::time_point at;
        std::vector<manage::callback> entries;
    };
    std::mutex listing_mutex_;
    std::optional<listing> listing_; // guarded by listing_mutex_

    manage::api* api_;
    std::vector<manage::subscription> desired_;
    std::string why_not_;
    gauges gauges_;
    std::atomic<bool> applying_{false};
};

} // namespace cwhook::callback::detail
