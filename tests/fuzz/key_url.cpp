// Fuzz target: key_url_policy::check(), the gate in front of every outbound key fetch. An
// accepted URL must name an allowlisted host and port, Manage's key endpoint and a listed
// company, and checking the URL rebuilt from what was accepted must give the same answer (no
// parser differential between the check and the request that follows it).
#include "callback/key_url.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void require(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "key_url fuzz: %s\n", what);
        std::abort();
    }
}

const cwhook::callback::key_url_policy& policy()
{
    static const auto p = [] {
        auto made = cwhook::callback::key_url_policy::make({"manage.example.com:8443", "127.0.0.1:9443", "[::1]:443"},
                                                           {"cobalt", "Acme_Corp"});
        require(made.has_value(), "the allowlist was refused");
        return *made;
    }();
    return p;
}

bool listed(const cwhook::callback::key_target& t)
{
    return (t.host == "manage.example.com" && t.port == 8443) || (t.host == "127.0.0.1" && t.port == 9443) ||
           (t.host == "::1" && t.port == 443);
}

bool cloud(const cwhook::callback::key_target& t)
{
    const auto& hosts = cwhook::callback::cloud_key_hosts;
    return t.port == 443 && std::find(hosts.begin(), hosts.end(), t.host) != hosts.end();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view url(reinterpret_cast<const char*>(data), size);
    const auto checked = policy().check(url);
    if (!checked) {
        require(!checked.error().detail.empty(), "a refusal without a reason");
        return 0;
    }
    const auto& t = *checked;
    require(listed(t) || cloud(t), "a host:port outside the allowlist was accepted");
    require(t.operator_listed == listed(t), "operator_listed disagrees with the allowlist");
    require(t.host == cwhook::callback::canonical_host(t.host), "the host is not in canonical form");
    require(t.target.starts_with('/'), "the request target does not start with /");
    const auto query = t.target.find('?');
    require(query != std::string::npos, "the request target has no query");
    const std::string_view path = std::string_view(t.target).substr(0, query);
    require(path.ends_with("/system/callbackkey/index.rails") && path.find('/', 1) != std::string_view::npos &&
                path.find("%") == std::string_view::npos,
            "the path is not the key endpoint");
    const auto company = cwhook::lower_ascii(t.company);
    require(company == "cobalt" || company == "acme_corp", "a company that is not listed was accepted");
    require(!t.key_id.empty(), "a key_url without an id was accepted");
    // The target goes verbatim into the GET request line.
    require(
        std::all_of(t.target.begin(), t.target.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f && c != '#'; }),
        "the request target holds a space, a control byte, a non-ASCII byte or #");

    const bool v6 = t.host.find(':') != std::string::npos;
    const std::string rebuilt =
        "https://" + (v6 ? "[" + t.host + "]" : t.host) + ":" + std::to_string(t.port) + t.target;
    const auto again = policy().check(rebuilt);
    require(again.has_value(), "the URL rebuilt from an accepted one was refused");
    require(again->host == t.host && again->port == t.port && again->target == t.target &&
                again->operator_listed == t.operator_listed && again->cache_key() == t.cache_key(),
            "the URL rebuilt from an accepted one names another target");
    return 0;
}
