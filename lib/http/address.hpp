// Addresses: listen addresses ("host:port"), CIDR sets and X-Forwarded-For handling. Pure,
// thread-safe.
#pragma once

#include "core/error.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::http {

// Parses "host:port" / "[v6]:port" into an endpoint (numeric host, or "localhost").
std::optional<boost::asio::ip::tcp::endpoint> parse_listen(std::string_view text);

struct cidr {
    boost::asio::ip::address network;
    unsigned prefix = 0;
};

// "10.0.0.0/8", "::1/128", or a bare address (full-length prefix). nullopt when invalid.
std::optional<cidr> parse_cidr(std::string_view text);

class cidr_set {
public:
    cidr_set() = default;
    explicit cidr_set(std::vector<cidr> nets) : nets_(std::move(nets)) {}
    bool contains(const boost::asio::ip::address& a) const noexcept;
    bool empty() const noexcept { return nets_.empty(); }

private:
    std::vector<cidr> nets_;
};

// The client address of a request: the peer, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For entry that is not itself a trusted proxy. Invalid entries
// stop the walk (the last trusted hop is used). IPv4-mapped IPv6 peers are unmapped.
std::string client_address(const boost::asio::ip::address& peer, std::string_view x_forwarded_for,
                           const cidr_set& trusted);

} // namespace cwhook::http
