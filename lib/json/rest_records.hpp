// Records of Manage REST collections as catch-up reads them (service/tickets, company/contacts,
// ...): each record's id, `_info/lastUpdated`, `dateEntered` and its exact JSON text; and the
// `_info/lastUpdated` of a callback's Entity. Never throws. Thread-safe (one parser per thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::json {

struct rest_record {
    std::int64_t id = 0;
    std::optional<std::int64_t> last_updated_us; // _info.lastUpdated, microseconds since the epoch
    std::optional<std::int64_t> date_entered_us; // dateEntered (or _info.dateEntered)
    std::string json;                            // the object's text exactly as Manage sent it
};

// A JSON array of objects, each with an integer `id`; nullopt when the text is not that.
std::optional<std::vector<rest_record>> parse_rest_records(std::string_view text);

// The `_info.lastUpdated` of a callback payload's Entity (a JSON-encoded string); nullopt
// when the body, its Entity or the field is missing or unreadable.
std::optional<std::int64_t> entity_last_updated(std::string_view payload_body);

} // namespace cwhook::json
