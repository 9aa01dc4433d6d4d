// Design: every body is parsed with simdjson's DOM API into a parser owned by the calling
// thread, then the few fields we need are copied into owned structs; no simdjson type leaves
// this file. The parser is allocated with a maximum depth of 64 so a hostile body cannot build
// a deep tape, and errors are reported as values with short details that are safe to echo.
// Manage may send invalid UTF-8 (docs/PROTOCOL.md section 1): the raw bytes are what gets verified
// and stored, so here we only need the fields, and we read them from a copy in which each
// offending byte is replaced by '?'.
#include "json/payload.hpp"

#include "core/json_string.hpp"
#include "json/detail/document.hpp"
#include "json/detail/validate.hpp"
#include "json/pretty.hpp"
#include "json/records.hpp"

#include <simdjson.h>

#include <charconv>
#include <cstddef>
#include <string>
#include <system_error>
#include <utility>

namespace cwhook::json {
namespace {

// Callback payloads are two levels deep; 64 leaves room for whatever Manage adds while keeping
// depth (and the parser's per-level state) bounded regardless of the body.
constexpr std::size_t max_depth = 64;

// The HTTP layer's body limit is far below this; it only stops the parser from growing its
// buffers without bound if a caller forgets that limit.
constexpr std::size_t max_document_bytes = std::size_t{64} * 1024 * 1024;

constexpr std::size_t initial_capacity = std::size_t{64} * 1024;

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

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

// Replaces each byte that is not part of a well-formed UTF-8 sequence (Unicode table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF, which is exactly what simdjson
// validates) with '?'. The length never changes, so every quote, brace and escape of the
// document stays where it was and only string contents are altered.
void replace_invalid_utf8(char* data, std::size_t size) noexcept
{
    std::size_t i = 0;
    while (i < size) {
        const auto lead = static_cast<unsigned char>(data[i]);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        std::size_t continuation = 0;
        unsigned char first_low = 0x80;
        unsigned char first_high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            continuation = 1;
        } else if (lead == 0xE0) {
            continuation = 2;
            first_low = 0xA0;  // below is an overlong 3-byte form
        } else if (lead == 0xED) {
            continuation = 2;
            first_high = 0x9F;  // above are the UTF-16 surrogates
        } else if (lead >= 0xE1 && lead <= 0xEF) {
            continuation = 2;
        } else if (lead == 0xF0) {
            continuation = 3;
            first_low = 0x90;  // below is an overlong 4-byte form
        } else if (lead >= 0xF1 && lead <= 0xF3) {
            continuation = 3;
        } else if (lead == 0xF4) {
            continuation = 3;
            first_high = 0x8F;  // above is beyond U+10FFFF
        } else {
            // 0x80-0xC1 (stray continuation, overlong 2-byte lead) and 0xF5-0xFF.
            data[i] = '?';
            ++i;
            continue;
        }

        bool well_formed = i + continuation < size;
        for (std::size_t k = 1; well_formed && k <= continuation; ++k) {
            const auto byte = static_cast<unsigned char>(data[i + k]);
            const unsigned char low = k == 1 ? first_low : 0x80;
            const unsigned char high = k == 1 ? first_high : 0xBF;
            well_formed = byte >= low && byte <= high;
        }
        if (well_formed) {
            i += continuation + 1;
        } else {
            // Only the lead is replaced here: the bytes after it are examined on their own, so
            // a quote that cut a sequence short keeps its meaning.
            data[i] = '?';
            ++i;
        }
    }
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

} // namespace detail

namespace {

using detail::describe;
using detail::document;
using detail::parse_document;

// Reads fields of one object and remembers the first problem, so parse_payload reads as a
// list of fields rather than a ladder of early returns.
class field_reader {
public:
    field_reader(simdjson::dom::object object, std::string prefix)
        : object_{object}, prefix_{std::move(prefix)}
    {
    }

    std::string required_string(std::string_view key)
    {
        simdjson::dom::element value;
        if (!find(key, value, true)) {
            return {};
        }
        return string_of(key, value).value_or(std::string{});
    }

    // Optional fields are informational: one of an unexpected type is treated as absent
    // rather than costing the delivery (Manage never retries a 400).
    std::optional<std::string> optional_string(std::string_view key)
    {
        simdjson::dom::element value;
        if (!find(key, value, false) || value.is_null()) {
            return std::nullopt;
        }
        return leniently([&] { return string_of(key, value); });
    }

    std::int64_t required_integer(std::string_view key)
    {
        simdjson::dom::element value;
        if (!find(key, value, true)) {
            return 0;
        }
        return integer_of(key, value).value_or(0);
    }

