// Design: one handler takes every request, classifies it by path against the current
// codebase, counts it, applies any injected fault, then answers like Manage: companyinfo and
// the signing-key endpoint without authentication, system/callbacks and the record
// collections behind Basic auth and the clientId header, error bodies in Manage's
// {"code","message","errors"} shape. Lists of both go through one paging routine (conditions,
// orderBy, fields, navigable and forward-only Links), so the two cannot drift apart. Every
// request is also recorded (bounded) for tests that assert on what a client sent.
#include "emulator/callback_table.hpp"

#include "core/json_string.hpp"
#include "core/text.hpp"
#include "crypto/digest.hpp"
#include "emulator/conditions.hpp"
#include "emulator/detail/impl.hpp"
#include "emulator/record_table.hpp"

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

// What a request is for: the route, and the id and record type its path names.
struct target {
    route kind = route::other;
    std::int64_t id = 0;
    std::string type; // records_*: the callback type of the collection ("ticket")
};

target classify(const emulator::impl& im, const http::request& req)
{
    const auto path = req.path();
    target t;
    if (path.starts_with("/login/companyinfo/")) {
        t.kind = route::companyinfo;
        return t;
    }
    std::string root;
    std::string key_path;
    {
        std::lock_guard lock(im.mutex);
        root = im.api_prefix_locked() + "/";
        key_path = im.key_path_locked();
    }
    if (path == key_path) {
        t.kind = route::callback_key;
        return t;
    }
    if (!path.starts_with(root)) {
        return t;
    }
    const auto method = req.msg.method();
    const auto rest = path.substr(root.size());
    constexpr std::string_view callbacks = "system/callbacks";
    if (rest == callbacks) {
        t.kind = method == beast_http::verb::post ? route::callbacks_create : route::callbacks_list;
        return t;
    }
    const auto slash = rest.rfind('/');
    const auto parent = slash == std::string_view::npos ? std::string_view{} : rest.substr(0, slash);
    const auto last = slash == std::string_view::npos ? rest : rest.substr(slash + 1);
    const auto id = parse_integer<std::int64_t>(last);
    if (parent == callbacks) {
        if (last == "count") {
            t.kind = route::callbacks_count;
        } else if (id && *id > 0) {
            t.id = *id;
            if (method == beast_http::verb::put || method == beast_http::verb::patch) {
                t.kind = route::callback_update;
            } else {
                t.kind = method == beast_http::verb::delete_ ? route::callback_delete : route::callback_get;
            }
        }
        return t;
    }
    if (auto type = type_of_collection(rest); !type.empty()) {
        t.kind = route::records_list;
        t.type = std::string(type);
    } else if (auto of = type_of_collection(parent); !of.empty() && (last == "count" || (id && *id > 0))) {
        t.kind = last == "count" ? route::records_count : route::record_get;
        t.id = last == "count" ? 0 : *id;
        t.type = std::string(of);
    }
    return t;
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

struct order_key {
    std::string field; // lower-cased, as conditions name fields
    bool descending = false;
};

struct page_request {
    conditions filter;
    std::size_t page_size = 25;
    std::size_t page = 1;
    bool forward_only = false;
    std::int64_t page_id = 0;
    std::vector<order_key> order;    // empty: by id
    std::vector<std::string> fields; // partial response; empty: every member
};

// Which field names a collection accepts in conditions and orderBy (nullptr: any name).
using field_check = bool (*)(std::string_view);

// "lastUpdated asc, id desc" -> keys; an error names the part that is no "field [asc|desc]".
boost::system::result<std::vector<order_key>, std::string> parse_order(std::string_view text, field_check known)
{
    std::vector<order_key> keys;
    std::string_view rest = text;
    while (true) {
        const auto comma = rest.find(',');
        const auto part = trim(rest.substr(0, comma));
        const auto space = part.find(' ');
        order_key k;
        k.field = lower_ascii(part.substr(0, space));
        const auto dir = space == std::string_view::npos ? std::string_view{} : trim(part.substr(space + 1));
        const bool name_ok = !k.field.empty() && std::all_of(k.field.begin(), k.field.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/' || c == '.';
        });
        if (!name_ok || (known != nullptr && !known(k.field)) ||
            !(dir.empty() || boost::beast::iequals(dir, "asc") || boost::beast::iequals(dir, "desc"))) {
            return fmt::format("orderBy: \"{}\" is not a field [asc|desc]", text);
        }
        k.descending = boost::beast::iequals(dir, "desc");
        keys.push_back(std::move(k));
        if (comma == std::string_view::npos) {
            return keys;
        }
        rest = rest.substr(comma + 1);
    }
}

