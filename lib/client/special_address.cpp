// Design: one table per family, written as the registries list them, so that a reviewer can
// hold it against https://www.iana.org/assignments/iana-ipv4-special-registry/ and
// .../iana-ipv6-special-registry/. Every entry is refused, including the few the registry
// marks "globally reachable" (anycast relays, AS112 sinks, the NAT64 well-known prefix, 6to4,
// Teredo): a signing-key server or a replay target never legitimately lives there, and the
// translation and tunnelling prefixes embed an IPv4 address that may well be private, which
// is exactly what the check exists to stop (SSRF into the local network).
#include "client/special_address.hpp"

#include <array>
#include <cstdint>
#include <vector>

namespace cwhook::client {

namespace ip = boost::asio::ip;

namespace {

struct v4_range {
    std::uint32_t network;
    unsigned prefix;
    std::string_view name;
};

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr v4_range v4_ranges[] = {
    {v4(0, 0, 0, 0), 8, "this network"},
    {v4(10, 0, 0, 0), 8, "private-use"},
    {v4(100, 64, 0, 0), 10, "shared address space"},
    {v4(127, 0, 0, 0), 8, "loopback"},
    {v4(169, 254, 0, 0), 16, "link local"},
    {v4(172, 16, 0, 0), 12, "private-use"},
    {v4(192, 0, 0, 0), 24, "IETF protocol assignments"},
    {v4(192, 0, 2, 0), 24, "documentation (TEST-NET-1)"},
    {v4(192, 31, 196, 0), 24, "AS112-v4"},
    {v4(192, 52, 193, 0), 24, "AMT"},
    {v4(192, 88, 99, 0), 24, "6to4 relay anycast (deprecated)"},
    {v4(192, 168, 0, 0), 16, "private-use"},
    {v4(192, 175, 48, 0), 24, "direct delegation AS112 service"},
    {v4(198, 18, 0, 0), 15, "benchmarking"},
    {v4(198, 51, 100, 0), 24, "documentation (TEST-NET-2)"},
    {v4(203, 0, 113, 0), 24, "documentation (TEST-NET-3)"},
    {v4(224, 0, 0, 0), 4, "multicast"},
    {v4(240, 0, 0, 0), 4, "reserved"},
    {v4(255, 255, 255, 255), 32, "limited broadcast"},
};

struct v6_range {
    std::array<std::uint16_t, 8> network; // the eight groups, as written
    unsigned prefix;
    std::string_view name;
};

// ::ffff:0:0/96 is not in the table: mapped addresses are judged by their IPv4 address.
const v6_range v6_ranges[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0}, 128, "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {{0, 0, 0, 0, 0, 0, 0, 0}, 96, "IPv4-compatible (deprecated)"},
    {{0x64, 0xff9b, 0, 0, 0, 0, 0, 0}, 96, "IPv4-IPv6 translation"},
    {{0x64, 0xff9b, 1, 0, 0, 0, 0, 0}, 48, "IPv4-IPv6 translation (local use)"},
    {{0x100, 0, 0, 0, 0, 0, 0, 0}, 64, "discard-only"},
    {{0x100, 0, 0, 1, 0, 0, 0, 0}, 64, "dummy IPv6 prefix"},
    {{0x2001, 0, 0, 0, 0, 0, 0, 0}, 23, "IETF protocol assignments"},
    {{0x2001, 0xdb8, 0, 0, 0, 0, 0, 0}, 32, "documentation"},
    {{0x2002, 0, 0, 0, 0, 0, 0, 0}, 16, "6to4"},
    {{0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0}, 48, "direct delegation AS112 service"},
    {{0x3fff, 0, 0, 0, 0, 0, 0, 0}, 20, "documentation"},
    {{0x5f00, 0, 0, 0, 0, 0, 0, 0}, 16, "segment routing (SRv6) SIDs"},
    {{0xfc00, 0, 0, 0, 0, 0, 0, 0}, 7, "unique-local"},
    {{0xfe80, 0, 0, 0, 0, 0, 0, 0}, 10, "link-local unicast"},
    {{0xfec0, 0, 0, 0, 0, 0, 0, 0}, 10, "site-local (deprecated)"},
    {{0xff00, 0, 0, 0, 0, 0, 0, 0}, 8, "multicast"},
};

bool v6_matches(const ip::address_v6::bytes_type& bytes, const v6_range& r)
{
    unsigned bits = r.prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
        const auto group = r.network[i / 2];
        const auto want = static_cast<std::uint8_t>(i % 2 == 0 ? group >> 8 : group & 0xff);
        const unsigned take = bits >= 8 ? 8 : bits;
        const auto mask = static_cast<std::uint8_t>(0xff << (8 - take));
        if ((bytes[i] & mask) != (want & mask)) {
            return false;
        }
        bits -= take;
    }
    return true;
}

} // namespace

std::optional<std::string_view> special_purpose_range(const ip::address& a)
{
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        return special_purpose_range(ip::make_address_v4(ip::v4_mapped, a.to_v6()));
    }
    // The most specific entry names the range (255.255.255.255 is "limited broadcast", not
    // "reserved"; ::1 is "loopback", not "IPv4-compatible").
    if (a.is_v4()) {
        const auto value = a.to_v4().to_uint();
        const v4_range* best = nullptr;
        for (const auto& r : v4_ranges) {
            const std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - r.prefix);
            if ((value & mask) == r.network && (best == nullptr || r.prefix > best->prefix)) {
                best = &r;
            }
        }
        if (best != nullptr) {
            return best->name;
        }
        return std::nullopt;
    }
    const auto bytes = a.to_v6().to_bytes();
    const v6_range* best = nullptr;
    for (const auto& r : v6_ranges) {
        if (v6_matches(bytes, r) && (best == nullptr || r.prefix > best->prefix)) {
            best = &r;
        }
    }
    if (best != nullptr) {
        return best->name;
    }
    return std::nullopt;
}

} // namespace cwhook::client
