// Showing stored payloads to people: re-indenting JSON text without re-serialising it, so
// every number keeps the exact text Manage sent ("2.00" stays "2.00", 1e2 stays 1e2), and
// decoding the payload's Entity, which Manage sends as a JSON-encoded string. Invalid UTF-8 is
// shown as '?' (the stored body itself is never altered; `events show --raw` prints it).
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cwhook::json {

// indent 0: compact (no whitespace at all); otherwise that many spaces per level.
// nullopt when text is not one valid JSON value.
std::optional<std::string> reformat(std::string_view text, int indent);

// The payload object with its top-level "Entity" string replaced by the JSON value it holds
// (left as a string when it does not hold valid JSON). nullopt when body is not valid JSON.
std::optional<std::string> reformat_payload(std::string_view body, int indent);

// Only the decoded Entity: its JSON value re-indented, "null" when Entity is null or absent.
// nullopt when body is not valid JSON or Entity is a string that does not hold JSON.
std::optional<std::string> decoded_entity(std::string_view body, int indent);

// The text of a JSON string literal (quotes included) with its escapes resolved; lone
// surrogates become U+FFFD. The literal must be well-formed (checked by the caller's parse).
std::string unescape_string(std::string_view literal);

} // namespace cwhook::json
