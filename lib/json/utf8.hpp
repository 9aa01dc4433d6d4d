// Repairing text that must be valid UTF-8 (JSON output, terminals). Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cwhook::json {

// Replaces each byte that is not part of a well-formed UTF-8 sequence (Unicode table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF, which is exactly what simdjson
// validates) with '?'. The length never changes, so every quote, brace and escape of a JSON
// document stays where it was and only string contents are altered.
void replace_invalid_utf8(char* data, std::size_t size) noexcept;

// s with every byte that is not part of well-formed UTF-8 replaced by '?' (same length), so
// it can go into JSON text; s itself when it is valid.
std::string valid_utf8(std::string_view s);

} // namespace cwhook::json
