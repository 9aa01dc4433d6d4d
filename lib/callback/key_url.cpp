#include "callback/key_url.hpp"

#include "core/json_string.hpp"
#include "core/text.hpp"

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

std::string key_target::cache_key() const
{
    // Separated by bytes that check() never lets into a host, company or id.
    std::string k = host;
    k += '\x1f';
    k += std::to_string(port);
    k += '\x1f';
    k += lower_ascii(company);
    k += '\x1f';
    k += key_id;
    return k;
}

std::string canonical_host(std::string_view host)
{
    std::string out = lower_ascii(host);
    if (!out.empty() && out.back() == '.') {
        out.pop_back();
    }
    return out;
}

namespace {

bool valid_host_name(std::string_view h)
{
    if (h.empty() || h.size() > 253) {
        return false;
    }
    return std::all_of(h.begin(), h.end(), [](unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

using check_result = boost::system::result<key_target, key_url_refusal>;

check_result refuse(std::string why, refusal reason = refusal::key_url_not_allowed)
{
    return check_result(boost::system::in_place_error, key_url_refusal{reason, std::move(why)});
}

// "/<codebase>//system/callbackkey/index.rails", with one or two slashes after the codebase
// (Manage writes two). The codebase is one plain segment such as "v2025_1".
bool is_key_endpoint_path(std::string_view path)
{
    if (!path.starts_with('/')) {
        return false;
    }
    path.remove_prefix(1);
    const auto slash = path.find('/');
    if (slash == 0 || slash == std::string_view::npos) {
        return false;
    }
    const auto codebase = path.substr(0, slash);
    if (codebase == "." || codebase == ".." ||
        !std::all_of(codebase.begin(), codebase.end(), [](unsigned char c) {
            return std::isalnum(c) || c == '_' || c == '-' || c == '.';
        })) {
        return false;
    }
    path.remove_prefix(slash + 1);
    if (path.starts_with('/')) {
        path.remove_prefix(1);
    }
    return path == "system/callbackkey/index.rails";
}

// A decoded query value: printable ASCII without spaces, at most 128 bytes.
bool plain_value(std::string_view v)
{
    return !v.empty() && v.size() <= 128 &&
           std::all_of(v.begin(), v.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

} // namespace

boost::system::result<key_url_policy, std::string> key_url_policy::make(const std::vector<std::string>& extra_hosts,
                                                                       const std::vector<std::string>& companies)
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
    std::vector<std::string> listed;
    for (const auto& c : companies) {
        if (!plain_value(c)) {
            std::string m;
            append_json_string(m, c);
            return m + ": a company id is printable ASCII without spaces, at most 128 characters";
        }
        listed.push_back(lower_ascii(c));
    }
    std::sort(listed.begin(), listed.end());
    listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
    p.lists_.store(std::make_shared<const lists>(lists{std::move(entries), std::move(listed)}));
    return p;
}

bool key_url_policy::has_companies() const { return !lists_.load()->companies.empty(); }

namespace {

// Cheap screening before the URL parser: a key URL is printable ASCII and starts with
// "https://". Only such text reaches Boost.URL (1.81 asserts on some rootless paths with
// raw non-ASCII bytes, e.g. "w:\xff", found by fuzzing). nullopt: the text may be parsed.
std::optional<key_url_refusal> screen(std::string_view url)
{
    const auto no = [](std::string why) { return key_url_refusal{refusal::key_url_not_allowed, std::move(why)}; };
    if (!std::all_of(url.begin(), url.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
        return no(url.empty() ? "not an absolute URL" : "URL holds bytes outside printable ASCII");
    }
    if (url.size() < 8 || canonical_host(url.substr(0, 8)) != "https://") {
        const auto colon = url.find(':');
        const bool has_scheme =
            colon != std::string_view::npos && colon > 0 &&
            std::isalpha(static_cast<unsigned char>(url[0])) &&
            std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(colon), [](unsigned char c) {
                return std::isalnum(c) || c == '+' || c == '-' || c == '.';
            });
        return no(has_scheme ? "scheme must be https" : "not an absolute URL");
    }
    return std::nullopt;
}

// The canonical host and the port of a parsed https URL.
check_result read_authority(std::string_view url, const boost::urls::url_view& u)
{
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
    return t;
}

// The key endpoint's query: companyName and id, each exactly once, nothing else. Fills
// t.company and t.key_id.
check_result read_query(const boost::urls::url_view& u, key_target t)
{
    std::optional<std::string> company;
    std::optional<std::string> id;
    if (u.has_query()) {
        for (const auto& param : u.params()) {
            std::optional<std::string>* slot = param.key == "companyName" ? &company : param.key == "id" ? &id : nullptr;
            if (slot == nullptr) {
                return refuse("query may hold only companyName and id", refusal::key_url_not_key_endpoint);
            }
            if (slot->has_value()) {
                return refuse("query repeats " + param.key, refusal::key_url_not_key_endpoint);
            }
            if (!param.has_value || !plain_value(param.value)) {
                return refuse("query " + param.key + " is empty or not plain text", refusal::key_url_not_key_endpoint);
            }
            *slot = param.value;
        }
    }
    if (!company) {
        return refuse("key_url names no companyName", refusal::company_not_allowed);
    }
    if (!id) {
        return refuse("query has no id", refusal::key_url_not_key_endpoint);
    }
    t.company = std::move(*company);
    t.key_id = std::move(*id);
    return t;
}

} // namespace

boost::system::result<key_target, key_url_refusal> key_url_policy::check(std::string_view url) const
{
    if (auto no = screen(url)) {
        return check_result(boost::system::in_place_error, std::move(*no));
    }
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) {
        return refuse("not an absolute URL");
    }
    const boost::urls::url_view u = *parsed;
    auto t = read_authority(url, u);
    if (!t) {
        return t;
    }
    const auto lists = lists_.load();
    const auto& entries = lists->hosts;
    const auto it = std::find_if(entries.begin(), entries.end(),
                                 [&](const entry& e) { return e.host == t->host && e.port == t->port; });
    if (it == entries.end()) {
        const bool v6 = t->host.find(':') != std::string::npos;
        const auto shown = v6 ? "[" + t->host + "]" : t->host;
        return refuse(t->port == 443 ? "host " + shown + " is not allowed"
                                     : "host " + shown + ":" + std::to_string(t->port) + " is not allowed");
    }
    t->operator_listed = it->operator_listed;
    const std::string_view path = u.encoded_path();
    if (!is_key_endpoint_path(path)) {
        return refuse("path is not /<codebase>//system/callbackkey/index.rails", refusal::key_url_not_key_endpoint);
    }
    t = read_query(u, std::move(*t));
    if (!t) {
        return t;
    }
    if (!std::binary_search(lists->companies.begin(), lists->companies.end(), lower_ascii(t->company))) {
        return refuse(lists->companies.empty() ? "no Manage company is configured (verify.companies)"
                                               : "company is not one of verify.companies",
                      refusal::company_not_allowed);
    }
    t->target = std::string(path);
    t->target += '?';
    t->target += std::string_view(u.encoded_query());
    return t;
}

} // namespace cwhook::callback
