// The records behind the REST collections a catch-up reads (service/tickets, company/contacts,
// ...; the table is in callback_table.hpp): a record is a JSON object with at least `id`, a
// name-like field, `dateEntered` and `_info` {lastUpdated, updatedBy}. Building and merging
// records, field lookup for conditions and orderBy, and partial responses (`fields`).
// Pure functions; thread-safe.
#pragma once

#include "emulator/conditions.hpp"
#include "json/value.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::emulator {

// {"id":..,"<label>":"Emulated <type> <id>","dateEntered":..,"_info":{"lastUpdated":..,"updatedBy":..}}
json::value new_record(std::string_view type, std::int64_t id, std::string_view date_entered,
                       std::string_view last_updated, std::string_view updated_by);

// `record` with the members of `changes` (an object) set: a member of the same name is replaced
// where it stands, others are appended; `_info` is merged member by member; `id` never changes.
json::value merge_record(const json::value& record, const json::value& changes);

// `record` with _info.lastUpdated and _info.updatedBy set (other _info members kept).
json::value stamp_record(const json::value& record, std::string_view last_updated, std::string_view updated_by);

// The record's id (0 when it has none) and _info.lastUpdated ("" when none).
std::int64_t record_id(const json::value& record);
std::string record_last_updated(const json::value& record);
std::string record_date_entered(const json::value& record);

// Field lookup for conditions and orderBy, names lower-cased: members separated by '/'
// ("company/id", "_info/lastupdated"), matched case-insensitively. `lastupdated` and
// `updatedby` name _info's when the record has no such top-level member. Numbers that are not
// integers compare as their text; objects and arrays are not comparable (nullopt).
std::optional<conditions::field_value> record_field(const json::value& record, std::string_view field);

// `fields=id,_info`: the names, trimmed, empty ones dropped.
std::vector<std::string> parse_fields(std::string_view text);
// Only the top-level members named (case-insensitive; unknown names ignored), in the record's
// order. An empty list keeps everything.
json::value project(const json::value& record, const std::vector<std::string>& fields);

} // namespace cwhook::emulator