    std::optional<std::int64_t> optional_integer(std::string_view key)
    {
        simdjson::dom::element value;
        if (!find(key, value, false) || value.is_null()) {
            return std::nullopt;
        }
        return leniently([&] { return integer_of(key, value); });
    }

    template <class F>
    auto leniently(F read) -> decltype(read())
    {
        auto saved = error_;
        auto v = read();
        error_ = std::move(saved);
        return v;
    }

    std::optional<simdjson::dom::object> required_object(std::string_view key)
    {
        simdjson::dom::element value;
        if (!find(key, value, true)) {
            return std::nullopt;
        }
        simdjson::dom::object object;
        if (value.get_object().get(object) != simdjson::SUCCESS) {
            fail(key, " is not an object");
            return std::nullopt;
        }
        return object;
    }

    const std::optional<parse_error>& error() const noexcept { return error_; }

    void adopt(const field_reader& nested)
    {
        if (!error_ && nested.error_) {
            error_ = nested.error_;
        }
    }

private:
    bool find(std::string_view key, simdjson::dom::element& value, bool required)
    {
        if (object_.at_key(key).get(value) == simdjson::SUCCESS) {
            return true;
        }
        if (required && !error_) {
            error_ = parse_error{"missing field " + prefix_ + std::string{key}};
        }
        return false;
    }

    std::optional<std::string> string_of(std::string_view key, simdjson::dom::element value)
    {
        std::string_view text;
        if (value.get_string().get(text) != simdjson::SUCCESS) {
            fail(key, " is not a string");
            return std::nullopt;
        }
        return std::string{text};
    }

    // Integers arrive as JSON numbers; a string of digits is accepted too because
    // serialisers of 64-bit ids sometimes quote them.
    std::optional<std::int64_t> integer_of(std::string_view key, simdjson::dom::element value)
    {
        switch (value.type()) {
        case simdjson::dom::element_type::INT64: {
            std::int64_t number = 0;
            if (value.get_int64().get(number) == simdjson::SUCCESS) {
                return number;
            }
            break;
        }
        case simdjson::dom::element_type::UINT64:
            fail(key, " is out of range");
            return std::nullopt;
        case simdjson::dom::element_type::STRING: {
            std::string_view text;
            if (value.get_string().get(text) != simdjson::SUCCESS || text.empty()) {
                break;
            }
            if (text.find_first_not_of("0123456789") != std::string_view::npos) {
                break;
            }
            std::int64_t number = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
            if (ec == std::errc::result_out_of_range) {
                fail(key, " is out of range");
                return std::nullopt;
            }
            if (ec == std::errc{} && end == text.data() + text.size()) {
                return number;
            }
            break;
        }
        default:
            break;
        }
        fail(key, " is not an integer");
        return std::nullopt;
    }

    void fail(std::string_view key, std::string_view what)
    {
        if (!error_) {
            error_ = parse_error{"field " + prefix_ + std::string{key} + std::string{what}};
        }
    }

