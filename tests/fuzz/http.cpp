// Fuzz target: the whole request path of a server session (header and body limits, chunked
// bodies, 100-continue, pipelining, keep-alive, routing, error answers, the access log),
// driven through an in-memory stream: the input is everything a client sends before it
// closes. Checks besides the sanitizers: the session ends, nothing throws out of it, what
// it writes is HTTP, and no log line can be split by request bytes.
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

namespace {

namespace net = boost::asio;
namespace http = cwhook::http;

void require(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "http fuzz: %s\n", what);
        std::abort();
    }
}

net::awaitable<http::response> callback_handler(http::request& req)
{
    co_return http::json_response(200, "{\"size\":" + std::to_string(req.msg.body().size()) + "}", req.msg.version());
}

net::awaitable<http::response> health_handler(http::request& req)
{
    co_return http::json_response(200, "{\"status\":\"ok\"}", req.msg.version());
}

// A log line is one line: request bytes may be escaped into it but never break it.
void check_log_line(std::string_view line)
{
    if (line.ends_with('\n')) {
        line.remove_suffix(1);
    }
    require(std::none_of(line.begin(), line.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }),
            "a log line holds a raw control byte");
}

struct fixture {
    net::io_context ioc;
    cwhook::metrics::registry metrics;
    std::unique_ptr<http::server> server;

    fixture()
    {
        cwhook::log::configure(cwhook::log::level::debug, cwhook::log::format::text);
        cwhook::log::set_sink(check_log_line);

        auto routes = std::make_shared<http::router>();
        routes->add(http::beast_http::verb::post, "/callbacks", callback_handler, true);
        routes->add(http::beast_http::verb::get, "/healthz", health_handler);
        routes->set_rejection_hook([](http::request&, unsigned status, std::string_view reason) {
            require(status == 413 && !reason.empty(), "an unexpected rejection");
        });

        http::settings s;
        s.listen = {};
        s.max_body_bytes = 4096;
        s.max_header_bytes = 2048;
        server = std::make_unique<http::server>(ioc, s, routes, nullptr, metrics);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static fixture f;

    boost::beast::test::stream local(f.ioc);
    boost::beast::test::stream remote(f.ioc);
    local.connect(remote);
    // The session reads the input, then end of stream (the client closed its side).
    local.append(std::string_view(reinterpret_cast<const char*>(data), size));
    remote.close();

    bool done = false;
    std::exception_ptr failure;
    net::co_spawn(f.ioc, f.server->serve_stream(local), [&](std::exception_ptr e) {
        done = true;
        failure = e;
    });
    f.ioc.restart();
    f.ioc.run();

    require(done, "the session did not finish");
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "http fuzz: session threw: %s\n", e.what());
        }
        std::abort();
    }
    const std::string_view written = remote.str();
    require(written.empty() || written.starts_with("HTTP/"), "the session wrote something other than HTTP");
    return 0;
}
