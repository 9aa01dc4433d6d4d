// The HTTP/HTTPS server: listeners, one coroutine session per connection (on its own strand),
// per-operation deadlines, header/body limits, a connection cap, and graceful drain.
// Knows nothing about callbacks: requests are dispatched through a router.
// Thread-safe: start()/shutdown() from any thread; sessions run on the io_context's threads.
#pragma once

#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/task.hpp"
#include "http/address.hpp"
#include "http/router.hpp"
#include "http/settings.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::beast::test {
template <class Executor>
class basic_stream;
} // namespace boost::beast::test

namespace cwhook::http {

class server {
public:
    server(boost::asio::io_context& ioc, settings s, std::shared_ptr<router> routes,
           std::shared_ptr<boost::asio::ssl::context> tls, metrics::registry& metrics);
    ~server();

    // How an accept loop that throws is handled (start() and rebind() run one per listener).
    // Default: restarted after a backoff, counted as task "accept" in this server's metrics.
    // Call before start().
    void supervise_accept(std::string task_name, task::policy p);

    // Binds every listener and starts accepting. Errors name the address and the reason.
    boost::system::result<void, std::string> start();

    // Certificate renewal: connections accepted from now on use `tls`; open ones keep theirs.
    // Returns the context it replaces.
    std::shared_ptr<boost::asio::ssl::context> set_tls_context(std::shared_ptr<boost::asio::ssl::context> tls);
    // Reload: sizes, deadlines, the connection caps and trusted proxies from `s` apply to
    // connections accepted from now on (open ones keep theirs). Listeners are not changed.
    void set_limits(const settings& s);
    // Reload: binds the listeners that are new in `listen` / `tls_listen` (all or none: on
    // an error nothing changes) and closes the ones no longer named. Listeners present in
    // both keep running. Refused under socket activation when the lists changed.
    boost::system::result<void, std::string> rebind(const std::vector<std::string>& listen,
                                                    const std::vector<std::string>& tls_listen);

    // The bound endpoints (useful with port 0): plain first, then TLS.
    std::vector<boost::asio::ip::tcp::endpoint> plain_endpoints() const;
    std::vector<boost::asio::ip::tcp::endpoint> tls_endpoints() const;

    // Stops accepting, closes idle keep-alive connections, lets in-flight requests finish
    // (answered with Connection: close). `drained` runs once no connection is left or the
    // drain deadline passed (then remaining connections are closed); true when clean.
    // Blocks until the listeners are closed: call it from a thread that is not running the
    // io_context.
    void shutdown(std::function<void(bool clean)> drained);

    std::size_t open_connections() const noexcept;

    // Serves requests read from an in-memory stream with exactly the session code of an
    // accepted socket (peer 127.0.0.1; the deadlines of the settings apply: when one passes,
    // the stream is closed). For fuzzing and tests; start() is not needed. Completes when the
    // stream closes or the session ends.
    boost::asio::awaitable<void> serve_stream(boost::beast::test::basic_stream<boost::asio::any_io_executor>& stream);

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::http
