// Design: every document is parsed with simdjson's DOM API into a parser owned by the calling
// thread; callers copy the few fields they need into owned structs, so no simdjson type leaves
// lib/json. The parser is allocated with a maximum depth of 64 so a hostile body cannot build
// a deep tape, and errors are reported as values with short details that are safe to echo.
#include "json/detail/document.hpp"

#include "json/detail/validate.hpp"
#include "json/utf8.hpp"

#include <cstddef>
#include <string>

namespace cwhook::json {
namespace {

// Callback payloads are two levels deep; 64 leaves room for whatever Manage adds while keeping
// depth (and the parser's per-level state) bounded regardless of the body.
constexpr std::size_t max_depth = 64;

// The HTTP layer's body limit is far below this; it only stops the parser from growing its
// buffers without bound if a caller forgets that limit.
constexpr std::size_t max_document_bytes = std::size_t{64} * 1024 * 1024;

constexpr std::size_t initial_capacity = std::size_t{64} * 1024;

// One parser per thread: simdjson parsers are not thread-safe but are expensive to allocate.
// Returns nullptr when the depth-limited allocation failed; we never fall back to a parser
// with simdjson's default depth.
simdjson::dom::parser* thread_parser()
{
    thread_local simdjson::dom::parser parser{max_document_bytes};
    if (parser.max_depth() != max_depth) {
        if (parser.allocate(initial_capacity, max_depth) != simdjson::SUCCESS) {
            return nullptr;
        }
    }
    return &parser;
}

} // namespace

namespace detail {

document parse_document(std::string_view text, bool lenient_utf8)
{
    document out;
    simdjson::dom::parser* parser = thread_parser();
    if (parser == nullptr) {
        out.error = simdjson::MEMALLOC;
        return out;
    }
    if (text.empty()) {
        // An empty view may carry a null pointer, which simdjson would hand to memcpy.
        out.error = simdjson::EMPTY;
        return out;
    }
    // parse(pointer, length) copies into the parser's own padded buffer: a string_view
    // gives no guarantee of SIMDJSON_PADDING readable bytes after its end.
    out.error = parser->parse(text.data(), text.size()).get(out.root);
    if (out.error == simdjson::UTF8_ERROR && lenient_utf8) {
        out.utf8_valid = false;
        simdjson::padded_string scrubbed{text.data(), text.size()};
        replace_invalid_utf8(scrubbed.data(), scrubbed.size());
        out.error = parser->parse(scrubbed).get(out.root);
    }
    return out;
}

std::string describe(simdjson::error_code error)
{
    switch (error) {
    case simdjson::EMPTY: return "empty body";
    case simdjson::DEPTH_ERROR: return "nesting too deep";
    case simdjson::CAPACITY: return "body too large";
    case simdjson::MEMALLOC: return "out of memory";
    default: return std::string{"invalid JSON: "} + simdjson::error_message(error);
    }
}

std::optional<std::string> validate(std::string_view text)
{
    const document doc = parse_document(text, false);
    if (doc.error == simdjson::SUCCESS) {
        return std::string(text);
    }
    if (doc.error != simdjson::UTF8_ERROR) {
        return std::nullopt;
    }
    std::string scrubbed(text);
    replace_invalid_utf8(scrubbed.data(), scrubbed.size());
    if (parse_document(scrubbed, false).error != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return scrubbed;
}

std::optional<std::string> top_level_string(std::string_view text, std::string_view key)
{
    const document doc = parse_document(text, false);
    if (doc.error != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view value;
    if (doc.root[key].get_string().get(value) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return std::string(value);
}

} // namespace detail
} // namespace cwhook::json
