// Settings of the HTTP server (the [server] section). Plain data; defaults are the member
// initializers.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace cwhook::http {

struct settings {
    std::vector<std::string> listen{"127.0.0.1:8080"};  // plain HTTP "host:port" ("[::1]:8080")
    std::vector<std::string> tls_listen{};
    std::string tls_cert;
    std::string tls_key;
    std::size_t max_body_bytes = std::size_t{1024} * 1024;
    std::size_t max_header_bytes = std::size_t{16} * 1024;
    std::size_t max_connections = 1024;
    // Connections one client address may hold at once (trusted proxies are exempt); more are
    // closed at accept, so one client cannot take every slot of max_connections.
    std::size_t max_connections_per_client = 64;
    std::vector<std::string> trusted_proxies{};
    std::chrono::milliseconds handshake_timeout{10'000};
    std::chrono::milliseconds header_timeout{10'000};  // first byte to end of headers
    std::chrono::milliseconds body_timeout{30'000};
    std::chrono::milliseconds write_timeout{10'000};
    std::chrono::milliseconds idle_timeout{15'000};    // keep-alive wait for the next request
    // Shutdown, first: /readyz answers 503 for this long while every listener still serves, so
    // that a load balancer's health check takes the instance out before its port closes.
    std::chrono::milliseconds drain_grace{0};
    std::chrono::milliseconds drain_timeout{10'000};   // shutdown: in-flight requests get this long
    unsigned threads = 0;                              // 0 = one per core

    // Runtime, not configuration: listening sockets passed by the service manager (socket
    // activation). When non-empty they replace `listen` and `tls_listen`.
    struct inherited_socket {
        int fd = -1;
        bool tls = false;
    };
    std::vector<inherited_socket> inherited{};
};

} // namespace cwhook::http
