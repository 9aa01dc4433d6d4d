#include "emulator/callback_table.hpp"

#include "core/json_string.hpp"
#include "crypto/digest.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <ctime>
#include <utility>

namespace cwhook::emulator {

namespace {

struct type_levels {
    std::string_view type;
    std::string_view levels;     // comma-separated, as in docs/PROTOCOL.md
    std::string_view collection; // the REST collection of the type's records
    std::string_view label;      // the record's name-like field
};

constexpr std::array<type_levels, 15> table{{
    {"activity", "owner,status,type,company,activity", "sales/activities", "name"},
    {"agreement", "owner,type,company,agreement", "finance/agreements", "name"},
    {"company", "owner,status,type,territory,company,integratortag", "company/companies", "name"},
    {"contact", "owner,type,territory,company,contact", "company/contacts", "firstName"},
    {"configuration", "owner,type,status,configuration", "company/configurations", "name"},
    {"invoice", "owner,status,company,invoice", "finance/invoices", "invoiceNumber"},
    {"expense", "owner,chargetotype,type,class,company,expense", "expense/entries", "notes"},
    {"member", "owner,location,securityrole,member", "system/members", "identifier"},
    {"opportunity", "owner,statusid,company,opportunity", "sales/opportunities", "name"},
    {"productcatalog", "owner", "procurement/catalog", "identifier"},
    {"project", "owner,status,board,project", "project/projects", "name"},
    {"purchaseorder", "owner,status,vendor,company,purchaseorder", "procurement/purchaseorders", "poNumber"},
    {"schedule", "owner,status,type,location,member,schedule", "schedule/entries", "name"},
    {"ticket", "owner,board,project,phase,status,ticket,integratortag", "service/tickets", "summary"},
    {"time", "owner,company,time", "time/entries", "notes"},
}};

std::string lowered(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

const type_levels* find_type(std::string_view type)
{
    const auto t = lowered(type);
    for (const auto& row : table) {
        if (row.type == t) {
            return &row;
        }
    }
    return nullptr;
}

constexpr std::string_view resource = "callbackEntry";

field_error invalid_field(std::string message, std::string field)
{
    return field_error{"InvalidField", std::move(message), std::move(field)};
}

// One member of a CallbackEntry onto e. read_only: what to do with id, memberId, connectWiseID
// and _info (ignored in POST/PUT bodies, refused in a PATCH). Unknown names are ignored in
// bodies (Manage ignores them) and refused in a PATCH.
std::optional<field_error> set_member(callback_entry& e, std::string_view name, const json::value& v, bool strict)
{
    auto want_string = [&](std::string& dst) -> std::optional<field_error> {
        if (v.is_null()) {
            dst.clear();
            return std::nullopt;
        }
        const auto s = v.as_string();
        if (!s) {
            return invalid_field(fmt::format("{} must be a string", name), std::string(name));
        }
        dst = std::string(*s);
        return std::nullopt;
    };
    auto want_bool = [&](bool& dst) -> std::optional<field_error> {
        if (v.is_null()) {
            dst = false;
            return std::nullopt;
        }
        const auto b = v.as_bool();
        if (!b) {
            return invalid_field(fmt::format("{} must be true or false", name), std::string(name));
        }
        dst = *b;
        return std::nullopt;
    };
    if (name == "url") {
        return want_string(e.url);
    }
    if (name == "description") {
        return want_string(e.description);
    }
    if (name == "type") {
        return want_string(e.type);
    }
    if (name == "level") {
        return want_string(e.level);
    }
    if (name == "payloadVersion") {
        return want_string(e.payload_version);
    }
    if (name == "inactiveFlag") {
        return want_bool(e.inactive);
    }
    if (name == "isSoapCallbackFlag") {
        return want_bool(e.is_soap_callback);
    }
    if (name == "isSelfSuppressedFlag") {
        return want_bool(e.is_self_suppressed);
    }
    if (name == "objectId") {
        if (v.is_null()) {
            e.object_id = 0;
            return std::nullopt;
        }
        const auto n = v.as_int();
        if (!n) {
            return invalid_field("objectId must be an integer", "objectId");
        }
        e.object_id = *n;
        return std::nullopt;
    }
    if (name == "id" || name == "memberId" || name == "connectWiseID" || name == "_info") {
        if (strict) {
            return invalid_field(fmt::format("{} is read-only", name), std::string(name));
        }
        return std::nullopt;
    }
    if (strict) {
        return invalid_field(fmt::format("unknown field {}", name), std::string(name));
    }
    return std::nullopt;
}

bool valid_url(std::string_view url)
{
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) {
        return false;
    }
    const auto scheme = parsed->scheme_id();
    return (scheme == boost::urls::scheme::http || scheme == boost::urls::scheme::https) &&
           !parsed->encoded_host().empty();
}

} // namespace

bool valid_type(std::string_view type)
{
    return find_type(type) != nullptr;
}

bool valid_level(std::string_view type, std::string_view level)
{
    const auto* row = find_type(type);
    if (row == nullptr || level.empty()) {
        return false;
    }
    const auto l = lowered(level);
    std::string_view rest = row->levels;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        if (rest.substr(0, comma) == l) {
            return true;
        }
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    return false;
}

std::string levels_of(std::string_view type)
{
    const auto* row = find_type(type);
    if (row == nullptr) {
        return {};
    }
    std::string spaced;
    for (const char c : row->levels) {
        spaced.push_back(c);
        if (c == ',') {
            spaced.push_back(' ');
        }
    }
    return spaced;
}

std::string_view collection_of(std::string_view type)
{
    const auto* row = find_type(type);
    return row == nullptr ? std::string_view{} : row->collection;
}

std::string_view type_of_collection(std::string_view path)
{
    for (const auto& row : table) {
        if (row.collection == path) {
            return row.type;
        }
    }
    return {};
}

std::string_view label_of(std::string_view type)
{
    const auto* row = find_type(type);
    return row == nullptr ? std::string_view{} : row->label;
}

void append_entry_json(std::string& out, const callback_entry& e)
{
    out += fmt::format("{{\"id\":{}", e.id);
    if (!e.description.empty()) {
        out += ",\"description\":";
        append_json_string(out, e.description);
    }
    out += ",\"url\":";
    append_json_string(out, e.url);
    out += fmt::format(",\"objectId\":{},\"type\":", e.object_id);
    append_json_string(out, e.type);
    out += ",\"level\":";
    append_json_string(out, e.level);
    out += fmt::format(",\"memberId\":{},\"payloadVersion\":", e.member_id);
    append_json_string(out, e.payload_version);
    out += fmt::format(",\"inactiveFlag\":{},\"isSoapCallbackFlag\":{},\"isSelfSuppressedFlag\":{},\"connectWiseID\":",
                       e.inactive, e.is_soap_callback, e.is_self_suppressed);
    append_json_string(out, e.connectwise_id);
    out += ",\"_info\":{\"lastUpdated\":";
    append_json_string(out, e.last_updated);
    out += ",\"updatedBy\":";
    append_json_string(out, e.updated_by);
    out += "}}";
}

std::string entry_json(const callback_entry& e)
{
    std::string out;
    append_entry_json(out, e);
    return out;
}

std::string entries_json(const std::vector<callback_entry>& entries)
{
    std::string out = "[";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        append_entry_json(out, entries[i]);
    }
    out.push_back(']');
    return out;
}

