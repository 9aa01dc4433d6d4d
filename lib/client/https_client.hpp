// Outbound HTTP(S) client shared by the key fetcher (and later the Manage API):
// resolve -> private-address check -> connect -> TLS with SNI and verified peer name ->
// one request -> bounded response. One deadline covers the whole exchange. Redirects are
// never followed (a 3xx is returned as is). No exceptions: failures are errc values
// (key_fetch_failed for transport/TLS/timeouts, response_too_large, private_address).
// Thread-safe: an https_client may be used by many coroutines at once.
#pragma once

#include "core/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cwhook::client {

struct request {
    std::string method = "GET";
    bool tls = true;
    std::string host;        // DNS name or IP literal (no brackets)
    std::uint16_t port = 443;
    std::string target = "/";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

struct options {
    std::chrono::milliseconds timeout{3000};  // whole exchange
    std::size_t max_response_bytes = std::size_t{1024} * 1024;
    bool allow_private = false;  // allow loopback/private/link-local destinations
};

struct response {
    unsigned status = 0;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string_view header(std::string_view name) const;  // case-insensitive, "" when absent
};

// An operator-given http:// or https:// URL as a request (method and body left to the caller):
// scheme, host (name, IPv4, [IPv6]), port (default 80/443), path and query. No user-info or
// fragment. nullopt with a reason otherwise.
boost::system::result<request, std::string> request_for_url(std::string_view url);

// True for loopback, private (RFC 1918, ULA), link-local, CGNAT, unspecified and multicast.
bool is_private_address(const boost::asio::ip::address& a);

class https_client {
public:
    https_client(boost::asio::any_io_executor ex, std::shared_ptr<boost::asio::ssl::context> tls);

    // Arguments are copied before the first suspension; the caller need not keep them.
    boost::asio::awaitable<result<response>> fetch(const request& req, const options& opt);

    // Why the last failure happened, for logs (thread-local, human text, never secrets).
    static std::string last_error();

private:
    boost::asio::any_io_executor ex_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
};

} // namespace cwhook::client
