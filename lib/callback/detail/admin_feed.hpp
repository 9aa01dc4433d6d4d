// GET /api/feed of the admin API: pages of the feed (events/feed.hpp) and long-polls that wait
// for new positions without holding a database thread. Internal to lib/callback.
// Thread-safe: serve() runs on the server's threads, notify() and stop() from any thread.
#pragma once

#include "core/metrics.hpp"
#include "http/router.hpp"
#include "store/db_worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>

namespace cwhook::callback::detail {

// The longest `wait` a request may ask for. The server bounds reads and writes, not the time
// a handler takes, so the admin listener does not cut a long-poll; a reverse proxy in front
// must allow this long plus a second (nginx: proxy_read_timeout 65s).
inline constexpr std::chrono::seconds max_feed_wait{60};
// How often a waiting request looks at the database: commits of this process wake it at once
// (notify()), other instances' commits and other writers are seen at the next look.
inline constexpr std::chrono::milliseconds feed_poll_interval{250};

class admin_feed {
public:
    admin_feed(store::db_worker& db, boost::asio::io_context& ioc, metrics::registry& metrics);
    ~admin_feed();
    admin_feed(const admin_feed&) = delete;
    admin_feed& operator=(const admin_feed&) = delete;

    // Forwardable events committed: waiting requests look at the database now. Cheap (a
    // mutex, a counter, and the waiting requests' completions posted); never blocks.
    void notify();
    // Shutdown: waiting requests answer now with what they have, later ones do not wait.
    void stop();

    // GET /api/feed?after=<cursor>|latest&limit=N&wait=<duration>.
    boost::asio::awaitable<http::response> serve(http::request& req);

    struct notifier;

private:
    store::db_worker& db_;
    boost::asio::io_context& ioc_;
    metrics::gauge& waiting_;
    std::shared_ptr<notifier> notifier_;
};

} // namespace cwhook::callback::detail
