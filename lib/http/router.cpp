#include "http/router.hpp"

#include "core/json_string.hpp"

#include <fmt/format.h>

namespace cwhook::http {

std::string_view request::path() const
{
    const std::string_view t = msg.target();
    return t.substr(0, t.find('?'));
}

std::string_view request::query() const
{
    const std::string_view t = msg.target();
    const auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

response json_response(unsigned status, std::string body, unsigned http_version)
{
    response res{static_cast<beast_http::status>(status), http_version};
    res.set(beast_http::field::content_type, "application/json");
    res.set(beast_http::field::cache_control, "no-store");
    body.push_back('\n');
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

response error_response(unsigned status, std::string_view code, std::string_view detail, unsigned http_version)
{
    std::string body = "{\"error\":";
    append_json_string(body, code);
    if (!detail.empty()) {
        body += ",\"detail\":";
        append_json_string(body, detail);
    }
    body.push_back('}');
    return json_response(status, std::move(body), http_version);
}

void router::add(beast_http::verb method, std::string path, handler h, bool prefix)
{
    routes_.push_back(route{method, std::move(path), prefix, std::move(h)});
}

const handler* router::find(beast_http::verb method, std::string_view path, unsigned* status, std::string* allow,
                            std::string_view* route) const
{
    bool path_known = false;
    for (const auto& r : routes_) {
        const bool match = path == r.path ||
                           (r.prefix && path.size() > r.path.size() && path.starts_with(r.path) &&
                            path[r.path.size()] == '/');
        if (!match) {
            continue;
        }
        if (route != nullptr) {
            *route = r.path;
        }
        if (r.method == method || (method == beast_http::verb::head && r.method == beast_http::verb::get)) {
            return &r.h;
        }
        if (!path_known) {
            allow->clear();
        }
        path_known = true;
        if (!allow->empty()) {
            *allow += ", ";
        }
        *allow += std::string(beast_http::to_string(r.method));
        if (r.method == beast_http::verb::get) {
            *allow += ", HEAD";
        }
    }
    *status = path_known ? 405 : 404;
    return nullptr;
}

} // namespace cwhook::http
