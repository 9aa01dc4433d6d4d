#include "callback/key_url.hpp"

#include "core/json_string.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace cwhook::callback {

// NOLINTNEXTLINE(cert-err58-cpp): one small allocation at start-up; bad_alloc there is fatal anyway
const std::vector<std::string_view> cloud_key_hosts = {
    "na.myconnectwise.net",         "eu.myconnectwise.net",         "au.myconnectwise.net",
    "aus.myconnectwise.net",        "za.myconnectwise.net",         "sandbox-na.myconnectwise.net",
    "sandbox-eu.myconnectwise.net", "sandbox-au.myconnectwise.net", "staging.connectwisedev.com",
};

std::string canonical_host(std::string_view host)
{
    std::string out(host);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    if (!out.empty() && out.back() == '.') {
        out.pop_back();
    }
    return out;
}

namespace {

std::optional<std::uint16_t> parse_port(std::string_view s)
{
    unsigned p = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || p == 0 || p > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(p);
}

bool valid_host_name(std::string_view h)
{
    if (h.empty() || h.size() > 253) {
        return false;
    }
    return std::all_of(h.begin(), h.end(), [](unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

using check_result = boost::system::result<key_target, std::string>;

check_result refuse(std::string why)
{
    // in_place_error: key_target is an aggregate, so a bare string would be ambiguous.
    return check_result(boost::system::in_place_error, std::move(why));
}

} // namespace

boost::system::result<key_url_policy, std::string> key_url_policy::make(const std::vector<std::string>& extra_hosts)
{
    key_url_policy p;
    std::vector<entry> entries;
    // Operator entries first: a host listed by the operator is operator_listed even when it
    // is also a cloud host.
    for (const auto& raw : extra_hosts) {
        std::string_view s = raw;
        std::string host;
        std::uint16_t port = 443;
        // Quoted with escapes: the entry comes from a config file or the environment and the
        // message must stay one line whatever it holds.
        const auto bad = [&] {
            std::string m;
            append_json_string(m, raw);
            return m + ": expected host or host:port";
        };
        if (s.starts_with('[')) {
            const auto end = s.find(']');
            if (end == std::string_view::npos) {
                return bad();
            }
            host = canonical_host(s.substr(1, end - 1));
            const auto rest = s.substr(end + 1);
            if (!rest.empty()) {
                if (rest.front() != ':') {
                    return bad();
                }
                const auto pp = parse_port(rest.substr(1));
                if (!pp) {
                    return bad();
                }
                port = *pp;
            }
            boost::system::error_code ec;
            const auto v6 = boost::asio::ip::make_address_v6(host, ec);
            if (ec) {
                return bad();
            }
            host = v6.to_string();  // the form check() compares against
        } else {
            const auto colon = s.find(':');
            host = canonical_host(s.substr(0, colon));
            if (colon != std::string_view::npos) {
                const auto pp = parse_port(s.substr(colon + 1));
                if (!pp) {
                    return bad();
                }
                port = *pp;
            }
            if (!valid_host_name(host)) {
                return bad();
            }
        }
        entries.push_back(entry{std::move(host), port, true});
    }
    for (const auto h : cloud_key_hosts) {
        entries.push_back(entry{std::string(h), 443, false});
    }
    p.entries_.store(std::make_shared<const std::vector<entry>>(std::move(entries)));
    return p;
}

boost::system::result<key_target, std::string> key_url_policy::check(std::string_view url) const
{
    // Cheap screening before the URL parser: a key URL is printable ASCII and starts with
    // "https://". Only such text reaches Boost.URL (1.81 asserts on some rootless paths with
    // raw non-ASCII bytes, e.g. "w:\xff", found by fuzzing).
    if (!std::all_of(url.begin(), url.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
        return refuse(url.empty() ? "not an absolute URL" : "URL holds bytes outside printable ASCII");
    }
    if (url.size() < 8 || canonical_host(url.substr(0, 8)) != "https://") {
        const auto colon = url.find(':');
        const bool has_scheme =
            colon != std::string_view::npos && colon > 0 &&
            std::isalpha(static_cast<unsigned char>(url[0])) &&
            std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(colon), [](unsigned char c) {
                return std::isalnum(c) || c == '+' || c == '-' || c == '.';
            });
        return refuse(has_scheme ? "scheme must be https" : "not an absolute URL");
    }
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) {
        return refuse("not an absolute URL");
    }
    const boost::urls::url_view u = *parsed;
    // The authority must run exactly to the first '/', '?' or '#'. Boost.URL 1.81 stops early on
    // some malformed authorities ("https://[::1]x", "https://127.0.0.1:9443.evil.example/") and
    // would leave the rest as a path not starting with '/'; found by fuzzing.
    const auto after_scheme = url.substr(8);
    if (std::string_view(u.encoded_authority()) != after_scheme.substr(0, after_scheme.find_first_of("/?#"))) {
        return refuse("invalid host or port");
    }
    if (u.scheme_id() != boost::urls::scheme::https) {
        return refuse("scheme must be https");
    }
    if (u.has_userinfo()) {
        return refuse("user-info is not allowed");
    }
    if (u.has_fragment()) {
        return refuse("fragment is not allowed");
    }
    key_target t;
    switch (u.host_type()) {
    case boost::urls::host_type::name: {
        const std::string_view encoded = u.encoded_host();
        if (encoded.find('%') != std::string_view::npos) {
            return refuse("percent-encoded host is not allowed");
        }
        t.host = canonical_host(encoded);
        if (!valid_host_name(t.host)) {
            return refuse("invalid host name");
        }
        break;
    }
    case boost::urls::host_type::ipv4: t.host = std::string(u.encoded_host()); break;
    case boost::urls::host_type::ipv6: t.host = canonical_host(u.host_ipv6_address().to_string()); break;
    default: return refuse("unsupported host");
    }
    if (u.has_port()) {
        const auto pp = parse_port(u.port());
        if (!pp) {
            return refuse("invalid port");
        }
        t.port = *pp;
    }
    const auto entries = entries_.load();
    const auto it = std::find_if(entries->begin(), entries->end(),
                                 [&](const entry& e) { return e.host == t.host && e.port == t.port; });
    if (it == entries->end()) {
        const bool v6 = t.host.find(':') != std::string::npos;
        const auto shown = v6 ? "[" + t.host + "]" : t.host;
        return refuse(t.port == 443 ? "host " + shown + " is not allowed"
                                    : "host " + shown + ":" + std::to_string(t.port) + " is not allowed");
    }
    t.operator_listed = it->operator_listed;
    std::string_view path = u.encoded_path();
    if (!path.empty() && !path.starts_with('/')) {
        return refuse("invalid path");
    }
    t.target = path.empty() ? "/" : std::string(path);
    if (u.has_query()) {
        t.target += '?';
        t.target += std::string_view(u.encoded_query());
    }
    return t;
}

} // namespace cwhook::callback
