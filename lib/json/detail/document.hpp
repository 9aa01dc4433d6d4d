// The module's one way into simdjson: a depth-limited parser per thread and short, safe error
// texts. Included only by lib/json/*.cpp (the only place that sees simdjson).
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace cwhook::json::detail {

struct document {
    simdjson::error_code error = simdjson::SUCCESS;
    simdjson::dom::element root;
    bool utf8_valid = true;
};

// lenient_utf8: invalid UTF-8 inside strings is replaced by '?' (and utf8_valid cleared)
// instead of failing. The returned element points into the thread's parser and is valid until
// that thread's next parse.
document parse_document(std::string_view text, bool lenient_utf8);

// "empty body", "nesting too deep", "invalid JSON: ...": safe to return to a client.
std::string describe(simdjson::error_code error);

} // namespace cwhook::json::detail
