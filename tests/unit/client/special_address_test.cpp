#include "client/https_client.hpp"
#include "client/special_address.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace cwhook::client {
namespace {

boost::asio::ip::address addr(std::string_view text)
{
    return boost::asio::ip::make_address(std::string(text));
}

struct range_case {
    std::string_view range;  // as the registry writes it
    std::string_view first;  // lowest address of the range
    std::string_view last;   // highest address of the range
    std::string_view before; // just below it (ordinary, or another range's)
    std::string_view after;  // just above it
    std::string_view name;
};

// Every entry is checked at both ends and just outside them.
void check(const range_case& c)
{
    SCOPED_TRACE(std::string(c.range));
    const auto first = special_purpose_range(addr(c.first));
    ASSERT_TRUE(first) << c.first;
    EXPECT_EQ(*first, c.name);
    const auto last = special_purpose_range(addr(c.last));
    ASSERT_TRUE(last) << c.last;
    EXPECT_EQ(*last, c.name);
    EXPECT_TRUE(is_private_address(addr(c.first)));
    EXPECT_TRUE(is_private_address(addr(c.last)));
    if (!c.before.empty()) {
        EXPECT_NE(special_purpose_range(addr(c.before)).value_or("global"), c.name) << c.before;
    }
    if (!c.after.empty()) {
        EXPECT_NE(special_purpose_range(addr(c.after)).value_or("global"), c.name) << c.after;
    }
}

TEST(SpecialAddress, ThisNetwork)
{
    check({"0.0.0.0/8", "0.0.0.0", "0.255.255.255", "", "1.0.0.0", "this network"});
}
TEST(SpecialAddress, PrivateUse10)
{
    check({"10.0.0.0/8", "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0", "private-use"});
}
TEST(SpecialAddress, SharedAddressSpace)
{
    check({"100.64.0.0/10", "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0", "shared address space"});
}
TEST(SpecialAddress, Loopback4)
{
    check({"127.0.0.0/8", "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0", "loopback"});
}
TEST(SpecialAddress, LinkLocal4)
{
    check({"169.254.0.0/16", "169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0", "link local"});
}
TEST(SpecialAddress, PrivateUse172)
{
    check({"172.16.0.0/12", "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0", "private-use"});
}
TEST(SpecialAddress, IetfProtocolAssignments4)
{
    check({"192.0.0.0/24", "192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0", "IETF protocol assignments"});
}
TEST(SpecialAddress, TestNet1)
{
    check({"192.0.2.0/24", "192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0", "documentation (TEST-NET-1)"});
}
TEST(SpecialAddress, As112V4)
{
    check({"192.31.196.0/24", "192.31.196.0", "192.31.196.255", "192.31.195.255", "192.31.197.0", "AS112-v4"});
}
TEST(SpecialAddress, Amt)
{
    check({"192.52.193.0/24", "192.52.193.0", "192.52.193.255", "192.52.192.255", "192.52.194.0", "AMT"});
}
TEST(SpecialAddress, SixToFourRelayAnycast)
{
    check({"192.88.99.0/24", "192.88.99.0", "192.88.99.255", "192.88.98.255", "192.88.100.0",
           "6to4 relay anycast (deprecated)"});
}
TEST(SpecialAddress, PrivateUse192)
{
    check({"192.168.0.0/16", "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0", "private-use"});
}
TEST(SpecialAddress, DirectDelegationAs112V4)
{
    check({"192.175.48.0/24", "192.175.48.0", "192.175.48.255", "192.175.47.255", "192.175.49.0",
           "direct delegation AS112 service"});
}
TEST(SpecialAddress, Benchmarking)
{
    check({"198.18.0.0/15", "198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0", "benchmarking"});
}
TEST(SpecialAddress, TestNet2)
{
    check({"198.51.100.0/24", "198.51.100.0", "198.51.100.255", "198.51.99.255", "198.51.101.0",
           "documentation (TEST-NET-2)"});
}
TEST(SpecialAddress, TestNet3)
{
    check({"203.0.113.0/24", "203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0",
           "documentation (TEST-NET-3)"});
}
TEST(SpecialAddress, Multicast4)
{
    check({"224.0.0.0/4", "224.0.0.0", "239.255.255.255", "223.255.255.255", "240.0.0.0", "multicast"});
}
TEST(SpecialAddress, Reserved4)
{
    check({"240.0.0.0/4", "240.0.0.0", "255.255.255.254", "239.255.255.255", "255.255.255.255", "reserved"});
}
TEST(SpecialAddress, LimitedBroadcast)
{
    check({"255.255.255.255/32", "255.255.255.255", "255.255.255.255", "255.255.255.254", "", "limited broadcast"});
}

TEST(SpecialAddress, Unspecified6)
{
    check({"::/128", "::", "::", "", "::2:0", "unspecified"});
}
TEST(SpecialAddress, Loopback6)
{
    check({"::1/128", "::1", "::1", "::", "::2", "loopback"});
}
TEST(SpecialAddress, Ipv4Compatible)
{
    check({"::/96", "::2", "::ffff:ffff", "", "::1:0:0:0", "IPv4-compatible (deprecated)"});
}
TEST(SpecialAddress, Nat64WellKnownPrefix)
{
    check({"64:ff9b::/96", "64:ff9b::", "64:ff9b::ffff:ffff", "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "64:ff9b::1:0:0",
           "IPv4-IPv6 translation"});
    EXPECT_TRUE(is_private_address(addr("64:ff9b::8.8.8.8"))); // whatever IPv4 it embeds
}
TEST(SpecialAddress, Nat64LocalUse)
{
    check({"64:ff9b:1::/48", "64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:0:ffff:ffff:ffff:ffff:ffff",
           "64:ff9b:2::", "IPv4-IPv6 translation (local use)"});
}
TEST(SpecialAddress, DiscardOnly)
{
    check({"100::/64", "100::", "100::ffff:ffff:ffff:ffff", "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "100:0:0:1::", "discard-only"});
}
TEST(SpecialAddress, DummyPrefix)
{
    check({"100:0:0:1::/64", "100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff", "100::ffff:ffff:ffff:ffff",
           "100:0:0:2::", "dummy IPv6 prefix"});
}
TEST(SpecialAddress, IetfProtocolAssignments6)
{
    check({"2001::/23", "2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "2001:200::", "IETF protocol assignments"});
    EXPECT_TRUE(is_private_address(addr("2001:0:4136:e378:8000:63bf:3fff:fdd2"))); // Teredo
}
TEST(SpecialAddress, Documentation6)
{
    check({"2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
           "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", "documentation"});
}
TEST(SpecialAddress, SixToFour)
{
    check({"2002::/16", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "2003::", "6to4"});
}
TEST(SpecialAddress, DirectDelegationAs112V6)
{
    check({"2620:4f:8000::/48", "2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff",
           "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::", "direct delegation AS112 service"});
}
TEST(SpecialAddress, Documentation3fff)
{
    check({"3fff::/20", "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "3fff:1000::", "documentation"});
}
TEST(SpecialAddress, SegmentRouting)
{
    check({"5f00::/16", "5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "5f01::", "segment routing (SRv6) SIDs"});
}
TEST(SpecialAddress, UniqueLocal)
{
    check({"fc00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "fe00::", "unique-local"});
}
TEST(SpecialAddress, LinkLocal6)
{
    check({"fe80::/10", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "fec0::", "link-local unicast"});
}
TEST(SpecialAddress, SiteLocal)
{
    check({"fec0::/10", "fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "ff00::", "site-local (deprecated)"});
}
TEST(SpecialAddress, Multicast6)
{
    check({"ff00::/8", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "", "multicast"});
}

TEST(SpecialAddress, MappedAddressesAreJudgedByTheirIpv4)
{
    EXPECT_EQ(special_purpose_range(addr("::ffff:10.1.2.3")).value_or("global"), "private-use");
    EXPECT_EQ(special_purpose_range(addr("::ffff:127.0.0.1")).value_or("global"), "loopback");
    EXPECT_EQ(special_purpose_range(addr("::ffff:100.64.0.1")).value_or("global"), "shared address space");
    EXPECT_EQ(special_purpose_range(addr("::ffff:198.18.0.1")).value_or("global"), "benchmarking");
    EXPECT_FALSE(special_purpose_range(addr("::ffff:8.8.8.8")));
    EXPECT_FALSE(is_private_address(addr("::ffff:93.184.216.34")));
}

TEST(SpecialAddress, OrdinaryAddressesAreGlobal)
{
    for (const std::string_view a :
         {"1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.32.0.1", "192.0.1.1",
          "192.169.0.1", "198.20.0.1", "223.255.255.255", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
          "2001:200::1", "2001:4860:4860::8888", "2003::1", "2620:4f:8001::1", "64:ff9c::1"}) {
        SCOPED_TRACE(std::string(a));
        EXPECT_FALSE(special_purpose_range(addr(a)));
        EXPECT_FALSE(is_private_address(addr(a)));
    }
}

} // namespace
} // namespace cwhook::client
