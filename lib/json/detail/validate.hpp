// simdjson-backed checks for json/pretty.cpp (implemented in document.cpp, the one file that
// owns the parser). Internal to lib/json.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cwhook::json::detail {

// A copy of text that is one valid JSON value, with bytes of invalid UTF-8 replaced by '?'
// (same length); nullopt when it is not valid JSON even so.
std::optional<std::string> validate(std::string_view text);

// The decoded value of the top-level object's string member `key`; nullopt when the text is
// not an object or the member is absent, null or not a string. text must be valid UTF-8.
std::optional<std::string> top_level_string(std::string_view text, std::string_view key);

} // namespace cwhook::json::detail
