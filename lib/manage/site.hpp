// Where Manage is: manage.site and manage.api_host parsed into endpoints. Pure functions,
// thread-safe; no I/O, so configuration checks can use them without the API client.
#pragma once

#include "manage/settings.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook::manage {

struct endpoint {
    bool tls = true;
    std::string host;
    std::uint16_t port = 443;
    std::string display() const; // "https://host[:port]"
};

// site: "host", "host:port", "https://host[:port]", "http://host[:port]" (a trailing / or
// path is ignored). Plain http is refused unless the host is loopback. Errors say why.
boost::system::result<endpoint, std::string> parse_site(std::string_view site);
// "localhost", 127.0.0.0/8, ::1 (and IPv4-mapped loopback).
bool is_loopback_host(std::string_view host);
// The ConnectWise cloud sites answer the API on their api- host (na.myconnectwise.net ->
// api-na.myconnectwise.net, staging.connectwisedev.com -> api-staging.connectwisedev.com);
// any other host (on-premise) answers it itself.
std::string api_host_for(std::string_view site_host);
// The API endpoint: api_host when set (scheme and port as the site's unless given), else
// the site mapped by api_host_for.
boost::system::result<endpoint, std::string> api_endpoint(const settings& s);

} // namespace cwhook::manage
