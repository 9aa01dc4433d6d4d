#include "manage/types.hpp"

#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace cwhook::manage {

std::span<const callback_type> callback_types()
{
    static const std::vector<callback_type> table{
        {"activity", {"owner", "status", "type", "company", "activity"}},
        {"agreement", {"owner", "type", "company", "agreement"}},
        {"company", {"owner", "status", "type", "territory", "company", "integratortag"}},
        {"contact", {"owner", "type", "territory", "company", "contact"}},
        {"configuration", {"owner", "type", "status", "configuration"}},
        {"invoice", {"owner", "status", "company", "invoice"}},
        {"expense", {"owner", "chargetotype", "type", "class", "company", "expense"}},
        {"member", {"owner", "location", "securityrole", "member"}},
        {"opportunity", {"owner", "statusid", "company", "opportunity"}},
        {"productcatalog", {"owner"}},
        {"project", {"owner", "status", "board", "project"}},
        {"purchaseorder", {"owner", "status", "vendor", "company", "purchaseorder"}},
        {"schedule", {"owner", "status", "type", "location", "member", "schedule"}},
        {"ticket", {"owner", "board", "project", "phase", "status", "ticket", "integratortag"}},
        {"time", {"owner", "company", "time"}},
    };
    return table;
}

std::optional<std::string> check_type_level(std::string_view type_in, std::string_view level_in)
{
    const auto type = lower_ascii(type_in);
    const auto level = lower_ascii(level_in);
    for (const auto& t : callback_types()) {
        if (t.type != type) {
            continue;
        }
        if (std::find(t.levels.begin(), t.levels.end(), level) != t.levels.end()) {
            return std::nullopt;
        }
        return fmt::format("level \"{}\" is not one of type {}'s levels: {}", level_in, type,
                           fmt::join(t.levels, ", "));
    }
    std::vector<std::string_view> names;
    for (const auto& t : callback_types()) {
        names.push_back(t.type);
    }
    return fmt::format("unknown type \"{}\" (expected one of {})", type_in, fmt::join(names, ", "));
}

std::optional<std::string> normalize(subscription& s, bool object_id_given)
{
    if (auto why = check_type_level(s.type, s.level)) {
        return why;
    }
    s.type = lower_ascii(s.type);
    s.level = lower_ascii(s.level);
    if (s.level == "owner") {
        if (object_id_given && s.object_id != 1) {
            return fmt::format("object_id {}: level owner takes object_id 1", s.object_id);
        }
        s.object_id = 1;
    } else if (!object_id_given || s.object_id <= 0) {
        return fmt::format("level {} needs object_id (the id of the {} record)", s.level, s.level);
    }
    if (s.url.empty()) {
        return std::string("url is required");
    }
    const auto lower = lower_ascii(s.url.substr(0, 8));
    if (!lower.starts_with("https://") && !lower.starts_with("http://")) {
        return fmt::format("url \"{}\" must start with https:// (or http://)", s.url);
    }
    for (const char c : s.url) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) {
            return std::string("url must not contain spaces or control characters");
        }
    }
    if (s.description.size() > 100) {
        return fmt::format("description is {} characters; Manage keeps at most 100", s.description.size());
    }
    return std::nullopt;
}

bool lacks_record_id(std::string_view url)
{
    return !lower_ascii(url).ends_with("recordid=");
}

} // namespace cwhook::manage
