// The IANA special-purpose address registries (IPv4 and IPv6), plus multicast and the
// deprecated site-local range: addresses the outbound client refuses to connect to unless a
// destination is explicitly allowed (loopback, private, link-local, shared, documentation,
// benchmarking, reserved, translation and tunnelling prefixes, ...). Pure and thread-safe.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string_view>

namespace cwhook::client {

// The name of the special-purpose range `a` belongs to ("private-use", "shared address
// space", "6to4", ...), or nullopt for an ordinary global unicast address. IPv4-mapped IPv6
// addresses (::ffff:0:0/96) are judged by the IPv4 address they carry.
std::optional<std::string_view> special_purpose_range(const boost::asio::ip::address& a);

} // namespace cwhook::client
