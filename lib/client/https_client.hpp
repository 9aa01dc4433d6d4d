// Outbound HTTP(S) client shared by the key fetcher and the Manage API:
// resolve -> private-address check -> connect -> TLS with SNI and verified peer name ->
// request -> bounded response, with a deadline per step (connect, handshake, exchange) under
// one overall deadline per attempt. Connections are kept alive and reused per host (a small
// bounded idle pool with an idle timeout). An optional retry policy retries 429 (honouring
// Retry-After), 5xx and connection failures with jittered exponential backoff; other 4xx are
// never retried, and a request that may have reached the server is retried only when its
// method is idempotent or the caller says so. Redirects are never followed (a 3xx is returned
// as is). No exceptions: a request without an HTTP answer is a client::failure (error.hpp)
// holding a client::errc and the detail for logs.
// Thread-safe: an https_client may be used by many coroutines at once.
#pragma once

#include "client/error.hpp"
#include "core/metrics.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
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
    std::string host; // DNS name or IP literal (no brackets)
    std::uint16_t port = 443;
    std::string target = "/";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

struct retry_policy {
    unsigned max_attempts = 1;                         // 1 = no retry
    std::chrono::milliseconds base_delay{100};         // attempt n (0-based) waits base * 2^n, jittered
    std::chrono::milliseconds max_delay{30'000};       // cap of one backoff wait
    std::chrono::milliseconds max_retry_after{60'000}; // a longer Retry-After is not waited for
    bool retry_non_idempotent = false;                 // also retry POST/PATCH that may have reached the server
    // Waits between attempts; tests inject one that records the delay and returns at once.
    // Empty: a steady_timer on the client's executor.
    std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> sleep;
};

struct options {
    std::chrono::milliseconds timeout{3000};             // one attempt, end to end
    std::chrono::milliseconds connect_timeout{10'000};   // resolve + TCP connect
    std::chrono::milliseconds handshake_timeout{10'000}; // TLS handshake
    std::chrono::milliseconds exchange_timeout{30'000};  // write the request, read the response
    std::size_t max_response_bytes = std::size_t{1024} * 1024;
    bool allow_private = false; // allow loopback/private/link-local destinations
    bool keep_alive = true;     // reuse pooled connections and return this one to the pool
    retry_policy retry{};
};

struct response {
    unsigned status = 0;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    unsigned attempts = 1;                                // how many attempts this answer took
    bool reused = false;                                  // the last attempt ran on a pooled connection
    std::string_view header(std::string_view name) const; // case-insensitive, "" when absent
};

// An HTTP answer (any status), or why there is none.
using fetch_result = boost::system::result<response, failure>;

// Bounds of the idle connection pool of one client.
struct pool_settings {
    std::size_t max_idle_per_host = 4;
    std::size_t max_idle_total = 32;
    std::chrono::milliseconds idle_timeout{30'000}; // pooled connections older than this are closed
};

// An operator-given http:// or https:// URL as a request (method and body left to the caller):
// scheme, host (name, IPv4, [IPv6]), port (default 80/443), path and query. No user-info or
// fragment. nullopt with a reason otherwise.
boost::system::result<request, std::string> request_for_url(std::string_view url);

// True for every address of the IANA special-purpose registries (loopback, private, link-local,
// shared, documentation, reserved, translation prefixes, ...) and multicast; see
// special_address.hpp. IPv4-mapped addresses are judged by their IPv4 address.
bool is_private_address(const boost::asio::ip::address& a);

// The pure parts of the retry decision, exposed for tests.
bool is_idempotent(std::string_view method);
// Delta-seconds of a Retry-After value; nullopt for a date or garbage (then backoff applies).
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value);
// The backoff before retry number `retry` (0-based): min(cap, base * 2^retry), then jittered
// into [d/2, d] with `unit` in [0, 1).
std::chrono::milliseconds backoff_delay(const retry_policy& p, unsigned retry, double unit);

class https_client {
public:
    // metrics: where retries and connection reuse are counted (may be null).
    https_client(boost::asio::any_io_executor ex, std::shared_ptr<boost::asio::ssl::context> tls,
                 metrics::registry* metrics = nullptr, pool_settings pool = {});
    ~https_client();
    https_client(const https_client&) = delete;
    https_client& operator=(const https_client&) = delete;

    // Arguments are copied before the first suspension; the caller need not keep them.
    // A 429/5xx that exhausted its retries is returned as a response (the caller maps it);
    // a failure is the last attempt's.
    boost::asio::awaitable<fetch_result> fetch(const request& req, const options& opt);

    // Idle pooled connections right now (tests, status).
    std::size_t idle_connections() const;
    // Closes every idle connection.
    void close_idle();

    struct pool;

private:
    boost::asio::any_io_executor ex_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    metrics::registry* metrics_;
    std::shared_ptr<pool> pool_;
};

} // namespace cwhook::client
