// key_url validation (PROTOCOL.md section 3). The URL comes from the untrusted body, so it
// must name an allowlisted Manage site over https before anything is fetched.
// Immutable after construction; thread-safe.
#pragma once

#include "core/error.hpp"

#include <boost/asio/ip/address.hpp>

#include <cstdint>
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

private:
    struct entry {
        std::string host;
        std::uint16_t port;
        bool operator_listed;
    };
    std::vector<entry> entries_;
};

// Lower-cases and strips one trailing dot: the canonical host form used for comparison.
std::string canonical_host(std::string_view host);

} // namespace cwhook::callback
