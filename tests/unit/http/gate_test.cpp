// The router's gate, through the session code of an accepted socket (an in-memory stream).
#include "core/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <gtest/gtest.h>

#include <string>

namespace cwhook::http {
namespace {

namespace net = boost::asio;

int handled = 0;

net::awaitable<response> counted(request& req)
{
    ++handled;
    co_return json_response(200, "{}", req.msg.version());
}

// Everything a session writes back for `input` (the client closes after sending it).
std::string exchange(std::shared_ptr<router> routes, std::string_view input)
{
    net::io_context ioc;
    metrics::registry metrics;
    settings s;
    s.listen = {};
    server srv(ioc, s, std::move(routes), nullptr, metrics);
    boost::beast::test::stream local(ioc);
    boost::beast::test::stream remote(ioc);
    local.connect(remote);
    local.append(input);
    remote.close();
    net::co_spawn(ioc, srv.serve_stream(local), net::detached);
    ioc.run();
    return std::string(remote.str());
}

std::shared_ptr<router> gated()
{
    auto r = std::make_shared<router>();
    r->add(beast_http::verb::get, "/open", counted);
    r->set_gate([](request& req) -> std::optional<response> {
        if (req.msg.find("X-Refuse") != req.msg.end()) {
            return error_response(403, "refused", {}, req.msg.version());
        }
        return std::nullopt;
    });
    return r;
}

TEST(Gate, RefusesBeforeAnyHandlerRuns)
{
    handled = 0;
    const auto out = exchange(gated(), "GET /open HTTP/1.1\r\nHost: x\r\nX-Refuse: 1\r\n\r\n");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 403")) << out;
    EXPECT_NE(out.find("{\"error\":\"refused\"}"), std::string::npos) << out;
    EXPECT_EQ(handled, 0);
}

TEST(Gate, AlsoCoversPathsNoRouteMatches)
{
    const auto out = exchange(gated(), "GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Refuse: 1\r\n\r\n");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 403")) << out;
}

TEST(Gate, LetsOtherRequestsThrough)
{
    handled = 0;
    const auto out = exchange(gated(), "GET /open HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200")) << out;
    EXPECT_NE(out.find("HTTP/1.1 404"), std::string::npos) << out;
    EXPECT_EQ(handled, 1);
}

} // namespace
} // namespace cwhook::http
