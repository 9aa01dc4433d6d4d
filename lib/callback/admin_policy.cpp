#include "callback/admin_policy.hpp"

#include "callback/key_url.hpp"
#include "client/https_client.hpp"
#include "core/json_string.hpp"
#include "core/text.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>

namespace cwhook::callback {

namespace net = boost::asio;

namespace {

// Letters, digits, '-', '.' and '_' (seen in internal names): what a Host header or a URL
// host may hold once IP literals are dealt with.
bool valid_name(std::string_view h)
{
    if (h.empty() || h.size() > 253) {
        return false;
    }
    return std::all_of(h.begin(), h.end(), [](unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    });
}

bool same_host(const host_port& entry, std::string_view host, std::uint16_t port)
{
    return entry.host == host && (!entry.port || *entry.port == port);
}

} // namespace

std::optional<host_port> parse_host_port(std::string_view text)
{
    host_port out;
    std::string_view port_text;
    bool has_port = false;
    if (text.starts_with('[')) {
        const auto end = text.find(']');
        if (end == std::string_view::npos) {
            return std::nullopt;
        }
        boost::system::error_code ec;
        const auto v6 = net::ip::make_address_v6(text.substr(1, end - 1), ec);
        if (ec || v6.scope_id() != 0) {
            return std::nullopt;
        }
        out.host = v6.to_string();
        const auto rest = text.substr(end + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return std::nullopt;
            }
            port_text = rest.substr(1);
            has_port = true;
        }
    } else {
        const auto colon = text.find(':');
        out.host = canonical_host(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = text.substr(colon + 1);
            has_port = true;
        }
        if (!valid_name(out.host)) {
            return std::nullopt;
        }
    }
    if (has_port) {
        out.port = parse_port(port_text);
        if (!out.port) {
            return std::nullopt;
        }
    }
    return out;
}

std::optional<std::string> normalize_origin(std::string_view text)
{
    std::string lower = canonical_host(text);  // lower case (a trailing dot is no origin's)
    std::string_view s = lower;
    std::uint16_t default_port = 0;
    if (s.starts_with("https://")) {
        default_port = 443;
        s.remove_prefix(8);
    } else if (s.starts_with("http://")) {
        default_port = 80;
        s.remove_prefix(7);
    } else {
        return std::nullopt;
    }
    if (s.ends_with('/')) {
        s.remove_suffix(1);  // an operator may paste "https://host/"; browsers never send it
    }
    const auto hp = parse_host_port(s);
    if (!hp) {
        return std::nullopt;
    }
    std::string out(lower.substr(0, lower.find("://") + 3));
    out += hp->host.find(':') != std::string::npos ? "[" + hp->host + "]" : hp->host;
    if (hp->port && *hp->port != default_port) {
        out += ':' + std::to_string(*hp->port);
    }
    return out;
}

bool is_json_content_type(std::string_view value)
{
    const auto semi = value.find(';');
    std::string_view type = value.substr(0, semi);
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) {
        type.remove_suffix(1);
    }
    while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) {
        type.remove_prefix(1);
    }
    return canonical_host(type) == "application/json";
}

boost::system::result<admin_policy, std::string> admin_policy::make(const admin_settings& s)
{
    using out = boost::system::result<admin_policy, std::string>;
    admin_policy p;
    for (const auto& h : s.hosts) {
        auto hp = parse_host_port(h);
        if (!hp) {
            return out(boost::system::in_place_error, "admin.hosts: " + json_quoted(h) + ": expected a host or host:port");
        }
        p.hosts_.push_back(std::move(*hp));
    }
    for (const auto& o : s.origins) {
        auto n = normalize_origin(o);
        if (!n) {
            return out(boost::system::in_place_error,
                       "admin.origins: " + json_quoted(o) + ": expected an origin like https://admin.example.com");
        }
        p.origins_.push_back(std::move(*n));
    }
    for (const auto& t : s.replay_targets) {
        auto hp = parse_host_port(t);
        if (!hp) {
            return out(boost::system::in_place_error,
                       "admin.replay_targets: " + json_quoted(t) + ": expected a host or host:port");
        }
        p.replay_targets_.push_back(std::move(*hp));
    }
    return p;
}

void admin_policy::add_listener(const std::vector<net::ip::tcp::endpoint>& bound)
{
    for (const auto& ep : bound) {
        auto a = ep.address();
        if (a.is_v6() && a.to_v6().is_v4_mapped()) {
            a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
        }
        if (a.is_unspecified()) {
            // Whatever address the client dialled, a browser only sends an IP literal as Host
            // when the page itself came from that address: no rebinding through a name.
            any_ip_literal_ = true;
            hosts_.push_back({"localhost", std::nullopt});
            continue;
        }
        hosts_.push_back({a.to_string(), std::nullopt});
        if (a.is_loopback()) {
            for (const char* name : {"localhost", "127.0.0.1", "::1"}) {
                hosts_.push_back({name, std::nullopt});
            }
        }
    }
}

bool admin_policy::host_allowed(std::string_view host_header) const
{
    const auto hp = parse_host_port(host_header);
    if (!hp) {
        return false;
    }
    // The port is not compared for the listener's own names: an SSH tunnel or a port
    // forward changes it, and rebinding needs a name the attacker controls, not a port.
    const bool listed = std::any_of(hosts_.begin(), hosts_.end(), [&](const host_port& e) {
        return e.host == hp->host && (!e.port || hp->port.value_or(80) == *e.port);
    });
    if (listed) {
        return true;
    }
    if (any_ip_literal_) {
        boost::system::error_code ec;
        (void)net::ip::make_address(hp->host, ec);
        return !ec;
    }
    return false;
}

bool admin_policy::origin_allowed(std::string_view origin) const
{
    const auto n = normalize_origin(origin);
    return n && std::find(origins_.begin(), origins_.end(), *n) != origins_.end();
}

std::optional<std::string> admin_policy::replay_target_problem(const client::request& target) const
{
    if (replay_targets_.empty()) {
        return std::string("replays through the API are off: list the receiving hosts in admin.replay_targets "
                           "(cwhook events replay on the command line is not limited)");
    }
    std::string host = canonical_host(target.host);
    boost::system::error_code ec;
    if (const auto v6 = net::ip::make_address_v6(host, ec); !ec) {
        host = v6.to_string();
    }
    const std::uint16_t default_port = target.tls ? 443 : 80;
    for (const auto& e : replay_targets_) {
        // "host" means the scheme's default port, as in a URL.
        const host_port wanted{e.host, e.port.value_or(default_port)};
        if (same_host(wanted, host, target.port)) {
            return std::nullopt;
        }
    }
    const bool v6 = host.find(':') != std::string::npos;
    return "to: " + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(target.port) +
           " is not in admin.replay_targets";
}

} // namespace cwhook::callback
