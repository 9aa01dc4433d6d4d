// Design: one handler takes every request, classifies it by path against the current
// codebase, counts it, applies any injected fault, then answers like Manage: companyinfo and
// the signing-key endpoint without authentication, system/callbacks behind Basic auth and the
// clientId header, error bodies in Manage's {"code","message","errors"} shape. Every request
// is also recorded (bounded) for tests that assert on what a client sent.
#include "emulator/callback_table.hpp"

#include "core/json_string.hpp"
#include "core/text.hpp"
#include "crypto/digest.hpp"
#include "emulator/conditions.hpp"
#include "emulator/detail/impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace cwhook::emulator {

namespace net = boost::asio;
namespace beast_http = boost::beast::http;
using net::awaitable;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

http::response manage_json(unsigned status, std::string body)
{
    http::response res{static_cast<beast_http::status>(status), 11};
    res.set(beast_http::field::content_type, "application/json; charset=utf-8");
    res.set(beast_http::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

http::response manage_error(unsigned status, std::string_view code, std::string_view message,
                            const std::vector<field_error>& errors = {})
{
    return manage_json(status, error_json(code, message, errors));
}

http::response no_endpoint()
{
    return manage_error(404, "ConnectWiseApi", "The endpoint does not exist.");
}

http::response wrong_method(const http::request& req)
{
    return manage_error(405, "ConnectWiseApi",
                        fmt::format("The requested resource does not support http method '{}'.",
                                    std::string_view(beast_http::to_string(req.msg.method()))));
}

// Basic base64("<company>+<public>:<private>"); the company is case-insensitive like
// Manage's login company, the keys are not.
bool authorised(const emulator::impl& im, const http::request& req)
{
    std::string_view h = req.msg[beast_http::field::authorization];
    if (h.size() < 6 || !boost::beast::iequals(h.substr(0, 6), "basic ")) {
        return false;
    }
    h.remove_prefix(6);
    while (!h.empty() && h.front() == ' ') {
        h.remove_prefix(1);
    }
    const auto decoded = crypto::base64_decode(h);
    if (!decoded) {
        return false;
    }
    const auto plus = decoded->find('+');
    const auto colon = decoded->find(':');
    if (plus == std::string::npos || colon == std::string::npos || colon < plus) {
        return false;
    }
    const std::string_view text = *decoded;
    return boost::beast::iequals(text.substr(0, plus), im.cfg.company) &&
           text.substr(plus + 1, colon - plus - 1) == im.cfg.public_key && text.substr(colon + 1) == im.cfg.private_key;
}

std::optional<http::response> check_access(const emulator::impl& im, const http::request& req)
{
    if (!authorised(im, req)) {
        return manage_error(401, "Unauthorized", "Authentication failed.");
    }
    const std::string_view client_id = req.msg["clientId"];
    if (client_id.empty()) {
        return manage_error(400, "InvalidClientId",
                            "A clientId header is required: register one at https://developer.connectwise.com/ClientID");
    }
    if (!im.cfg.client_id.empty() && !boost::beast::iequals(client_id, im.cfg.client_id)) {
        return manage_error(400, "InvalidClientId", "The clientId is not recognised.");
    }
    return std::nullopt;
}

route classify(const emulator::impl& im, const http::request& req, std::int64_t* id)
{
    const auto path = req.path();
    if (path.starts_with("/login/companyinfo/")) {
        return route::companyinfo;
    }
    std::string api;
    std::string key_path;
    {
        std::lock_guard lock(im.mutex);
        api = im.api_prefix_locked() + "/system/callbacks";
        key_path = im.key_path_locked();
    }
    if (path == key_path) {
        return route::callback_key;
    }
    const auto method = req.msg.method();
    if (path == api) {
        return method == beast_http::verb::post ? route::callbacks_create : route::callbacks_list;
    }
    if (path == api + "/count") {
        return route::callbacks_count;
    }
    if (path.starts_with(api + "/")) {
        if (auto n = parse_integer<std::int64_t>(path.substr(api.size() + 1)); n && *n > 0) {
            *id = *n;
            if (method == beast_http::verb::put || method == beast_http::verb::patch) {
                return route::callback_update;
            }
            return method == beast_http::verb::delete_ ? route::callback_delete : route::callback_get;
        }
    }
    return route::other;
}

std::optional<fault> take_fault(emulator::impl& im, std::string_view path)
{
    std::lock_guard lock(im.mutex);
    for (auto it = im.faults.begin(); it != im.faults.end(); ++it) {
        if (!it->path_prefix.empty() && !path.starts_with(it->path_prefix)) {
            continue;
        }
        fault f = *it;
        if (it->count > 0 && --it->count == 0) {
            im.faults.erase(it);
        }
        return f;
    }
    return std::nullopt;
}

http::response fault_response(const fault& f)
{
    auto res = f.status == 429   ? manage_error(429, "TooManyRequests", "Too many requests; retry later.")
               : f.status >= 500 ? manage_error(f.status, "ServerError", "An injected server error.")
                                 : manage_error(f.status, "InjectedFault", "An injected fault.");
    if (f.retry_after.count() > 0) {
        res.set(beast_http::field::retry_after, std::to_string(f.retry_after.count()));
    }
    return res;
}

http::response companyinfo(const emulator::impl& im, const http::request& req)
{
    const auto raw_company = req.path().substr(std::string_view("/login/companyinfo/").size());
    const auto company = percent_decode(raw_company).value_or(std::string(raw_company));
    if (!boost::beast::iequals(company, im.cfg.company)) {
        return manage_json(200, "null");  // what Manage answers for an unknown company
    }
    std::string codebase;
    {
        std::lock_guard lock(im.mutex);
        codebase = im.codebase;
    }
    // "v2025_1/" -> "v2025.1"
    std::string version = codebase;
    if (!version.empty() && version.back() == '/') {
        version.pop_back();
    }
    std::replace(version.begin(), version.end(), '_', '.');
    std::string body = "{\"CompanyName\":" + json_quoted(im.cfg.company) + ",\"Codebase\":" + json_quoted(codebase) +
                       ",\"VersionCode\":" + json_quoted(version) +
                       ",\"VersionNumber\":\"v4.6.0\",\"CompanyID\":" + json_quoted(im.cfg.company) +
                       ",\"IsCloud\":\"False\",\"SiteUrl\":" + json_quoted(im.host) + "}";
    return manage_json(200, std::move(body));
}

http::response callback_key(const emulator::impl& im, const http::request& req)
{
    const auto company = query_param(req.query(), "companyName");
    const auto id = query_param(req.query(), "id");
    std::string key;
    {
        std::lock_guard lock(im.mutex);
        if (company && id && boost::beast::iequals(*company, im.cfg.company) && *id == im.key_id) {
            key = im.key;
        }
    }
    if (key.empty()) {
        return manage_error(404, "NotFound", "The callback key does not exist or has expired.");
    }
    return manage_json(200, "{\"signing_key\":" + json_quoted(key) + "}");
}

struct page_request {
    conditions filter;
    std::size_t page_size = 25;
    std::size_t page = 1;
    bool forward_only = false;
    std::int64_t page_id = 0;
    std::string order_field = "id";
    bool descending = false;
};

boost::system::result<page_request, std::string> read_paging(const emulator::impl& im, const http::request& req,
                                                             bool with_pages)
{
    page_request p;
    const auto q = req.query();
    if (auto c = query_param(q, "conditions")) {
        auto parsed = conditions::parse(*c);
        if (!parsed) {
            return "conditions: " + parsed.error();
        }
        for (const auto& f : parsed->fields()) {
            if (!known_field(f)) {
                return fmt::format("conditions: unknown field {}", f);
            }
        }
        p.filter = std::move(*parsed);
    }
    if (!with_pages) {
        return p;
    }
    p.page_size = im.cfg.default_page_size;
    if (auto s = query_param(q, "pageSize")) {
        const auto n = parse_integer<std::int64_t>(*s);
        if (!n || *n < 1) {
            return fmt::format("pageSize: \"{}\" is not a positive integer", *s);
        }
        p.page_size = std::min(static_cast<std::size_t>(*n), im.cfg.max_page_size);  // Manage caps silently
    }
    p.forward_only = boost::beast::iequals(req.msg["pagination-type"], "forward-only");
    if (p.forward_only) {
        if (query_param(q, "orderBy")) {
            return std::string("orderBy cannot be used with forward-only paging");
        }
        if (auto s = query_param(q, "pageId")) {
            const auto n = parse_integer<std::int64_t>(*s);
            if (!n || *n < 0) {
                return fmt::format("pageId: \"{}\" is not an id", *s);
            }
            p.page_id = *n;
        }
        return p;
    }
    if (auto s = query_param(q, "page")) {
        const auto n = parse_integer<std::int64_t>(*s);
        if (!n || *n < 1) {
            return fmt::format("page: \"{}\" is not a positive integer", *s);
        }
        p.page = static_cast<std::size_t>(*n);
    }
    if (auto s = query_param(q, "orderBy")) {
        std::string_view o = *s;
        const auto space = o.find(' ');
        std::string field(o.substr(0, space));
        std::transform(field.begin(), field.end(), field.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        const auto dir = space == std::string_view::npos ? std::string_view{} : o.substr(space + 1);
        if (!known_field(field) || !(dir.empty() || boost::beast::iequals(dir, "asc") || boost::beast::iequals(dir, "desc"))) {
            return fmt::format("orderBy: \"{}\" is not a field [asc|desc]", *s);
        }
        p.order_field = field;
        p.descending = boost::beast::iequals(dir, "desc");
    }
    return p;
}

std::vector<callback_entry> matching_entries(const emulator::impl& im, const conditions& filter)
{
    std::vector<callback_entry> out;
    std::lock_guard lock(im.mutex);
    for (const auto& [id, e] : im.entries) {
        const auto& entry = e;
        if (filter.matches([&entry](std::string_view f) { return entry_field(entry, f); })) {
            out.push_back(e);
        }
    }
    return out;
}

// The raw query without the paging parameters, so Link URLs keep conditions etc. verbatim.
std::string query_without_paging(std::string_view query)
{
    std::string out;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto part = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto name = part.substr(0, part.find('='));
        if (part.empty() || boost::beast::iequals(name, "page") || boost::beast::iequals(name, "pageSize") ||
            boost::beast::iequals(name, "pageId")) {
            continue;
        }
        out += part;
        out.push_back('&');
    }
    return out;
}

http::response list_callbacks(const emulator::impl& im, const http::request& req)
{
    auto p = read_paging(im, req, true);
    if (!p) {
        return manage_error(400, "InvalidObject", p.error());
    }
    auto rows = matching_entries(im, p->filter);
    const std::string link_base = im.base_url() + std::string(req.path()) + "?" + query_without_paging(req.query());
    std::vector<std::string> links;
    std::vector<callback_entry> page;
    if (p->forward_only) {
        // Manage: ordered by id, pageId acts as "id > pageId", and a next link always comes.
        std::int64_t last = p->page_id;
        for (const auto& e : rows) {
            if (e.id > p->page_id && page.size() < p->page_size) {
                page.push_back(e);
                last = e.id;
            }
        }
        links.push_back(fmt::format("<{}pageSize={}&pageId={}>; rel=\"next\"", link_base, p->page_size, last));
    } else {
        const auto& field = p->order_field;
        std::stable_sort(rows.begin(), rows.end(), [&](const callback_entry& a, const callback_entry& b) {
            const auto x = entry_field(a, field);
            const auto y = entry_field(b, field);
            return p->descending ? *y < *x : *x < *y;
        });
        const std::size_t pages = std::max<std::size_t>(1, (rows.size() + p->page_size - 1) / p->page_size);
        const auto from = std::min(rows.size(), (p->page - 1) * p->page_size);
        const auto to = std::min(rows.size(), from + p->page_size);
        page.assign(rows.begin() + static_cast<std::ptrdiff_t>(from), rows.begin() + static_cast<std::ptrdiff_t>(to));
        auto link = [&](std::size_t n, std::string_view rel) {
            links.push_back(fmt::format("<{}pageSize={}&page={}>; rel=\"{}\"", link_base, p->page_size, n, rel));
        };
        if (pages > 1) {
            if (p->page < pages) {
                link(p->page + 1, "next");
            }
            if (p->page > 1) {
                link(std::min(p->page - 1, pages), "prev");
                link(1, "first");
            }
            if (p->page < pages) {
                link(pages, "last");
            }
        }
    }
    auto res = manage_json(200, entries_json(page));
    if (!links.empty()) {
        std::string value;
        for (const auto& l : links) {
            value += value.empty() ? "" : ", ";
            value += l;
        }
        res.set(beast_http::field::link, value);
    }
    return res;
}

http::response count_callbacks(const emulator::impl& im, const http::request& req)
{
    auto p = read_paging(im, req, false);
    if (!p) {
        return manage_error(400, "InvalidObject", p.error());
    }
    return manage_json(200, fmt::format("{{\"count\":{}}}", matching_entries(im, p->filter).size()));
}

http::response invalid(const std::vector<field_error>& errors)
{
    return manage_error(400, "InvalidObject", "callbackEntry object is invalid", errors);
}

http::response object_exists()
{
    return invalid({field_error{"ObjectExists", "A matching callback entry already exists", "objectId"}});
}

std::optional<json::value> body_json(const http::request& req, http::response* error)
{
    auto parsed = json::parse_value(req.msg.body());
    if (const auto* err = std::get_if<json::parse_error>(&parsed)) {
        *error = invalid({field_error{"InvalidObject", "The request body is not valid JSON: " + err->detail, ""}});
        return std::nullopt;
    }
    return std::get<json::value>(std::move(parsed));
}

// Validates e and checks the duplicate rule against every other entry (caller holds mutex).
std::optional<http::response> admit_locked(const emulator::impl& im, callback_entry& e)
{
    if (auto errors = validate(e); !errors.empty()) {
        return invalid(errors);
    }
    for (const auto& [id, other] : im.entries) {
        if (id != e.id && same_registration(other, e)) {
            return object_exists();
        }
    }
    return std::nullopt;
}

http::response create_callback(emulator::impl& im, const http::request& req)
{
    http::response error;
    auto body = body_json(req, &error);
    if (!body) {
        return error;
    }
    callback_entry e;
    if (auto errors = apply_object(e, *body); !errors.empty()) {
        return invalid(errors);
    }
    std::lock_guard lock(im.mutex);
    if (auto refused = admit_locked(im, e)) {
        return std::move(*refused);
    }
    const auto id = im.insert_locked(std::move(e));
    im.persist_locked();
    auto res = manage_json(201, entry_json(im.entries.at(id)));
    res.set(beast_http::field::location, fmt::format("{}{}/system/callbacks/{}", im.base_url(), im.api_prefix_locked(), id));
    return res;
}

http::response not_found(std::int64_t id)
{
    return manage_error(404, "NotFound", fmt::format("callbackEntry with id {} was not found.", id));
}

http::response update_callback(emulator::impl& im, const http::request& req, std::int64_t id)
{
    http::response error;
    auto body = body_json(req, &error);
    if (!body) {
        return error;
    }
    std::lock_guard lock(im.mutex);
    auto it = im.entries.find(id);
    if (it == im.entries.end()) {
        return not_found(id);
    }
    callback_entry e;
    if (req.msg.method() == beast_http::verb::patch) {
        e = it->second;
        if (auto errors = apply_patch(e, *body); !errors.empty()) {
            return invalid(errors);
        }
    } else {
        // PUT replaces every field; what is not given goes back to its default.
        e.id = id;
        e.member_id = it->second.member_id;
        e.connectwise_id = it->second.connectwise_id;
        if (auto errors = apply_object(e, *body); !errors.empty()) {
            return invalid(errors);
        }
    }
    if (auto refused = admit_locked(im, e)) {
        return std::move(*refused);
    }
    if (it->second.inactive && !e.inactive) {
        e.consecutive_failures = 0;  // re-enabled: Manage starts counting afresh
    }
    e.last_updated = utc_now();
    e.updated_by = im.cfg.company;
    it->second = std::move(e);
    im.persist_locked();
    return manage_json(200, entry_json(it->second));
}

http::response get_callback(const emulator::impl& im, std::int64_t id)
{
    std::lock_guard lock(im.mutex);
    const auto it = im.entries.find(id);
    if (it == im.entries.end()) {
        return not_found(id);
    }
    return manage_json(200, entry_json(it->second));
}

http::response delete_callback(emulator::impl& im, std::int64_t id)
{
    std::lock_guard lock(im.mutex);
    if (im.entries.erase(id) == 0) {
        return not_found(id);
    }
    im.persist_locked();
    http::response res{beast_http::status::no_content, 11};
    res.prepare_payload();
    return res;
}

http::response dispatch(emulator::impl& im, const http::request& req, route r, std::int64_t id)
{
    const auto method = req.msg.method();
    const bool get = method == beast_http::verb::get || method == beast_http::verb::head;
    switch (r) {
    case route::companyinfo: return get ? companyinfo(im, req) : wrong_method(req);
    case route::callback_key: return get ? callback_key(im, req) : wrong_method(req);
    case route::other:
    case route::control: return no_endpoint();
    default: break;
    }
    if (auto refused = check_access(im, req)) {
        return std::move(*refused);
    }
    switch (r) {
    case route::callbacks_list: return get ? list_callbacks(im, req) : wrong_method(req);
    case route::callbacks_count: return get ? count_callbacks(im, req) : wrong_method(req);
    case route::callbacks_create: return create_callback(im, req);
    case route::callback_update: return update_callback(im, req, id);
    case route::callback_delete: return delete_callback(im, id);
    case route::callback_get: return get ? get_callback(im, id) : wrong_method(req);
    default: return no_endpoint();
    }
}

void record(emulator::impl& im, const http::request& req, route r, unsigned status)
{
    seen_request s;
    s.kind = r;
    s.method = std::string(beast_http::to_string(req.msg.method()));
    s.target = std::string(req.msg.target());
    for (const auto& f : req.msg) {
        s.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    s.body = req.msg.body();
    s.status = status;
    std::lock_guard lock(im.mutex);
    im.recent.push_back(std::move(s));
    while (im.recent.size() > recent_limit) {
        im.recent.pop_front();
    }
}

} // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name)
{
    const auto params = parse_query(query);
    if (!params) {
        return std::nullopt;
    }
    for (const auto& [key, value] : *params) {
        if (boost::beast::iequals(key, name)) {
            return value;
        }
    }
    return std::nullopt;
}

awaitable<http::response> handle_request(emulator::impl* im, http::request& req)
{
    if (req.path() == control_prefix || req.path().starts_with(std::string(control_prefix) + "/")) {
        im->count(route::control);
        co_return co_await handle_control(im, req);
    }
    std::int64_t id = 0;
    const route r = classify(*im, req, &id);
    im->count(r);
    if (auto f = take_fault(*im, req.path())) {
        if (f->delay.count() > 0) {
            net::steady_timer timer(im->ioc->get_executor(), f->delay);
            co_await timer.async_wait(use_tuple);
        }
        if (f->status != 0) {
            auto res = fault_response(*f);
            record(*im, req, r, res.result_int());
            co_return res;
        }
    }
    auto res = dispatch(*im, req, r, id);
    record(*im, req, r, res.result_int());
    co_return res;
}

} // namespace cwhook::emulator
