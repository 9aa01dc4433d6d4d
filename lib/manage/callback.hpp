// The CallbackEntry model of system/callbacks (docs/PROTOCOL.md section 5): reading Manage's
// answers into owned structs and writing request bodies. Pure, thread-safe.
#pragma once

#include "manage/settings.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::manage {

struct callback {
    std::int64_t id = 0;
    std::string description;
    std::string url;
    std::int64_t object_id = 0;
    std::string type;
    std::string level;
    std::int64_t member_id = 0;
    std::string payload_version;
    bool inactive = false;
    bool self_suppressed = false;
    std::string connectwise_id;
    std::string last_updated; // _info.lastUpdated
    std::string updated_by;   // _info.updatedBy
};

// One entry / an array of entries; nullopt when the body is not that shape.
std::optional<callback> parse_callback(std::string_view body);
std::optional<std::vector<callback>> parse_callbacks(std::string_view body);
// {"count": N}
std::optional<std::int64_t> parse_count(std::string_view body);
// {"Codebase":"v2025_1/", ...}; nullopt for null, no Codebase, or a malformed one.
std::optional<std::string> parse_company_info(std::string_view body);

// POST body for a new entry (the fixture's shape: type and level lower case).
std::string create_body(const subscription& s, bool inactive);
// PATCH body: JSON Patch "replace" operations for the fields given.
std::string patch_body(std::optional<bool> inactive, const std::optional<std::string>& description);

// The entry as JSON for `--json` output (Manage's field names).
std::string to_json(const callback& c);
std::string to_json(const std::vector<callback>& list);

} // namespace cwhook::manage
