#include "emulator/record_table.hpp"

#include "core/text.hpp"
#include "emulator/callback_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace cwhook::emulator {

namespace {

using member = json::value::member;

bool iequal(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && lower_ascii(a) == lower_ascii(b);
}

const json::value* find_ci(const json::value& v, std::string_view name)
{
    const auto* members = v.as_object();
    if (members == nullptr) {
        return nullptr;
    }
    for (const auto& m : *members) {
        if (iequal(m.key, name)) {
            return &m.val;
        }
    }
    return nullptr;
}

// `members` with `name` set to `value`: replaced where it stands, or appended.
void set_member(std::vector<member>& members, std::string_view name, json::value value)
{
    for (auto& m : members) {
        if (m.key == name) {
            m.val = std::move(value);
            return;
        }
    }
    members.push_back(member{std::string(name), std::move(value)});
}

std::vector<member> members_of(const json::value& v)
{
    const auto* members = v.as_object();
    return members == nullptr ? std::vector<member>{} : *members;
}

std::string string_at(const json::value& record, std::string_view outer, std::string_view inner)
{
    const auto* v = record.find(outer);
    if (v != nullptr && !inner.empty()) {
        v = v->find(inner);
    }
    const auto s = v == nullptr ? std::nullopt : v->as_string();
    return s ? std::string(*s) : std::string{};
}

} // namespace

json::value new_record(std::string_view type, std::int64_t id, std::string_view date_entered,
                       std::string_view last_updated, std::string_view updated_by)
{
    std::vector<member> members;
    members.push_back(member{"id", json::value::make_int(id)});
    const auto label = label_of(type);
    members.push_back(member{std::string(label.empty() ? "name" : label),
                             json::value::make_string(fmt::format("Emulated {} {}", type, id))});
    members.push_back(member{"dateEntered", json::value::make_string(std::string(date_entered))});
    auto record = json::value::make_object(std::move(members));
    return stamp_record(record, last_updated, updated_by);
}

json::value merge_record(const json::value& record, const json::value& changes)
{
    auto members = members_of(record);
    const auto* given = changes.as_object();
    if (given == nullptr) {
        return json::value::make_object(std::move(members));
    }
    for (const auto& m : *given) {
        if (m.key == "id") {
            continue;
        }
        if (m.key == "_info" && m.val.as_object() != nullptr) {
            const auto* old = record.find("_info");
            auto info = old == nullptr ? std::vector<member>{} : members_of(*old);
            for (const auto& i : *m.val.as_object()) {
                set_member(info, i.key, i.val);
            }
            set_member(members, "_info", json::value::make_object(std::move(info)));
            continue;
        }
        set_member(members, m.key, m.val);
    }
    return json::value::make_object(std::move(members));
}

json::value stamp_record(const json::value& record, std::string_view last_updated, std::string_view updated_by)
{
    auto members = members_of(record);
    const auto* old = record.find("_info");
    auto info = old == nullptr ? std::vector<member>{} : members_of(*old);
    set_member(info, "lastUpdated", json::value::make_string(std::string(last_updated)));
    set_member(info, "updatedBy", json::value::make_string(std::string(updated_by)));
    set_member(members, "_info", json::value::make_object(std::move(info)));
    return json::value::make_object(std::move(members));
}

std::int64_t record_id(const json::value& record)
{
    const auto* id = record.find("id");
    return id == nullptr ? 0 : id->as_int().value_or(0);
}

std::string record_last_updated(const json::value& record)
{
    return string_at(record, "_info", "lastUpdated");
}

std::string record_date_entered(const json::value& record)
{
    return string_at(record, "dateEntered", {});
}

std::optional<conditions::field_value> record_field(const json::value& record, std::string_view field)
{
    const json::value* v = &record;
    std::string_view rest = field;
    while (v != nullptr && !rest.empty()) {
        const auto slash = rest.find('/');
        v = find_ci(*v, rest.substr(0, slash));
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
    if (v == nullptr && (field == "lastupdated" || field == "updatedby")) {
        // Manage's conditions say `lastUpdated` for the _info member.
        if (const auto* info = find_ci(record, "_info")) {
            v = find_ci(*info, field);
        }
    }
    if (v == nullptr) {
        return std::nullopt;
    }
    switch (v->type()) {
    case json::value::kind::null: return std::monostate{};
    case json::value::kind::boolean: return *v->as_bool();
    case json::value::kind::number:
        if (auto n = v->as_int()) {
            return *n;
        }
        return std::string(v->number_text());
    case json::value::kind::string: return std::string(*v->as_string());
    default: return std::nullopt;
    }
}

std::vector<std::string> parse_fields(std::string_view text)
{
    std::vector<std::string> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const auto name = trim(text.substr(0, comma));
        if (!name.empty()) {
            out.emplace_back(name);
        }
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return out;
}

json::value project(const json::value& record, const std::vector<std::string>& fields)
{
    if (fields.empty()) {
        return record;
    }
    std::vector<member> kept;
    for (const auto& m : members_of(record)) {
        if (std::any_of(fields.begin(), fields.end(), [&](const std::string& f) { return iequal(f, m.key); })) {
            kept.push_back(m);
        }
    }
    return json::value::make_object(std::move(kept));
}

} // namespace cwhook::emulator
