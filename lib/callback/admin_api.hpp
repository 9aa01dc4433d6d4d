// The admin HTTP API on its own listener: stored events (filters as query parameters, keyset
// pagination), one event, its raw body, replay jobs, the rejected requests, and the
// forwarding outbox (deliveries, their retry, destinations and their pause). Every request
// on the router it is added to (whatever the route, /metrics included) passes, in this order:
// the Host check (421), the Origin check (403), a JSON content type for state-changing
// methods (415), and `Authorization: Bearer <token>` or the web console's session cookie (401;
// with the cookie, a state-changing request also needs the session's X-CSRF-Token, else 403).
// See admin_policy.hpp for why, and admin_ui.hpp for the console (/ui/) and its sessions.
// Thread-safe: handlers run on the server's threads and never touch the database there; a
// thread of its own owns the API's connection (queries, event loads and replay history),
// replay jobs run on their own strands, and feed long-polls wait on timers between looks.
#pragma once

#include "callback/key_cache.hpp"
#include "callback/key_url.hpp"
#include "callback/settings.hpp"
#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "forward/ping.hpp"
#include "http/router.hpp"
#include "manage/api.hpp"
#include "manage/settings.hpp"

#include "store/settings.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::callback {

// Name of the thread that owns the admin API's database connection (top -H, /proc).
inline constexpr std::string_view admin_db_thread_name = "cwhook-admin-db";

class admin_api {
public:
    // token: the bearer token in force (configured or generated; never empty).
    // storage: the database the store already opened (and migrated); PostgreSQL gets
    // storage.pool reader connections.
    static boost::system::result<std::unique_ptr<admin_api>, std::string>
    create(const admin_settings& s, std::string_view token, const store::settings& storage, boost::asio::io_context& ioc,
           client::https_client& client, metrics::registry& metrics);
    ~admin_api();

    // GET /api/events, /api/events/{id} (with its deliveries), /api/events/{id}/raw,
    // POST /api/events/replay, POST /api/events/reverify (with set_reverifier()),
    // GET /api/replays/{job}, GET /api/rejections, /api/rejections/{id}, GET /api/feed,
    // GET /api/deliveries, /api/deliveries/{id}, POST /api/deliveries/retry,
    // GET /api/destinations, POST /api/destinations/{name}/pause, /resume, /test (with
    // set_destination_test()), GET /api/stats, GET /api/subscriptions and POST
    // /api/subscriptions/sync (with set_subscriptions()), the web console under /ui/ (admin_ui.hpp); and
    // the gate that guards every route of `r`, also those added later.
    void add_routes(http::router& r);

    // Enables POST /api/events/reverify with the daemon's key cache and policy (before
    // add_routes). wait: how long one row may wait for its key.
    void set_reverifier(key_cache& keys, const key_url_policy& policy, std::chrono::milliseconds wait);

    // Enables POST /api/destinations/{name}/test: `test` sends the signed ping
    // (forward/ping.hpp) to the destination of that name in the configuration in force;
    // nullopt when there is none. It runs on a server thread and must not block.
    using destination_test =
        std::function<boost::asio::awaitable<std::optional<forward::ping_result>>(std::string name)>;
    void set_destination_test(destination_test test);

    // Enables GET /api/subscriptions and POST /api/subscriptions/sync (before add_routes):
    // the declared subscriptions against what Manage holds through `manage` (which must outlive
    // the API), or, when manage is nullptr, an answer naming why_not (the missing keys).
    void set_subscriptions(manage::api* manage, std::vector<manage::subscription> desired, std::string why_not);

    // The listener's bound addresses (after port 0 is resolved), accepted as Host. Call
    // before the server's threads run.
    void set_listener(const std::vector<boost::asio::ip::tcp::endpoint>& bound);

    // ---- The feed: GET /api/feed?after=<cursor>|latest&limit=N&wait=<duration> (long-poll).
    // Forwardable events were committed by this process: waiting feed requests look now.
    // Thread-safe and cheap (call it from the store's writer thread, on_forwardable).
    void notify_feed();
    // Shutdown, before the listener drains: waiting feed requests answer now with what they
    // have, later ones do not wait.
    void end_feed_waits();

    struct impl;

private:
    explicit admin_api(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

// True when text ("host:port") names a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_listen(std::string_view text);

} // namespace cwhook::callback
