// Manage may send invalid UTF-8 (docs/PROTOCOL.md section 1): the raw bytes are what gets
// verified and stored, so here we only need the fields, and we read them from a copy in which
// each offending byte is replaced by '?' (json/detail/document.hpp).
#include "json/payload.hpp"

#include "json/detail/document.hpp"

#include <simdjson.h>

#include <charconv>
#include <string>
#include <system_error>
#include <utility>

namespace cwhook::json {
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

} // namespace cwhook::json
