#include "http/address.hpp"

#include "core/text.hpp"

#include <boost/asio/ip/address_v6.hpp>

#include <charconv>

namespace cwhook::http {

namespace ip = boost::asio::ip;

namespace {

ip::address unmap(const ip::address& a)
{
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        return ip::make_address_v4(ip::v4_mapped, a.to_v6());
    }
    return a;
}

std::optional<ip::address> parse_address(std::string_view text)
{
    boost::system::error_code ec;
    auto a = ip::make_address(std::string(text), ec);
    if (ec) {
        return std::nullopt;
    }
    return unmap(a);
}

// Proxies write IPv6 entries bare, bracketed, or bracketed with a port; IPv4 may carry a port.
std::optional<ip::address> parse_forwarded_entry(std::string_view s)
{
    s = trim(s);
    if (s.starts_with('[')) {
        const auto end = s.find(']');
        if (end == std::string_view::npos) {
            return std::nullopt;
        }
        return parse_address(s.substr(1, end - 1));
    }
    if (const auto colon = s.find(':'); colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
        s = s.substr(0, colon);  // "1.2.3.4:5678"
    }
    return parse_address(s);
}

} // namespace

std::optional<cidr> parse_cidr(std::string_view text)
{
    text = trim(text);
    const auto slash = text.find('/');
    const auto addr = parse_address(text.substr(0, slash));
    if (!addr) {
        return std::nullopt;
    }
    const unsigned max_prefix = addr->is_v4() ? 32 : 128;
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const auto p = text.substr(slash + 1);
        const auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc{} || ptr != p.data() + p.size() || prefix > max_prefix) {
            return std::nullopt;
        }
    }
    return cidr{*addr, prefix};
}

bool cidr_set::contains(const ip::address& raw) const noexcept
{
    const auto a = unmap(raw);
    for (const auto& n : nets_) {
        if (n.network.is_v4() != a.is_v4()) {
            continue;
        }
        if (a.is_v4()) {
            const auto mask = n.prefix == 0 ? 0u : ~0u << (32 - n.prefix);
            if ((a.to_v4().to_uint() & mask) == (n.network.to_v4().to_uint() & mask)) {
                return true;
            }
        } else {
            const auto x = a.to_v6().to_bytes();
            const auto y = n.network.to_v6().to_bytes();
            unsigned bits = n.prefix;
            bool match = true;
            for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
                const unsigned take = bits >= 8 ? 8 : bits;
                const auto mask = static_cast<unsigned char>(0xff << (8 - take));
                if ((x[i] & mask) != (y[i] & mask)) {
                    match = false;
                    break;
                }
                bits -= take;
            }
            if (match) {
                return true;
            }
        }
    }
    return false;
}

std::string client_address(const ip::address& peer_raw, std::string_view xff, const cidr_set& trusted)
{
    const auto peer = unmap(peer_raw);
    if (xff.empty() || !trusted.contains(peer)) {
        return peer.to_string();
    }
    // Walk from the right: each hop appended the address it saw. The first address that is
    // not a trusted proxy is the client; everything left of it could be forged.
    ip::address current = peer;
    std::string_view rest = xff;
    while (!rest.empty()) {
        const auto comma = rest.rfind(',');
        const auto entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
        const auto a = parse_forwarded_entry(entry);
        if (!a) {
            break;
        }
        current = *a;
        if (!trusted.contains(current)) {
            break;
        }
    }
    return current.to_string();
}

std::optional<ip::tcp::endpoint> parse_listen(std::string_view text)
{
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto end = text.find(']');
        if (end == std::string_view::npos || end + 1 >= text.size() || text[end + 1] != ':') {
            return std::nullopt;
        }
        host = text.substr(1, end - 1);
        port = text.substr(end + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) {
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    unsigned p = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || p > 65535) {
        return std::nullopt;
    }
    if (host == "localhost") {
        host = "127.0.0.1";
    }
    boost::system::error_code aec;
    const auto addr = ip::make_address(std::string(host), aec);
    if (aec) {
        return std::nullopt;
    }
    return ip::tcp::endpoint{addr, static_cast<unsigned short>(p)};
}

} // namespace cwhook::http