std::string error_json(std::string_view code, std::string_view message, const std::vector<field_error>& errors)
{
    std::string out = "{\"code\":";
    append_json_string(out, code);
    out += ",\"message\":";
    append_json_string(out, message);
    if (!errors.empty()) {
        out += ",\"errors\":[";
        for (std::size_t i = 0; i < errors.size(); ++i) {
            if (i > 0) {
                out.push_back(',');
            }
            out += "{\"code\":";
            append_json_string(out, errors[i].code);
            out += ",\"message\":";
            append_json_string(out, errors[i].message);
            out += ",\"resource\":";
            append_json_string(out, resource);
            out += ",\"field\":";
            append_json_string(out, errors[i].field);
            out.push_back('}');
        }
        out.push_back(']');
    }
    out.push_back('}');
    return out;
}

std::vector<field_error> apply_object(callback_entry& e, const json::value& body)
{
    const auto* members = body.as_object();
    if (members == nullptr) {
        return {field_error{"InvalidObject", "callbackEntry must be a JSON object", ""}};
    }
    std::vector<field_error> errors;
    for (const auto& m : *members) {
        if (auto err = set_member(e, m.key, m.val, false)) {
            errors.push_back(std::move(*err));
        }
    }
    return errors;
}

std::vector<field_error> apply_patch(callback_entry& e, const json::value& body)
{
    const auto* ops = body.as_array();
    if (ops == nullptr) {
        return {field_error{"InvalidObject", "a patch is a JSON array of operations", ""}};
    }
    std::vector<field_error> errors;
    for (const auto& op : *ops) {
        const auto* name = op.find("op");
        const auto* path = op.find("path");
        const auto op_name = name ? name->as_string() : std::nullopt;
        auto field = path ? path->as_string() : std::nullopt;
        if (!op_name || !field) {
            errors.push_back(field_error{"InvalidObject", "each operation needs op and path", ""});
            continue;
        }
        if (field->starts_with('/')) {
            field->remove_prefix(1);
        }
        const auto kind = lowered(*op_name);
        json::value v;  // remove: back to the default (null)
        if (kind == "replace" || kind == "add") {
            const auto* given = op.find("value");
            if (given == nullptr) {
                errors.push_back(invalid_field("value is required", std::string(*field)));
                continue;
            }
            v = *given;
        } else if (kind != "remove") {
            errors.push_back(field_error{"InvalidObject", fmt::format("unknown op {}", *op_name), std::string(*field)});
            continue;
        }
        if (auto err = set_member(e, *field, v, true)) {
            errors.push_back(std::move(*err));
        }
    }
    return errors;
}