boost::system::result<page_request, std::string> read_paging(const emulator::impl& im, const http::request& req,
                                                             bool with_pages, field_check known)
{
    page_request p;
    const auto q = req.query();
    if (auto c = query_param(q, "conditions")) {
        auto parsed = conditions::parse(*c);
        if (!parsed) {
            return "conditions: " + parsed.error();
        }
        for (const auto& f : parsed->fields()) {
            if (known != nullptr && !known(f)) {
                return fmt::format("conditions: unknown field {}", f);
            }
        }
        p.filter = std::move(*parsed);
    }
    if (!with_pages) {
        return p;
    }
    if (auto f = query_param(q, "fields")) {
        p.fields = parse_fields(*f);
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
        auto keys = parse_order(*s, known);
        if (!keys) {
            return keys.error();
        }
        p.order = std::move(*keys);
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

// The records of `type` that match, in id order.
std::vector<json::value> matching_records(const emulator::impl& im, const std::string& type, const conditions& filter)
{
    std::vector<json::value> out;
    std::lock_guard lock(im.mutex);
    const auto table = im.records.find(type);
    if (table == im.records.end()) {
        return out;
    }
    for (const auto& [id, r] : table->second) {
        const auto& rec = r;
        if (filter.matches([&rec](std::string_view f) { return record_field(rec, f); })) {
            out.push_back(r);
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

// One page of `rows` (the matching rows, in id order) as `p` asks, answered with the Link
// header of either paging style. Shared by system/callbacks and the record collections:
// `field(row, name)` looks a field up, `append(out, row)` writes a row's JSON.
template <class Row, class Field, class Append>
http::response list_page(const emulator::impl& im, const http::request& req, const page_request& p,
                         std::vector<Row> rows, Field field, Append append)
{
    const std::string link_base = im.base_url() + std::string(req.path()) + "?" + query_without_paging(req.query());
    std::vector<std::string> links;
    std::vector<const Row*> page;
    auto id_of = [&](const Row& r) {
        const auto v = field(r, "id");
        const auto* n = v ? std::get_if<std::int64_t>(&*v) : nullptr;
        return n == nullptr ? std::int64_t{0} : *n;
    };
    if (p.forward_only) {
        // Manage: ordered by id, pageId acts as "id > pageId", and a next link always comes.
        std::int64_t last = p.page_id;
        for (const auto& r : rows) {
            const auto id = id_of(r);
            if (id > p.page_id && page.size() < p.page_size) {
                page.push_back(&r);
                last = id;
            }
        }
        links.push_back(fmt::format("<{}pageSize={}&pageId={}>; rel=\"next\"", link_base, p.page_size, last));
    } else {
        // Sort keys once per row; a record without the field sorts as null (first ascending).
        // The sort is stable over id order, so id breaks every tie.
        std::vector<std::pair<std::vector<conditions::field_value>, const Row*>> keyed;
        keyed.reserve(rows.size());
        for (const auto& r : rows) {
            std::vector<conditions::field_value> keys;
            for (const auto& k : p.order) {
                keys.push_back(field(r, k.field).value_or(conditions::field_value{}));
            }
            keyed.emplace_back(std::move(keys), &r);
        }
        std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
            for (std::size_t i = 0; i < p.order.size(); ++i) {
                if (a.first[i] != b.first[i]) {
                    return p.order[i].descending ? b.first[i] < a.first[i] : a.first[i] < b.first[i];
                }
            }
            return false;
        });
        const std::size_t pages = std::max<std::size_t>(1, (rows.size() + p.page_size - 1) / p.page_size);
        const auto from = std::min(rows.size(), (p.page - 1) * p.page_size);
        const auto to = std::min(rows.size(), from + p.page_size);
        for (auto i = from; i < to; ++i) {
            page.push_back(keyed[i].second);
        }
        auto link = [&](std::size_t n, std::string_view rel) {
            links.push_back(fmt::format("<{}pageSize={}&page={}>; rel=\"{}\"", link_base, p.page_size, n, rel));
        };
        if (pages > 1) {
            if (p.page < pages) {
                link(p.page + 1, "next");
            }
            if (p.page > 1) {
                link(std::min(p.page - 1, pages), "prev");
                link(1, "first");
            }
            if (p.page < pages) {
                link(pages, "last");
            }
        }
    }
    std::string body = "[";
    for (std::size_t i = 0; i < page.size(); ++i) {
        if (i > 0) {
            body.push_back(',');
        }
        append(body, *page[i]);
    }
    body.push_back(']');
    auto res = manage_json(200, std::move(body));
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

// A member name check for system/callbacks (the CallbackEntry model's fields only).
bool callback_field(std::string_view f)
{
    return known_field(f);
}

http::response list_callbacks(const emulator::impl& im, const http::request& req)
{
    auto p = read_paging(im, req, true, &callback_field);
    if (!p) {
        return manage_error(400, "InvalidObject", p.error());
    }
    auto rows = matching_entries(im, p->filter);
    const auto& fields = p->fields;
    return list_page(
        im, req, *p, std::move(rows), [](const callback_entry& e, std::string_view f) { return entry_field(e, f); },
        [&fields](std::string& out, const callback_entry& e) {
            if (fields.empty()) {
                append_entry_json(out, e);
                return;
            }
            auto v = json::parse_value(entry_json(e));
            out += json::serialize(project(std::get<json::value>(v), fields));
        });
}

http::response list_records(const emulator::impl& im, const http::request& req, const std::string& type)
{
    auto p = read_paging(im, req, true, nullptr);
    if (!p) {
        return manage_error(400, "InvalidObject", p.error());
    }
    auto rows = matching_records(im, type, p->filter);
    const auto& fields = p->fields;
    return list_page(
        im, req, *p, std::move(rows), [](const json::value& r, std::string_view f) { return record_field(r, f); },
        [&fields](std::string& out, const json::value& r) { out += json::serialize(project(r, fields)); });
}

http::response count_records(const emulator::impl& im, const http::request& req, const std::string& type)
{
    auto p = read_paging(im, req, false, nullptr);
    if (!p) {
        return manage_error(400, "InvalidObject", p.error());
    }
    return manage_json(200, fmt::format("{{\"count\":{}}}", matching_records(im, type, p->filter).size()));
}

http::response get_record(const emulator::impl& im, const http::request& req, const std::string& type, std::int64_t id)
{
    std::vector<std::string> fields;
    if (auto f = query_param(req.query(), "fields")) {
        fields = parse_fields(*f);
    }
    std::lock_guard lock(im.mutex);
    if (const auto table = im.records.find(type); table != im.records.end()) {
        if (const auto it = table->second.find(id); it != table->second.end()) {
            return manage_json(200, json::serialize(project(it->second, fields)));
        }
    }
    return manage_error(404, "NotFound", fmt::format("{} with id {} was not found.", type, id));
}

http::response count_callbacks(const emulator::impl& im, const http::request& req)
{
    auto p = read_paging(im, req, false, &callback_field);
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

http::response dispatch(emulator::impl& im, const http::request& req, const target& t)
{
    const auto r = t.kind;
    const auto id = t.id;
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
    case route::records_list: return get ? list_records(im, req, t.type) : wrong_method(req);
    case route::records_count: return get ? count_records(im, req, t.type) : wrong_method(req);
    case route::record_get: return get ? get_record(im, req, t.type, id) : wrong_method(req);
    default: return no_endpoint();
    }
}

void remember(emulator::impl& im, const http::request& req, route r, unsigned status)
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
    const target t = classify(*im, req);
    const route r = t.kind;
    im->count(r);
    if (auto f = take_fault(*im, req.path())) {
        if (f->delay.count() > 0) {
            net::steady_timer timer(im->ioc->get_executor(), f->delay);
            co_await timer.async_wait(use_tuple);
        }
        if (f->status != 0) {
            auto res = fault_response(*f);
            remember(*im, req, r, res.result_int());
            co_return res;
        }
    }
    auto res = dispatch(*im, req, t);
    remember(*im, req, r, res.result_int());
    co_return res;
}

} // namespace cwhook::emulator
