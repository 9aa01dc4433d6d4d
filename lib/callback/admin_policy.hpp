// Who may talk to the admin API and where its replays may go. A web page the operator opens
// can reach a loopback listener too: the Host check stops DNS rebinding (the browser sends the
// attacker's name), the Origin check stops cross-site requests, requiring a JSON content type
// on state-changing requests stops HTML forms and "simple" fetches (they cannot send one
// without a CORS preflight, which this API never answers), and replays go only to listed
// hosts. Pure functions of the settings; thread-safe once built.
#pragma once

#include "callback/settings.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::client {
struct request;
} // namespace cwhook::client

namespace cwhook::callback {

// A host with an optional port: "name", "name:port", "192.0.2.1:80", "[2001:db8::1]:80".
// The host is lower case without a trailing dot; an IPv6 host is in its canonical form
// without brackets. nullopt when the text is none of these.
struct host_port {
    std::string host;
    std::optional<std::uint16_t> port;
};
std::optional<host_port> parse_host_port(std::string_view text);

// An Origin as browsers send it: "scheme://host[:port]" with the default port left out,
// lower case. nullopt for anything else (including "null").
std::optional<std::string> normalize_origin(std::string_view text);

// "application/json", any case, parameters such as "; charset=utf-8" allowed.
bool is_json_content_type(std::string_view value);

class admin_policy {
public:
    // Validates admin.hosts, admin.origins and admin.replay_targets; the error names the key.
    static boost::system::result<admin_policy, std::string> make(const admin_settings& s);

    // Adds the listener's own addresses once it is bound: each address (any port); for a
    // loopback listener also localhost, 127.0.0.1 and ::1; for an unspecified one (0.0.0.0,
    // ::) any IP literal and localhost, since the address a client used is not known here.
    void add_listener(const std::vector<boost::asio::ip::tcp::endpoint>& bound);

    // The Host header of a request (missing or malformed: refused).
    bool host_allowed(std::string_view host_header) const;
    // The Origin header of a request that has one.
    bool origin_allowed(std::string_view origin) const;
    // nullopt when an API replay may go to `target` (a URL already parsed by
    // client::request_for_url); else why not, naming admin.replay_targets.
    std::optional<std::string> replay_target_problem(const client::request& target) const;

private:
    std::vector<host_port> hosts_;
    bool any_ip_literal_ = false;
    std::vector<std::string> origins_;
    std::vector<host_port> replay_targets_;
};

} // namespace cwhook::callback