std::vector<field_error> validate(callback_entry& e)
{
    std::vector<field_error> errors;
    e.type = lowered(e.type);
    e.level = lowered(e.level);
    if (e.url.empty() || !valid_url(e.url)) {
        errors.push_back(invalid_field("Invalid URL", "url"));
    }
    const bool level_ok = valid_type(e.type) && valid_level(e.type, e.level);
    if (!valid_type(e.type)) {
        errors.push_back(invalid_field("Invalid type, see documentation for supported types", "type"));
    } else if (!level_ok) {
        errors.push_back(field_error{"InvalidObject",
                                     "Unrecognized level for type, see documentation for supported levels for each type",
                                     "level"});
    }
    if (e.level == "owner") {
        e.object_id = 1;
    } else if (level_ok && e.object_id <= 0) {
        errors.push_back(invalid_field("objectId is required for this level", "objectId"));
    }
    if (e.description.size() > 100) {
        errors.push_back(invalid_field("description may not exceed 100 characters", "description"));
    }
    if (e.payload_version.empty()) {
        e.payload_version = "3.0.0";
    }
    return errors;
}

bool same_registration(const callback_entry& a, const callback_entry& b)
{
    return a.type == b.type && a.level == b.level && a.object_id == b.object_id && a.url == b.url;
}

std::optional<conditions::field_value> entry_field(const callback_entry& e, std::string_view field)
{
    if (field == "id") {
        return e.id;
    }
    if (field == "description") {
        if (e.description.empty()) {
            return std::monostate{};
        }
        return e.description;
    }
    if (field == "url") {
        return e.url;
    }
    if (field == "objectid") {
        return e.object_id;
    }
    if (field == "type") {
        return e.type;
    }
    if (field == "level") {
        return e.level;
    }
    if (field == "memberid") {
        return e.member_id;
    }
    if (field == "payloadversion") {
        return e.payload_version;
    }
    if (field == "inactiveflag") {
        return e.inactive;
    }
    if (field == "issoapcallbackflag") {
        return e.is_soap_callback;
    }
    if (field == "isselfsuppressedflag") {
        return e.is_self_suppressed;
    }
    if (field == "connectwiseid") {
        return e.connectwise_id;
    }
    if (field == "_info/lastupdated") {
        return e.last_updated;
    }
    if (field == "_info/updatedby") {
        return e.updated_by;
    }
    return std::nullopt;
}

bool known_field(std::string_view field)
{
    return entry_field(callback_entry{}, field).has_value();
}

std::string table_json(const std::vector<callback_entry>& entries)
{
    std::string out = "[";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        out += i > 0 ? ",\n" : "\n";
        append_entry_json(out, entries[i]);
        out.pop_back();  // reopen the object for the bookkeeping member
        out += fmt::format(",\"_emulator\":{{\"consecutiveFailures\":{},\"deliveries\":{}}}}}",
                           entries[i].consecutive_failures, entries[i].deliveries);
    }
    out += "\n]\n";
    return out;
}

boost::system::result<std::vector<callback_entry>, std::string> parse_table(std::string_view text)
{
    auto parsed = json::parse_value(text);
    if (const auto* err = std::get_if<json::parse_error>(&parsed)) {
        return err->detail;
    }
    const auto* items = std::get<json::value>(parsed).as_array();
    if (items == nullptr) {
        return std::string("not a JSON array");
    }
    std::vector<callback_entry> out;
    for (const auto& item : *items) {
        callback_entry e;
        if (auto errors = apply_object(e, item); !errors.empty()) {
            return fmt::format("entry {}: {}", out.size() + 1, errors.front().message);
        }
        const auto* id = item.find("id");
        if (id == nullptr || !id->as_int() || *id->as_int() <= 0) {
            return fmt::format("entry {}: no id", out.size() + 1);
        }
        e.id = *id->as_int();
        if (const auto* m = item.find("memberId"); m && m->as_int()) {
            e.member_id = *m->as_int();
        }
        if (const auto* g = item.find("connectWiseID"); g && g->as_string()) {
            e.connectwise_id = std::string(*g->as_string());
        }
        if (const auto* info = item.find("_info")) {
            if (const auto* l = info->find("lastUpdated"); l && l->as_string()) {
                e.last_updated = std::string(*l->as_string());
            }
            if (const auto* u = info->find("updatedBy"); u && u->as_string()) {
                e.updated_by = std::string(*u->as_string());
            }
        }
        if (const auto* book = item.find("_emulator")) {
            if (const auto* f = book->find("consecutiveFailures"); f && f->as_int()) {
                e.consecutive_failures = static_cast<unsigned>(*f->as_int());
            }
            if (const auto* d = book->find("deliveries"); d && d->as_int()) {
                e.deliveries = static_cast<std::uint64_t>(*d->as_int());
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::string utc_now()
{
    return utc_text(std::chrono::system_clock::now());
}

std::string utc_text(std::chrono::system_clock::time_point t)
{
    const auto now = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&now, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string new_guid()
{
    const auto h = crypto::random_hex(16);
    return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4),
                       h.substr(20));
}

} // namespace cwhook::emulator
