// A Manage callback body -> its fields (lib/json is the only module that includes simdjson).
// parse_payload() never throws and never rejects a body for invalid UTF-8 inside strings:
// such bytes are read leniently (the raw body is what gets verified and stored).
// Thread-safe: each thread uses its own parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace cwhook::json {

// The fields of a Manage callback delivery (docs/PROTOCOL.md section 1). Optional ones are
// absent in the older payload format or when null.
struct payload {
    std::string action;
    std::string type;
    std::int64_t id = 0;
    std::string key_url;
    std::optional<std::string> message_id;
    std::optional<std::string> from_url;
    std::optional<std::string> company_id;
    std::optional<std::string> member_id;
    std::optional<std::string> product_instance_id;
    std::optional<std::string> partner_id;
    std::optional<std::int64_t> callback_id;
    bool utf8_valid = true;  // false when the body held invalid UTF-8 (read leniently)
};

struct parse_error {
    std::string detail;  // short, safe to return to the client: "missing field Action"
};

using payload_result = std::variant<payload, parse_error>;

// Required: Action, Type (strings), ID (integer, or a string of digits), Metadata.key_url
// (string). Everything else optional; unknown fields ignored. Depth and size are bounded by
// the parser (max depth 64) and the caller's body limit.
payload_result parse_payload(std::string_view body);

} // namespace cwhook::json
