// Request routing: exact or prefix path matches per method, with JSON 404/405 answers.
// Build it before the server starts; immutable (and thread-safe) afterwards.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
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
    const handler* find(beast_http::verb method, std::string_view path, unsigned* status,
                        std::string* allow) const;

private:
    struct route {
        beast_http::verb method;
        std::string path;
        bool prefix;
        handler h;
    };
    std::vector<route> routes_;
};

} // namespace cwhook::http
