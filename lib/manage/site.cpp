#include "manage/site.hpp"

#include "core/text.hpp"

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include <charconv>

namespace cwhook::manage {

namespace net = boost::asio;

namespace {

boost::system::result<endpoint, std::string> error(std::string why)
{
    return {boost::system::in_place_error, std::move(why)};
}

// Every API call carries the member's keys and the clientId in its headers.
constexpr std::string_view plain_http_refusal =
    "plain http:// is allowed only to a loopback host (127.0.0.0/8, ::1, localhost), such as "
    "`cwhook emulate --http`; use https:// (API keys would cross the network unencrypted)";

} // namespace

std::string endpoint::display() const
{
    const bool v6 = host.find(':') != std::string::npos;
    const auto h = v6 ? "[" + host + "]" : host;
    const bool default_port = port == (tls ? 443 : 80);
    return fmt::format("{}://{}{}", tls ? "https" : "http", h, default_port ? "" : fmt::format(":{}", port));
}

boost::system::result<endpoint, std::string> parse_site(std::string_view site)
{
    endpoint ep;
    std::string_view rest = site;
    const auto lower = lower_ascii(site.substr(0, 8));
    if (lower.starts_with("https://")) {
        rest.remove_prefix(8);
    } else if (lower.starts_with("http://")) {
        rest.remove_prefix(7);
        ep.tls = false;
        ep.port = 80;
    } else if (site.find("://") != std::string_view::npos) {
        return error("expected a host name or an http(s):// URL");
    }
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (rest.empty()) {
        return error("no host");
    }
    if (rest.find('@') != std::string_view::npos) {
        return error("must not contain user information");
    }
    std::string_view host = rest;
    std::string_view port;
    if (rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            return error("unterminated [IPv6] address");
        }
        host = rest.substr(1, close - 1);
        const auto after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return error("expected :port after ]");
            }
            port = after.substr(1);
        }
    } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty()) {
        return error("no host");
    }
    for (const char c : host) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '%' || c == '\\') {
            return error("the host has characters a host name cannot have");
        }
    }
    if (!port.empty()) {
        unsigned p = 0;
        const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535) {
            return error(fmt::format("bad port \"{}\"", port));
        }
        ep.port = static_cast<std::uint16_t>(p);
    }
    ep.host = lower_ascii(host);
    if (!ep.tls && !is_loopback_host(ep.host)) {
        return error(std::string(plain_http_refusal));
    }
    return ep;
}

bool is_loopback_host(std::string_view host)
{
    if (lower_ascii(host) == "localhost") {
        return true;
    }
    boost::system::error_code ec;
    auto a = net::ip::make_address(std::string(host), ec);
    if (ec) {
        return false;
    }
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
    }
    return a.is_loopback();
}

std::string api_host_for(std::string_view site_host)
{
    auto host = lower_ascii(site_host);
    for (const std::string_view region : {"na", "eu", "au", "aus", "za"}) {
        if (host == fmt::format("{}.myconnectwise.net", region)) {
            return fmt::format("api-{}", host);
        }
    }
    if (host == "staging.connectwisedev.com") {
        return "api-staging.connectwisedev.com";
    }
    return host;
}

boost::system::result<endpoint, std::string> api_endpoint(const settings& s)
{
    auto site = parse_site(s.site);
    if (!site) {
        return error("manage.site: " + site.error());
    }
    if (s.api_host.empty()) {
        site->host = api_host_for(site->host);
        return site;
    }
    const bool has_scheme = s.api_host.find("://") != std::string::npos;
    auto ep = parse_site(s.api_host);
    if (!ep) {
        return error("manage.api_host: " + ep.error());
    }
    if (!has_scheme) {
        const bool port_given = s.api_host.find(':') != std::string::npos;
        ep->tls = site->tls;
        if (!port_given) {
            ep->port = site->port;
        }
        if (!ep->tls && !is_loopback_host(ep->host)) {
            return error(fmt::format("manage.api_host: \"{}\": takes plain http from manage.site; {}", s.api_host,
                                     plain_http_refusal));
        }
    }
    return ep;
}

} // namespace cwhook::manage
