#include "http/server.hpp"

#include <gtest/gtest.h>

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

} // namespace
} // namespace cwhook::http
