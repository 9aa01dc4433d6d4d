// Settings of the Manage REST client (the [manage] section) and the desired subscriptions
// ([[subscriptions]]). Plain data; defaults are the member initializers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::manage {

enum class paging_mode { forward_only, navigable };

struct settings {
    // "na.myconnectwise.net", an on-premise host, "host:port", or a URL "https://host[:port]";
    // "http://host:port" talks plain HTTP (the emulator's quick mode, never a real Manage).
    std::string site;
    std::string company_id;
    std::string public_key;
    std::string private_key;                   // secret
    std::string client_id;                     // secret-ish: ConnectWise asks to treat it like a password
    std::string api_version = "2025.1";        // Accept: application/vnd.connectwise.com+json; version=...
    std::string api_host;                      // overrides the API host derived from site ("host" or "host:port")
    std::string codebase;                      // overrides /login/companyinfo discovery, e.g. "v2025_1/"
    std::string ca_file;                       // extra CA bundle (an on-premise or emulator certificate)
    std::chrono::milliseconds timeout{30'000}; // one attempt of one request
    std::chrono::milliseconds connect_timeout{10'000}; // resolve + connect (+ TLS handshake)
    unsigned max_attempts = 4;                         // 1 = never retry
    std::chrono::milliseconds retry_max_delay{10'000}; // cap of one backoff wait
    std::size_t page_size = 1000;                      // 1..1000
    paging_mode paging = paging_mode::forward_only;
    std::size_t max_response_bytes = std::size_t{32} * 1024 * 1024;
    // The daemon's subscription check (0 = off) and whether it repairs what it finds.
    std::chrono::milliseconds check_interval{0};
    bool auto_heal = false;
};

// One callback the configuration asks for.
struct subscription {
    std::string type; // lower case, from the table in types.hpp
    std::string level;
    std::int64_t object_id = 1; // 1 for level owner
    std::string url;
    std::string description;

    bool operator==(const subscription&) const = default;
};

// "manage.site, manage.client_id: not set" when a key the API needs is empty.
std::optional<std::string> missing_keys(const settings& s);

} // namespace cwhook::manage
