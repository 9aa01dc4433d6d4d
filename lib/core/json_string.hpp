// JSON string literal escaping for the small JSON texts built by hand (log lines, HTTP
// answers). Pure, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace cwhook {

// Appends s as a quoted JSON string: \" \\ \n \r \t, other control bytes and DEL as \u00XX;
// bytes >= 0x80 pass through unchanged.
void append_json_string(std::string& out, std::string_view s);

// s as a quoted JSON string (as append_json_string writes it).
std::string json_quoted(std::string_view s);

} // namespace cwhook