    simdjson::dom::object object_;
    std::string prefix_;
    std::optional<parse_error> error_;
};

} // namespace

payload_result parse_payload(std::string_view body)
{
    const document doc = parse_document(body, true);
    if (doc.error != simdjson::SUCCESS) {
        return parse_error{describe(doc.error)};
    }
    simdjson::dom::object object;
    if (doc.root.get_object().get(object) != simdjson::SUCCESS) {
        return parse_error{"not a JSON object"};
    }

    payload out;
    out.utf8_valid = doc.utf8_valid;
    field_reader fields{object, ""};
    out.action = fields.required_string("Action");
    out.type = fields.required_string("Type");
    out.id = fields.required_integer("ID");
    if (const auto metadata = fields.required_object("Metadata")) {
        field_reader nested{*metadata, "Metadata."};
        out.key_url = nested.required_string("key_url");
        fields.adopt(nested);
    }
    out.message_id = fields.optional_string("MessageId");
    out.from_url = fields.optional_string("FromUrl");
    out.company_id = fields.optional_string("CompanyId");
    out.member_id = fields.optional_string("MemberId");
    out.product_instance_id = fields.optional_string("ProductInstanceId");
    out.partner_id = fields.optional_string("PartnerId");
    out.callback_id = fields.optional_integer("CallbackObjectRecId");
    // Entity is deliberately not read: it is a JSON-encoded string (or null), and its numbers
    // must keep their text, so consumers parse the stored raw body themselves.

    if (fields.error()) {
        return *fields.error();
    }
    return out;
}

std::optional<std::string> parse_signing_key(std::string_view body)
{
    // The key server's Content-Type is not reliably JSON and some servers prepend a BOM.
    if (body.substr(0, utf8_bom.size()) == utf8_bom) {
        body.remove_prefix(utf8_bom.size());
    }
    // No UTF-8 leniency here: a key read with bytes replaced would be a wrong key that fails
    // every verification, which is worse than reporting the key as unavailable.
    const document doc = parse_document(body, false);
    if (doc.error != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view key;
    if (doc.root["signing_key"].get_string().get(key) != simdjson::SUCCESS || key.empty()) {
        return std::nullopt;
    }
    return std::string{key};
}

const scalar* flat_object::find(std::string_view key) const
{
    for (const auto& [k, v] : fields) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

namespace {

// The top-level object of text (read leniently), valid until this thread's next parse.
std::variant<simdjson::dom::object, parse_error> parse_object(std::string_view text)
{
    const document doc = parse_document(text, true);
    if (doc.error != simdjson::SUCCESS) {
        return parse_error{describe(doc.error)};
    }
    simdjson::dom::object object;
    if (doc.root.get_object().get(object) != simdjson::SUCCESS) {
        return parse_error{"not a JSON object"};
    }
    return object;
}

} // namespace

std::variant<flat_object, parse_error> parse_flat_object(std::string_view text)
{
    auto parsed = parse_object(text);
    if (auto* err = std::get_if<parse_error>(&parsed)) {
        return *err;
    }
    const auto object = std::get<simdjson::dom::object>(parsed);
    flat_object out;
    for (const auto field : object) {
        scalar v;
        switch (field.value.type()) {
        case simdjson::dom::element_type::NULL_VALUE: break;
        case simdjson::dom::element_type::INT64: v = field.value.get_int64().value_unsafe(); break;
        case simdjson::dom::element_type::STRING: v = std::string(field.value.get_string().value_unsafe()); break;
        default: return parse_error{"field " + std::string(field.key) + " is not a string, integer or null"};
        }
        out.fields.emplace_back(std::string(field.key), std::move(v));
    }
    return out;
}

std::variant<replay_request, parse_error> parse_replay_request(std::string_view body)
{
    auto parsed = parse_object(body);
    if (auto* err = std::get_if<parse_error>(&parsed)) {
        return *err;
    }
    const auto object = std::get<simdjson::dom::object>(parsed);
    replay_request out;
    for (const auto field : object) {
        const std::string_view key = field.key;
        const auto& v = field.value;
        if (key == "ids") {
            simdjson::dom::array ids;
            if (v.get_array().get(ids) != simdjson::SUCCESS) {
                return parse_error{"field ids is not an array"};
            }
            for (const auto id : ids) {
                std::int64_t n = 0;
                if (id.get_int64().get(n) != simdjson::SUCCESS) {
                    return parse_error{"field ids holds a value that is not an integer"};
                }
                out.ids.push_back(n);
            }
        } else if (key == "filter") {
            simdjson::dom::object filter;
            if (v.get_object().get(filter) != simdjson::SUCCESS) {
                return parse_error{"field filter is not an object"};
            }
            out.has_filter = true;
            for (const auto f : filter) {
                std::string_view text;
                std::int64_t n = 0;
                if (f.value.get_string().get(text) == simdjson::SUCCESS) {
                    out.filter.emplace_back(std::string(f.key), std::string(text));
                } else if (f.value.get_int64().get(n) == simdjson::SUCCESS) {
                    out.filter.emplace_back(std::string(f.key), std::to_string(n));
                } else {
                    return parse_error{"field filter." + std::string(f.key) + " is not a string or integer"};
                }
            }
        } else if (key == "to") {
            std::string_view to;
            if (v.get_string().get(to) != simdjson::SUCCESS) {
                return parse_error{"field to is not a string"};
            }
            out.to = std::string(to);
        } else if (key == "rate") {
            double rate = 0;
            if (v.get_double().get(rate) != simdjson::SUCCESS) {
                return parse_error{"field rate is not a number"};
            }
            out.rate = rate;
        } else if (key == "concurrency") {
            std::int64_t n = 0;
            if (v.get_int64().get(n) != simdjson::SUCCESS) {
                return parse_error{"field concurrency is not an integer"};
            }
            out.concurrency = n;
        } else if (key == "stop_on_error") {
            bool b = false;
            if (v.get_bool().get(b) != simdjson::SUCCESS) {
                return parse_error{"field stop_on_error is not a boolean"};
            }
            out.stop_on_error = b;
        } else {
            return parse_error{"unknown field " + std::string(key)};
        }
    }
    return out;
}

std::string valid_utf8(std::string_view s)
{
    std::string out(s);
    replace_invalid_utf8(out.data(), out.size());
    return out;
}

std::optional<std::string> detail::validate(std::string_view text)
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

std::optional<std::string> detail::top_level_string(std::string_view text, std::string_view key)
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

} // namespace cwhook::json
