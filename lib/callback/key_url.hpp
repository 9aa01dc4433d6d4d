// key_url validation (docs/PROTOCOL.md section 3). The URL comes from the untrusted body, so before
// anything is fetched it must name an allowlisted Manage site over https, be Manage's key
// endpoint, and name one of the operator's own Manage companies: the cloud sites serve the
// key of every company to anyone, so a host check alone lets any Manage customer sign a body
// with a key of their own.
// Thread-safe; the allowlist can be replaced while checks run (see operator=).
#pragma once

#include "callback/refusal.hpp"
#include "core/error.hpp"
#include "core/text.hpp"

#include <boost/asio/ip/address.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::callback {

// The ConnectWise cloud site hosts, always allowed on port 443.
extern const std::vector<std::string_view> cloud_key_hosts;

struct key_target {
    std::string host;        // lower case, no trailing dot
    std::uint16_t port = 443;
    std::string target;      // path and query to GET, exactly as in the URL
    bool operator_listed = false;  // host named in allowed_key_hosts (may then be private/loopback)
    std::string company;     // the query's companyName, decoded, as written
    std::string key_id;      // the query's id, decoded

    // What the key cache keys on: (host, port, company without case, id). The codebase in
    // the path does not take part: one company's key is the same under every codebase.
    std::string cache_key() const;
};

// Why check() refused a URL: the reason (key_url_not_allowed, key_url_not_key_endpoint or
// company_not_allowed) and a short text that is safe to return to the client.
struct key_url_refusal {
    refusal reason;
    std::string detail;
};

class key_url_policy {
public:
    // Entries "host" (port 443) or "host:port" / "[v6]:port"; invalid entries are errors.
    // companies: the Manage company ids whose keys are trusted (compared without case); an
    // empty list refuses every key_url with company_not_allowed.
    static boost::system::result<key_url_policy, std::string> make(const std::vector<std::string>& extra_hosts,
                                                                   const std::vector<std::string>& companies = {});

    // https only, no user-info, no fragment, host:port allowlisted, IP literals only when
    // listed; the path "/<codebase>//system/callbackkey/index.rails" (one or two slashes);
    // the query companyName and id only, each once, in any order; companyName listed.
    boost::system::result<key_target, key_url_refusal> check(std::string_view url) const;

    // True when at least one company is listed.
    bool has_companies() const;

    // Assignment swaps the allowlist atomically (configuration reload): a check() running
    // concurrently sees either the old or the new list, never a mix.
    key_url_policy(const key_url_policy& other) : lists_(other.lists_.load()) {}
    key_url_policy& operator=(const key_url_policy& other)
    {
        lists_.store(other.lists_.load());
        return *this;
    }
    ~key_url_policy() = default;

private:
    key_url_policy() = default;
    struct entry {
        std::string host;
        std::uint16_t port;
        bool operator_listed;
    };
    struct lists {
        std::vector<entry> hosts;
        std::vector<std::string> companies;  // lower case
    };
    std::atomic<std::shared_ptr<const lists>> lists_{};
};

// Lower-cases and strips one trailing dot: the canonical host form used for comparison.
std::string canonical_host(std::string_view host);


} // namespace cwhook::callback
