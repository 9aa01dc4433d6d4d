#include "http/address.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::http {
namespace {

namespace ip = boost::asio::ip;

ip::address addr(std::string_view text)
{
    return ip::make_address(std::string(text));
}

cidr_set set_of(std::initializer_list<std::string_view> texts)
{
    std::vector<cidr> nets;
    for (const auto t : texts) {
        auto c = parse_cidr(t);
        CWHOOK_CHECK(c.has_value());
        nets.push_back(*c);
    }
    return cidr_set(std::move(nets));
}

// parse_cidr

TEST(ParseCidr, AcceptsNetworksWithPrefix)
{
    const struct {
        std::string_view text;
        std::string_view network;
        unsigned prefix;
    } cases[] = {
        {"10.0.0.0/8", "10.0.0.0", 8},
        {"192.168.16.0/20", "192.168.16.0", 20},
        {"0.0.0.0/0", "0.0.0.0", 0},
        {"203.0.113.7/32", "203.0.113.7", 32},
        {"::1/128", "::1", 128},
        {"2001:db8::/32", "2001:db8::", 32},
        {"::/0", "::", 0},
        {" 10.0.0.0/8\t", "10.0.0.0", 8},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        const auto n = parse_cidr(c.text);
        ASSERT_TRUE(n);
        EXPECT_EQ(n->network, addr(c.network));
        EXPECT_EQ(n->prefix, c.prefix);
    }
}

TEST(ParseCidr, BareAddressIsFullLength)
{
    const struct {
        std::string_view text;
        unsigned prefix;
    } cases[] = {{"192.168.1.1", 32}, {"::1", 128}, {"2001:db8::7", 128}};
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        const auto n = parse_cidr(c.text);
        ASSERT_TRUE(n);
        EXPECT_EQ(n->network, addr(c.text));
        EXPECT_EQ(n->prefix, c.prefix);
    }
}

TEST(ParseCidr, BareMappedAddressIsUnmapped)
{
    const auto n = parse_cidr("::ffff:10.0.0.1");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->network, addr("10.0.0.1"));
    EXPECT_EQ(n->prefix, 32U);
}

TEST(ParseCidr, RefusesInvalidText)
{
    for (const std::string_view text :
         {"", "/8", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0/8",
          "10.0.0.256", "example.com", "example.com/8", "[::1]/128", "10.0.0.0 /8", "::1/ 64"}) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(parse_cidr(text));
    }
}

TEST(ParseCidr, RefusesPrefixLongerThanAddress)
{
    for (const std::string_view text :
         {"10.0.0.0/33", "0.0.0.0/64", "::/129", "2001:db8::/200", "10.0.0.0/4294967296"}) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(parse_cidr(text));
    }
}

// cidr_set::contains

TEST(CidrSet, EmptySetContainsNothing)
{
    const cidr_set s;
    EXPECT_TRUE(s.empty());
    EXPECT_FALSE(s.contains(addr("127.0.0.1")));
    EXPECT_FALSE(s.contains(addr("::1")));
}

TEST(CidrSet, MatchesIpv4ByPrefix)
{
    const auto s = set_of({"10.0.0.0/8", "192.168.16.0/20", "203.0.113.7"});
    const struct {
        std::string_view a;
        bool in;
    } cases[] = {
        {"10.0.0.0", true},     {"10.255.255.255", true}, {"11.0.0.0", false},     {"9.255.255.255", false},
        {"192.168.16.0", true}, {"192.168.31.255", true}, {"192.168.32.0", false}, {"192.168.15.255", false},
        {"203.0.113.7", true},  {"203.0.113.8", false},   {"203.0.113.6", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.a);
        EXPECT_EQ(s.contains(addr(c.a)), c.in);
    }
}

TEST(CidrSet, MatchesIpv6ByPrefix)
{
    const auto s = set_of({"2001:db8::/33", "fd00::/8", "::1"});
    const struct {
        std::string_view a;
        bool in;
    } cases[] = {
        {"2001:db8::", true},   {"2001:db8:7fff:ffff::1", true}, {"2001:db8:8000::", false},
        {"2001:db9::1", false}, {"fd12:3456::1", true},          {"fe80::1", false},
        {"::1", true},          {"::2", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.a);
        EXPECT_EQ(s.contains(addr(c.a)), c.in);
    }
}

TEST(CidrSet, ZeroPrefixMatchesWholeFamilyOnly)
{
    const auto v4 = set_of({"0.0.0.0/0"});
    EXPECT_TRUE(v4.contains(addr("1.2.3.4")));
    EXPECT_TRUE(v4.contains(addr("255.255.255.255")));
    EXPECT_FALSE(v4.contains(addr("2001:db8::1")));
    const auto v6 = set_of({"::/0"});
    EXPECT_TRUE(v6.contains(addr("2001:db8::1")));
    EXPECT_FALSE(v6.contains(addr("1.2.3.4")));
}

TEST(CidrSet, NetworkHostBitsAreIgnored)
{
    const auto s = set_of({"10.1.2.3/8", "2001:db8::1/32"});
    EXPECT_TRUE(s.contains(addr("10.9.9.9")));
    EXPECT_TRUE(s.contains(addr("2001:db8:ffff::")));
}

TEST(CidrSet, Ipv4MappedIpv6MatchesIpv4Network)
{
    const auto s = set_of({"10.0.0.0/8"});
    EXPECT_TRUE(s.contains(addr("::ffff:10.1.2.3")));
    EXPECT_FALSE(s.contains(addr("::ffff:11.1.2.3")));
}

