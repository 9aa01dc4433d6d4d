#include "http/server.hpp"

#include "core/metrics.hpp"
#include "http/router.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::http {
namespace {

TEST(ParseListen, AcceptsHostAndPort)
{
    const struct {
        std::string_view text;
        std::string_view address;
        unsigned short port;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"[::1]:8443", "::1", 8443},
        {"[::]:80", "::", 80},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {"10.1.2.3:65535", "10.1.2.3", 65535},
        {"[2001:db8::1]:443", "2001:db8::1", 443},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        const auto ep = parse_listen(c.text);
        ASSERT_TRUE(ep);
        EXPECT_EQ(ep->address(), boost::asio::ip::make_address(std::string(c.address)));
        EXPECT_EQ(ep->port(), c.port);
    }
}

TEST(ParseListen, LocalhostIsIpv4Loopback)
{
    const auto ep = parse_listen("localhost:1");
    ASSERT_TRUE(ep);
    EXPECT_EQ(ep->address(), boost::asio::ip::make_address("127.0.0.1"));
    EXPECT_EQ(ep->port(), 1);
}

TEST(ParseListen, RefusesInvalidText)
{
    for (const std::string_view text :
         {"", "abc", "1.2.3.4", "1.2.3.4:", ":8080", "host:port", "example.com:80", "localhost", "1.2.3.4:http",
          "1.2.3.4:80x", "1.2.3.4:-1", "1.2.3.4: 80", " 1.2.3.4:80", "::1:8080", "[::1]", "[::1]:", "[::1]8080",
          "[::1", "[garbage]:80", "1.2.3.4:80:90", "300.1.1.1:80"}) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(parse_listen(text));
    }
}

TEST(ParseListen, RefusesPortOutOfRange)
{
    for (const std::string_view text : {"1.2.3.4:99999", "1.2.3.4:65536", "[::1]:65536", "1.2.3.4:4294967296"}) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(parse_listen(text));
    }
}

// A server session on an in-memory stream. serve() feeds it `input` (the client then
// closes) and returns everything the server wrote; the other members drive it step by step.
struct session_fixture {
    boost::asio::io_context ioc;
    metrics::registry metrics;
    std::unique_ptr<server> srv;
    boost::beast::test::stream local{ioc};   // the server's end
    boost::beast::test::stream remote{ioc};  // the client's end
    bool ended = false;

    explicit session_fixture(settings s = {})
    {
        auto routes = std::make_shared<router>();
        routes->add(
            beast_http::verb::post, "/callbacks",
            [](request& req) -> boost::asio::awaitable<response> {
                co_return json_response(200, "{\"size\":" + std::to_string(req.msg.body().size()) + "}");
            },
            true);
        routes->add(beast_http::verb::get, "/healthz",
                    [](request&) -> boost::asio::awaitable<response> { co_return json_response(200, "{}"); });
        s.listen = {};
        srv = std::make_unique<server>(ioc, s, routes, nullptr, metrics);
        local.connect(remote);
    }

    std::string serve(std::string_view input)
    {
        local.append(input);
        remote.close();
        start();
        ioc.run();
        return std::string(remote.str());
    }

    void start()
    {
        boost::asio::co_spawn(ioc, srv->serve_stream(local), [this](const std::exception_ptr&) { ended = true; });
    }

    // Runs the session until `pred` holds; false when it never does (nothing left to run, or
    // nothing happened for a generous while).
    template <class Pred>
    bool run_until(Pred pred)
    {
        ioc.restart();
        while (!pred()) {
            if (ioc.run_one_for(std::chrono::seconds(60)) == 0) {
                return pred();
            }
        }
        return true;
    }

    // Everything the server wrote, once it has closed the connection; nullopt if it never does.
    std::optional<std::string> read_until_closed()
    {
        std::string out;
        bool closed = false;
        boost::asio::async_read(remote, boost::asio::dynamic_buffer(out),
                                [&](boost::system::error_code ec, std::size_t) { closed = ec == boost::asio::error::eof; });
        if (!run_until([&] { return closed; })) {
            return std::nullopt;
        }
        return out;
    }

    std::uint64_t timeouts() const { return metrics.counter_value("cwhook_connection_timeouts_total"); }
};

