// The system/callbacks model of the emulator: the type/level table (docs/PROTOCOL.md section 5)
// with each type's REST collection, CallbackEntry <-> JSON in Manage's shape, POST/PUT/PATCH
// bodies applied with Manage's field errors, the duplicate rule, and field lookup for
// conditions. Pure functions; thread-safe.
#pragma once

#include "emulator/conditions.hpp"
#include "emulator/emulator.hpp"
#include "json/value.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::emulator {

// One entry of a Manage error body's `errors` array.
struct field_error {
    std::string code;     // "InvalidField", "InvalidObject", "ObjectExists"
    std::string message;
    std::string field;
};

bool valid_type(std::string_view type);
bool valid_level(std::string_view type, std::string_view level);
// The levels of a type, "" for an unknown type ("owner, board, ...").
std::string levels_of(std::string_view type);
// The REST collection of a type's records ("service/tickets"), "" for an unknown type; and back
// ("" for a path that is no collection). Paths are case-sensitive, like the table.
std::string_view collection_of(std::string_view type);
std::string_view type_of_collection(std::string_view path);
// The name-like field a synthesized record carries ("summary" for tickets, "name", ...).
std::string_view label_of(std::string_view type);

// {"id":..,"description":..,"url":..,...,"_info":{...}}; description omitted when empty.
void append_entry_json(std::string& out, const callback_entry& e);
std::string entry_json(const callback_entry& e);
// [entry,...]
std::string entries_json(const std::vector<callback_entry>& entries);

// Manage's error body: {"code":..,"message":..} plus "errors":[...] when any.
std::string error_json(std::string_view code, std::string_view message, const std::vector<field_error>& errors = {});

// POST/PUT body: a CallbackEntry object; read-only fields (id, memberId, connectWiseID, _info)
// are ignored. Unknown members are ignored like Manage does.
std::vector<field_error> apply_object(callback_entry& e, const json::value& body);
// PATCH body: [{"op":"replace"|"add"|"remove","path":"inactiveFlag"|"/inactiveFlag",
// "value":...}]. Paths are case-sensitive (as Manage documents).
std::vector<field_error> apply_patch(callback_entry& e, const json::value& body);
// Type/level/url/objectId/description rules; normalises type and level to lower case and the
// objectId of level owner to 1.
std::vector<field_error> validate(callback_entry& e);

// Manage's duplicate rule: same type, level, objectId and url.
bool same_registration(const callback_entry& a, const callback_entry& b);

// Field lookup for conditions (names lower-cased): id, description, url, objectid, type,
// level, memberid, payloadversion, inactiveflag, issoapcallbackflag, isselfsuppressedflag,
// connectwiseid, _info/lastupdated, _info/updatedby.
std::optional<conditions::field_value> entry_field(const callback_entry& e, std::string_view field);
bool known_field(std::string_view field);

// The persisted table (the entries as the API shows them, plus delivery bookkeeping).
std::string table_json(const std::vector<callback_entry>& entries);
boost::system::result<std::vector<callback_entry>, std::string> parse_table(std::string_view text);

// "2026-06-04T17:14:20Z" for now, or for t (whole seconds, like Manage's lastUpdated).
std::string utc_now();
std::string utc_text(std::chrono::system_clock::time_point t);
// A random GUID in 8-4-4-4-12 lower-case hex.
std::string new_guid();

} // namespace cwhook::emulator
