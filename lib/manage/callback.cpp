#include "manage/callback.hpp"

#include "json/value.hpp"

namespace cwhook::manage {

namespace {

using json::value;

std::string str(const value& obj, std::string_view key)
{
    const auto* v = obj.find(key);
    if (v == nullptr) {
        return {};
    }
    if (auto s = v->as_string()) {
        return std::string(*s);
    }
    return {};
}

std::int64_t integer(const value& obj, std::string_view key)
{
    const auto* v = obj.find(key);
    if (v == nullptr) {
        return 0;
    }
    if (auto n = v->as_int()) {
        return *n;
    }
    return 0;
}

bool flag(const value& obj, std::string_view key)
{
    const auto* v = obj.find(key);
    if (v == nullptr) {
        return false;
    }
    if (auto b = v->as_bool()) {
        return *b;
    }
    // The API guide's own sample sends "false" as a string.
    if (auto s = v->as_string()) {
        return *s == "true" || *s == "True";
    }
    return false;
}

std::optional<callback> from_value(const value& v)
{
    if (v.as_object() == nullptr) {
        return std::nullopt;
    }
    const auto* id = v.find("id");
    if (id == nullptr || !id->as_int()) {
        return std::nullopt;
    }
    callback c;
    c.id = *id->as_int();
    c.description = str(v, "description");
    c.url = str(v, "url");
    c.object_id = integer(v, "objectId");
    c.type = str(v, "type");
    c.level = str(v, "level");
    c.member_id = integer(v, "memberId");
    c.payload_version = str(v, "payloadVersion");
    c.inactive = flag(v, "inactiveFlag");
    c.self_suppressed = flag(v, "isSelfSuppressedFlag");
    c.connectwise_id = str(v, "connectWiseID");
    if (const auto* info = v.find("_info"); info != nullptr && info->as_object() != nullptr) {
        c.last_updated = str(*info, "lastUpdated");
        c.updated_by = str(*info, "updatedBy");
    }
    return c;
}

value member_value(const callback& c)
{
    std::vector<value::member> m;
    m.push_back({"id", value::make_int(c.id)});
    m.push_back({"type", value::make_string(c.type)});
    m.push_back({"level", value::make_string(c.level)});
    m.push_back({"objectId", value::make_int(c.object_id)});
    m.push_back({"url", value::make_string(c.url)});
    m.push_back({"inactiveFlag", value::make_bool(c.inactive)});
    m.push_back({"description", value::make_string(c.description)});
    m.push_back({"memberId", value::make_int(c.member_id)});
    m.push_back({"payloadVersion", value::make_string(c.payload_version)});
    m.push_back({"isSelfSuppressedFlag", value::make_bool(c.self_suppressed)});
    m.push_back({"connectWiseID", value::make_string(c.connectwise_id)});
    if (!c.last_updated.empty() || !c.updated_by.empty()) {
        std::vector<value::member> info;
        info.push_back({"lastUpdated", value::make_string(c.last_updated)});
        info.push_back({"updatedBy", value::make_string(c.updated_by)});
        m.push_back({"_info", value::make_object(std::move(info))});
    }
    return value::make_object(std::move(m));
}

// The parsed document, or nullptr when the text is not JSON.
const value* root_of(const json::value_result& parsed)
{
    return std::get_if<json::value>(&parsed);
}

} // namespace

std::optional<callback> parse_callback(std::string_view body)
{
    const auto parsed = json::parse_value(body);
    const auto* root = root_of(parsed);
    if (root == nullptr) {
        return std::nullopt;
    }
    return from_value(*root);
}

std::optional<std::vector<callback>> parse_callbacks(std::string_view body)
{
    const auto parsed = json::parse_value(body);
    const auto* root = root_of(parsed);
    if (root == nullptr || root->as_array() == nullptr) {
        return std::nullopt;
    }
    std::vector<callback> out;
    out.reserve(root->as_array()->size());
    for (const auto& item : *root->as_array()) {
        auto c = from_value(item);
        if (!c) {
            return std::nullopt;
        }
        out.push_back(std::move(*c));
    }
    return out;
}

std::optional<std::int64_t> parse_count(std::string_view body)
{
    const auto parsed = json::parse_value(body);
    const auto* root = root_of(parsed);
    if (root == nullptr) {
        return std::nullopt;
    }
    const auto* n = root->find("count");
    if (n == nullptr) {
        return std::nullopt;
    }
    return n->as_int();
}

std::optional<std::string> parse_company_info(std::string_view body)
{
    const auto parsed = json::parse_value(body);
    const auto* root = root_of(parsed);
    if (root == nullptr) {
        return std::nullopt;
    }
    const auto* cb = root->find("Codebase");
    if (cb == nullptr || !cb->as_string()) {
        return std::nullopt;
    }
    std::string codebase(*cb->as_string());
    // A path segment like "v2025_1/": anything else would let the answer steer our requests.
    while (!codebase.empty() && codebase.front() == '/') {
        codebase.erase(0, 1);
    }
    if (!codebase.empty() && codebase.back() != '/') {
        codebase.push_back('/');
    }
    if (codebase.size() < 2) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i + 1 < codebase.size(); ++i) {
        const char c = codebase[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.';
        if (!ok || codebase.starts_with("..")) {
            return std::nullopt;
        }
    }
    return codebase;
}

std::string create_body(const subscription& s, bool inactive)
{
    std::vector<value::member> m;
    m.push_back({"id", value::make_int(0)});
    m.push_back({"description", value::make_string(s.description)});
    m.push_back({"inactiveFlag", value::make_bool(inactive)});
    m.push_back({"url", value::make_string(s.url)});
    m.push_back({"objectId", value::make_int(s.object_id)});
    m.push_back({"type", value::make_string(s.type)});
    m.push_back({"level", value::make_string(s.level)});
    m.push_back({"payloadVersion", value::make_string("3.0.0")});
    m.push_back({"isSelfSuppressedFlag", value::make_bool(false)});
    return json::serialize(value::make_object(std::move(m)));
}

std::string patch_body(std::optional<bool> inactive, const std::optional<std::string>& description)
{
    std::vector<value> ops;
    const auto replace = [&ops](std::string path, value v) {
        std::vector<value::member> m;
        m.push_back({"op", value::make_string("replace")});
        m.push_back({"path", value::make_string(std::move(path))});
        m.push_back({"value", std::move(v)});
        ops.push_back(value::make_object(std::move(m)));
    };
    if (inactive) {
        replace("inactiveFlag", value::make_bool(*inactive));
    }
    if (description) {
        replace("description", value::make_string(*description));
    }
    return json::serialize(value::make_array(std::move(ops)));
}

std::string to_json(const callback& c)
{
    return json::serialize(member_value(c));
}

std::string to_json(const std::vector<callback>& list)
{
    std::vector<value> items;
    items.reserve(list.size());
    for (const auto& c : list) {
        items.push_back(member_value(c));
    }
    return json::serialize(value::make_array(std::move(items)));
}

} // namespace cwhook::manage
