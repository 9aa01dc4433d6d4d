// key_url validation (PROTOCOL.md section 3). The URL comes from the untrusted body, so it
// must name an allowlisted Manage site over https before anything is fetched.
// Thread-safe; the allowlist can be replaced while checks run (see operator=).
#pragma once

#include "core/error.hpp"

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
};

class key_url_policy {
public:
    // Entries "host" (port 443) or "host:port" / "[v6]:port"; invalid entries are errors.
    static boost::system::result<key_url_policy, std::string> make(const std::vector<std::string>& extra_hosts);

    // https only, no user-info, no fragment, host:port allowlisted, IP literals only when listed.
    // On failure the string says why (safe to return to the client).
    boost::system::result<key_target, std::string> check(std::string_view url) const;

    // Assignment swaps the allowlist atomically (configuration reload): a check() running
    // concurrently sees either the old or the new list, never a mix.
    key_url_policy(const key_url_policy& other) : entries_(other.entries_.load()) {}
    key_url_policy& operator=(const key_url_policy& other)
    {
        entries_.store(other.entries_.load());
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
    std::atomic<std::shared_ptr<const std::vector<entry>>> entries_{};
};

// Lower-cases and strips one trailing dot: the canonical host form used for comparison.
std::string canonical_host(std::string_view host);

} // namespace cwhook::callback