std::size_t count(std::string_view haystack, std::string_view needle)
{
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

TEST(ServerSession, TransferEncodingMustBeExactlyChunked)
{
    for (const std::string_view te :
         {"Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked, chunked\r\n",
          "Transfer-Encoding: Chunked \r\n", "Transfer-Encoding:  chunked,\r\n", "Transfer-Encoding: identity\r\n",
          "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
          "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
          "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"}) {
        SCOPED_TRACE(te);
        session_fixture f;
        const auto out = f.serve("POST /callbacks HTTP/1.1\r\nHost: x\r\n" + std::string(te) +
                                 "\r\n5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_TRUE(out.starts_with("HTTP/1.1 400 Bad Request\r\n")) << out;
        EXPECT_NE(out.find("{\"error\":\"bad_transfer_encoding\""), std::string::npos) << out;
        EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
        EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << "the session went on after the refusal: " << out;
        EXPECT_EQ(f.metrics.counter_value("cwhook_http_requests_refused_total", "reason=\"bad_transfer_encoding\""), 1u);
    }
}

TEST(ServerSession, ChunkedAndNoTransferEncodingAreServed)
{
    session_fixture f;
    const auto out = f.serve("POST /callbacks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n0\r\n\r\n"
                             "POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(count(out, "HTTP/1.1 200 OK\r\n"), 2u) << out;
    EXPECT_NE(out.find("{\"size\":5}"), std::string::npos) << out;
    EXPECT_NE(out.find("{\"size\":3}"), std::string::npos) << out;
    EXPECT_EQ(f.metrics.counter_value("cwhook_http_requests_refused_total", "reason=\"bad_transfer_encoding\""), 0u);
}

std::size_t position(std::string_view haystack, std::string_view needle)
{
    return haystack.find(needle);
}

settings with_limits(std::size_t header_bytes, std::size_t body_bytes)
{
    settings s;
    s.max_header_bytes = header_bytes;
    s.max_body_bytes = body_bytes;
    return s;
}

TEST(ServerSession, HeaderOverTheLimitIs431)
{
    session_fixture f(with_limits(512, 1024));
    const auto out = f.serve("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(1024, 'a') +
                             "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")) << out;
    EXPECT_NE(out.find("\"error\":\"header_too_large\""), std::string::npos) << out;
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
    EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << out;
}

// A Content-Length over the limit is answered from the headers: no body byte is awaited.
TEST(ServerSession, DeclaredBodyOverTheLimitIs413BeforeTheBodyArrives)
{
    session_fixture f(with_limits(4096, 16));
    f.remote.write_some(boost::asio::buffer(std::string_view("POST /callbacks HTTP/1.1\r\nHost: x\r\n"
                                                             "Content-Length: 1000\r\n\r\n")));
    f.start();
    const auto out = f.read_until_closed();
    ASSERT_TRUE(out) << "the session never closed the connection";
    EXPECT_TRUE(out->starts_with("HTTP/1.1 413 Payload Too Large\r\n")) << *out;
    EXPECT_NE(out->find("\"error\":\"body_too_large\""), std::string::npos) << *out;
    EXPECT_NE(out->find("Connection: close\r\n"), std::string::npos) << *out;
    EXPECT_TRUE(f.ended);
}

TEST(ServerSession, ChunkedBodyOverTheLimitIs413)
{
    session_fixture f(with_limits(4096, 16));
    const auto out = f.serve("POST /callbacks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 413 Payload Too Large\r\n")) << out;
    EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << out;
}

TEST(ServerSession, BodyAtTheLimitIsServed)
{
    session_fixture f(with_limits(4096, 16));
    const auto out = f.serve("POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n0123456789abcdef");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
    EXPECT_NE(out.find("{\"size\":16}"), std::string::npos) << out;
}

TEST(ServerSession, MalformedRequestIs400AndClosed)
{
    for (const std::string_view input :
         {"NOT-HTTP\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
          "POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
          "POST /callbacks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"}) {
        SCOPED_TRACE(input);
        session_fixture f;
        const auto out = f.serve(std::string(input) + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_TRUE(out.starts_with("HTTP/1.1 400 Bad Request\r\n")) << out;
        EXPECT_NE(out.find("\"error\":\"bad_request\""), std::string::npos) << out;
        EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
        EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << "the session went on after the refusal: " << out;
    }
}

// The deadline tests use tiny timeouts and wait for the session to close the connection;
// the deadlines that must not fire are far beyond any test's run time.
settings with_deadlines(std::chrono::milliseconds header, std::chrono::milliseconds body,
                        std::chrono::milliseconds idle)
{
    settings s;
    s.header_timeout = header;
    s.body_timeout = body;
    s.idle_timeout = idle;
    return s;
}

constexpr auto never = std::chrono::hours(1);
constexpr auto at_once = std::chrono::milliseconds(1);

TEST(ServerSession, SilentClientIsDroppedAtTheHeaderDeadline)
{
    session_fixture f(with_deadlines(at_once, never, never));
    f.start();
    const auto out = f.read_until_closed();
    ASSERT_TRUE(out) << "the session never closed the connection";
    EXPECT_EQ(*out, "");
    EXPECT_EQ(f.timeouts(), 1u);
}

TEST(ServerSession, UnfinishedHeadersAreDroppedAtTheHeaderDeadline)
{
    session_fixture f(with_deadlines(at_once, never, never));
    f.remote.write_some(boost::asio::buffer(std::string_view("POST /callbacks HTTP/1.1\r\nHost: x\r\n")));
    f.start();
    const auto out = f.read_until_closed();
    ASSERT_TRUE(out) << "the session never closed the connection";
    EXPECT_EQ(*out, "");
    EXPECT_EQ(f.timeouts(), 1u);
}

TEST(ServerSession, UnfinishedBodyIsDroppedAtTheBodyDeadline)
{
    session_fixture f(with_deadlines(never, at_once, never));
    f.remote.write_some(boost::asio::buffer(std::string_view("POST /callbacks HTTP/1.1\r\nHost: x\r\n"
                                                             "Content-Length: 10\r\n\r\nabc")));
    f.start();
    const auto out = f.read_until_closed();
    ASSERT_TRUE(out) << "the session never closed the connection";
    EXPECT_EQ(*out, "");
    EXPECT_EQ(f.timeouts(), 1u);
}

// The first request gets the header deadline; waiting for the next one, the idle deadline.
TEST(ServerSession, KeepAliveConnectionIsClosedAtTheIdleDeadline)
{
    session_fixture f(with_deadlines(never, never, at_once));
    f.remote.write_some(boost::asio::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")));
    f.start();
    const auto out = f.read_until_closed();
    ASSERT_TRUE(out) << "the session never closed the connection";
    EXPECT_TRUE(out->starts_with("HTTP/1.1 200 OK\r\n")) << *out;
    EXPECT_EQ(count(*out, "HTTP/1.1 "), 1u) << *out;
    EXPECT_EQ(f.timeouts(), 1u);
}

TEST(ServerSession, KeepAliveServesTwoRequestsOneAfterTheOther)
{
    session_fixture f;
    f.start();
    f.remote.write_some(boost::asio::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")));
    ASSERT_TRUE(f.run_until([&] { return f.remote.str().ends_with("\r\n\r\n{}\n"); })) << f.remote.str();
    EXPECT_FALSE(f.ended) << "the connection was not kept open";
    EXPECT_EQ(f.remote.str().find("Connection: close"), std::string::npos) << f.remote.str();

    f.remote.write_some(boost::asio::buffer(std::string_view("POST /callbacks HTTP/1.1\r\nHost: x\r\n"
                                                             "Content-Length: 3\r\n\r\nabc")));
    ASSERT_TRUE(f.run_until([&] { return f.remote.str().ends_with("{\"size\":3}\n"); })) << f.remote.str();
    EXPECT_EQ(count(f.remote.str(), "HTTP/1.1 200 OK\r\n"), 2u) << f.remote.str();
    EXPECT_FALSE(f.ended);

    f.remote.close();
    ASSERT_TRUE(f.run_until([&] { return f.ended; }));
    EXPECT_EQ(f.timeouts(), 0u);
}

TEST(ServerSession, PipelinedRequestsAreAnsweredInOrder)
{
    session_fixture f;
    const auto out = f.serve("POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Request-Id: first\r\nContent-Length: 1\r\n\r\na"
                             "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: second\r\n\r\n"
                             "POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Request-Id: third\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n");
    EXPECT_EQ(count(out, "HTTP/1.1 200 OK\r\n"), 3u) << out;
    const auto first = position(out, "X-Request-Id: first\r\n");
    const auto second = position(out, "X-Request-Id: second\r\n");
    const auto third = position(out, "X-Request-Id: third\r\n");
    ASSERT_NE(first, std::string::npos) << out;
    ASSERT_NE(second, std::string::npos) << out;
    ASSERT_NE(third, std::string::npos) << out;
    EXPECT_LT(first, second) << out;
    EXPECT_LT(second, third) << out;
    EXPECT_LT(position(out, "{\"size\":1}"), position(out, "{\"size\":3}")) << out;
}

// Chunk extensions, several chunks and trailer fields: the body is the chunks' data.
TEST(ServerSession, ChunkedBodyIsReassembled)
{
    session_fixture f;
    const auto out = f.serve("POST /callbacks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3;note=x\r\nabc\r\n"
                             "A\r\n0123456789\r\n"
                             "1\r\nz\r\n"
                             "0\r\nX-Trailer: t\r\n\r\n");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
    EXPECT_NE(out.find("{\"size\":14}"), std::string::npos) << out;
}

// A chunked body that arrives in pieces, each written after the session has answered
// nothing yet, is read as one body.
TEST(ServerSession, ChunkedBodyArrivingInPiecesIsOneRequest)
{
    session_fixture f;
    f.start();
    for (const std::string_view piece : {"POST /callbacks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                                         "4\r\nab", "cd\r\n", "2\r\nef\r\n", "0\r\n", "\r\n"}) {
        EXPECT_EQ(f.remote.str(), "");
        f.remote.write_some(boost::asio::buffer(piece));
        while (f.ioc.poll() > 0) {
        }
    }
    ASSERT_TRUE(f.run_until([&] { return f.remote.str().ends_with("{\"size\":6}\n"); })) << f.remote.str();
    f.remote.close();
    ASSERT_TRUE(f.run_until([&] { return f.ended; }));
}

} // namespace
} // namespace cwhook::http
