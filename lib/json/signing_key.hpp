// The key server's answer to a signing-key request. Never throws; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cwhook::json {

// {"signing_key":"..."} (a UTF-8 BOM before it is skipped). nullopt when it is not such an
// object, the key is empty, or the text is not valid UTF-8.
std::optional<std::string> parse_signing_key(std::string_view body);

} // namespace cwhook::json
