// The admin HTTP API on its own listener: stored events (filters as query parameters, keyset
// pagination), one event, its raw body, replay jobs and the rejected requests. Every route it
// adds, and any route wrapped with guarded(), requires `Authorization: Bearer <admin.token>`
// when a token is configured (the application refuses a non-loopback listener without one).
// Thread-safe: handlers run on the server's threads; the database connection is shared under
// a mutex (queries are single indexed pages), replay jobs run on their own strands.
#pragma once

#include "callback/settings.hpp"
#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>

namespace cwhook::callback {

class admin_api {
public:
    // db_path: the database the store already opened (and migrated).
    static boost::system::result<std::unique_ptr<admin_api>, std::string>
    create(const admin_settings& s, const std::string& db_path, boost::asio::io_context& ioc,
           client::https_client& client, metrics::registry& metrics);
    ~admin_api();

    // GET /api/events, /api/events/{id}, /api/events/{id}/raw, POST /api/events/replay,
    // GET /api/replays/{job}, GET /api/rejections, /api/rejections/{id}.
    void add_routes(http::router& r);

    // h behind the bearer-token check: 401 {"error":"unauthorized"} counted in
    // cwhook_admin_unauthorized_total, compared in constant time.
    http::handler guarded(http::handler h);

    struct impl;

private:
    explicit admin_api(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

// True when text ("host:port") names a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_listen(std::string_view text);

} // namespace cwhook::callback