TEST(CidrSet, Ipv4NetworkDoesNotMatchOtherIpv6Forms)
{
    const auto s = set_of({"10.0.0.0/8"});
    EXPECT_FALSE(s.contains(addr("::10.1.2.3")));  // IPv4-compatible, not mapped
    EXPECT_FALSE(s.contains(addr("64:ff9b::a01:203")));  // NAT64
}

// client_address

struct xff_case {
    std::string_view peer;
    std::string_view xff;
    std::string_view client;
};

void expect_clients(const cidr_set& trusted, std::initializer_list<xff_case> cases)
{
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.peer) + " X-Forwarded-For \"" + std::string(c.xff) + "\"");
        EXPECT_EQ(client_address(addr(c.peer), c.xff, trusted), c.client);
    }
}

TEST(ClientAddress, UntrustedPeerIgnoresForwardedFor)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"203.0.113.9", "198.51.100.1", "203.0.113.9"},
                                               {"203.0.113.9", "10.0.0.1", "203.0.113.9"},
                                               {"203.0.113.9", "", "203.0.113.9"},
                                               {"2001:db8::9", "198.51.100.1", "2001:db8::9"},
                                           });
}

TEST(ClientAddress, NoTrustedProxiesIgnoresForwardedFor)
{
    expect_clients(cidr_set{}, {{"127.0.0.1", "198.51.100.1", "127.0.0.1"}});
}

TEST(ClientAddress, TrustedPeerWithEmptyHeaderIsPeer)
{
    expect_clients(set_of({"10.0.0.0/8"}), {{"10.0.0.1", "", "10.0.0.1"}});
}

TEST(ClientAddress, TrustedPeerYieldsForwardedClient)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"10.0.0.1", "198.51.100.1", "198.51.100.1"},
                                               {"10.0.0.1", "2001:db8::5", "2001:db8::5"},
                                           });
}

TEST(ClientAddress, RightMostUntrustedEntryWinsOverForgedOnes)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"10.0.0.1", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
                                               {"10.0.0.1", "1.1.1.1,198.51.100.1", "198.51.100.1"},
                                               {"10.0.0.1", "10.0.0.7, 1.1.1.1, 198.51.100.1", "198.51.100.1"},
                                           });
}

TEST(ClientAddress, ChainOfTrustedProxiesIsSkipped)
{
    expect_clients(set_of({"10.0.0.0/8", "fd00::/8"}),
                   {
                       {"10.0.0.4", "198.51.100.1, 10.0.0.2, 10.0.0.3", "198.51.100.1"},
                       {"10.0.0.4", "1.1.1.1, 198.51.100.1, 10.0.0.2, fd00::3", "198.51.100.1"},
                       {"fd00::4", "198.51.100.1, 10.0.0.3", "198.51.100.1"},
                   });
}

TEST(ClientAddress, AllTrustedHopsYieldLeftMostHop)
{
    expect_clients(set_of({"10.0.0.0/8"}), {{"10.0.0.1", "10.0.0.2, 10.0.0.3", "10.0.0.2"}});
}

TEST(ClientAddress, GarbageEntryStopsAtLastTrustedHop)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"10.0.0.1", "garbage", "10.0.0.1"},
                                               {"10.0.0.1", "198.51.100.1, garbage", "10.0.0.1"},
                                               {"10.0.0.1", "198.51.100.1, garbage, 10.0.0.2", "10.0.0.2"},
                                               {"10.0.0.1", "198.51.100.1, unknown", "10.0.0.1"},
                                               {"10.0.0.1", "198.51.100.1,", "10.0.0.1"},
                                               {"10.0.0.1", ",", "10.0.0.1"},
                                               {"10.0.0.1", "198.51.100.1, [2001:db8::1", "10.0.0.1"},
                                               {"10.0.0.1", "198.51.100.1, 300.1.1.1", "10.0.0.1"},
                                           });
}

TEST(ClientAddress, EntriesMayCarryPortsAndBrackets)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"10.0.0.1", "198.51.100.1:5678", "198.51.100.1"},
                                               {"10.0.0.1", "[2001:db8::5]:443", "2001:db8::5"},
                                               {"10.0.0.1", "[2001:db8::5]", "2001:db8::5"},
                                               {"10.0.0.1", "198.51.100.1, 10.0.0.2:80", "198.51.100.1"},
                                               {"10.0.0.1", "2001:db8::5", "2001:db8::5"},
                                           });
}

TEST(ClientAddress, EntriesAreTrimmed)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"10.0.0.1", "  198.51.100.1  ", "198.51.100.1"},
                                               {"10.0.0.1", "\t198.51.100.1,\t10.0.0.2 ", "198.51.100.1"},
                                           });
}

TEST(ClientAddress, MappedPeerIsUnmapped)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"::ffff:203.0.113.9", "198.51.100.1", "203.0.113.9"},
                                               {"::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"},
                                               {"::ffff:10.0.0.1", "", "10.0.0.1"},
                                           });
}

TEST(ClientAddress, MappedEntryIsUnmapped)
{
    expect_clients(set_of({"10.0.0.0/8"}), {
                                               {"10.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"},
                                               {"10.0.0.1", "198.51.100.1, ::ffff:10.0.0.2", "198.51.100.1"},
                                           });
}

} // namespace
} // namespace cwhook::http
