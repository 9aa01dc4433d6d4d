#include "http/server.hpp"

#include "core/metrics.hpp"
#include "http/router.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <gtest/gtest.h>

#include <memory>
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

// A server session fed `input` through an in-memory stream (the client then closes); returns
// everything the server wrote.
struct session_fixture {
    boost::asio::io_context ioc;
    metrics::registry metrics;
    std::unique_ptr<server> srv;

    session_fixture()
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
        settings s;
        s.listen = {};
        srv = std::make_unique<server>(ioc, s, routes, nullptr, metrics);
    }

    std::string serve(std::string_view input)
    {
        boost::beast::test::stream local(ioc);
        boost::beast::test::stream remote(ioc);
        local.connect(remote);
        local.append(input);
        remote.close();
        boost::asio::co_spawn(ioc, srv->serve_stream(local), [](const std::exception_ptr&) {});
        ioc.restart();
        ioc.run();
        return std::string(remote.str());
    }
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

} // namespace
} // namespace cwhook::http
