// Request routing: exact or prefix path matches per method, with JSON 404/405 answers.
// Build it before the server starts; immutable (and thread-safe) afterwards.
#pragma once

#include "core/log.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::http {

namespace beast_http = boost::beast::http;

using response = beast_http::response<beast_http::string_body>;

struct request {
    beast_http::request<beast_http::string_body> msg;
    std::string client_addr;  // after trusted-proxy resolution
    std::string peer_addr;
    bool tls = false;
    std::string request_id;
    // Added by handlers to the one access-log line of this request (type, action, event id, reason).
    std::vector<log::field> log_fields;

    std::string_view path() const;   // target without the query
    std::string_view query() const;  // after '?', "" when none
};

using handler = std::function<boost::asio::awaitable<response>(request&)>;

// A JSON answer: {"error":"<code>","detail":"..."} style bodies are built by the caller.
response json_response(unsigned status, std::string body, unsigned http_version = 11);
// {"error":"<code>"} or {"error":"<code>","detail":"<detail>"}
response error_response(unsigned status, std::string_view code, std::string_view detail = {},
                        unsigned http_version = 11);

class router {
public:
    // prefix: also matches "<path>/..." (never "<path>x").
    void add(beast_http::verb method, std::string path, handler h, bool prefix = false);

    // Finds the handler; fills *status with 404 or 405 (and *allow) when none matches.
    // *route (when given) is the registered path that matched, for metrics labels.
    const handler* find(beast_http::verb method, std::string_view path, unsigned* status, std::string* allow,
                        std::string_view* route = nullptr) const;

    // Called by the server for requests it refuses itself before routing (413 on the body
    // limit), so the application can record them. req.msg holds the headers read so far.
    using rejection_fn = std::function<void(request& req, unsigned status, std::string_view reason)>;
    void set_rejection_hook(rejection_fn fn) { rejection_hook_ = std::move(fn); }
    const rejection_fn& rejection_hook() const noexcept { return rejection_hook_; }

    // Runs on every request read in full, before routing (so also for paths no route
    // matches): an answer refuses the request and no handler runs; nullopt lets it through.
    // Called on the session's thread; must not block.
    using gate_fn = std::function<std::optional<response>(request& req)>;
    void set_gate(gate_fn fn) { gate_ = std::move(fn); }
    const gate_fn& gate() const noexcept { return gate_; }

private:
    struct route {
        beast_http::verb method;
        std::string path;
        bool prefix;
        handler h;
    };
    std::vector<route> routes_;
    rejection_fn rejection_hook_;
    gate_fn gate_;
};

} // namespace cwhook::http
