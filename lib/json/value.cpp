// Design: the simdjson DOM of the thread's parser is copied into an owned tree right away, so
// nothing of simdjson outlives the call and the tree may cross threads. Depth is bounded by
// the parser (64), which also bounds the recursion of the copy and of serialize().
#include "json/value.hpp"

#include "core/json_string.hpp"
#include "json/detail/document.hpp"

#include <fmt/format.h>

#include <charconv>
#include <utility>

namespace cwhook::json {

value value::make_bool(bool b)
{
    value v;
    v.kind_ = kind::boolean;
    v.bool_ = b;
    return v;
}

value value::make_int(std::int64_t n)
{
    return make_number_text(std::to_string(n));
}

value value::make_number_text(std::string text)
{
    value v;
    v.kind_ = kind::number;
    v.text_ = std::move(text);
    return v;
}

value value::make_string(std::string s)
{
    value v;
    v.kind_ = kind::string;
    v.text_ = std::move(s);
    return v;
}

value value::make_array(std::vector<value> items)
{
    value v;
    v.kind_ = kind::array;
    v.items_ = std::move(items);
    return v;
}

value value::make_object(std::vector<member> members)
{
    value v;
    v.kind_ = kind::object;
    v.members_ = std::move(members);
    return v;
}

std::optional<bool> value::as_bool() const
{
    if (kind_ != kind::boolean) {
        return std::nullopt;
    }
    return bool_;
}

std::optional<std::int64_t> value::as_int() const
{
    if (kind_ != kind::number) {
        return std::nullopt;
    }
    std::int64_t n = 0;
    const auto* end = text_.data() + text_.size();
    const auto [ptr, ec] = std::from_chars(text_.data(), end, n);
    if (ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return n;
}

std::optional<std::string_view> value::as_string() const
{
    if (kind_ != kind::string) {
        return std::nullopt;
    }
    return std::string_view{text_};
}

std::string_view value::number_text() const
{
    return kind_ == kind::number ? std::string_view{text_} : std::string_view{};
}

const std::vector<value>* value::as_array() const
{
    return kind_ == kind::array ? &items_ : nullptr;
}

const std::vector<value::member>* value::as_object() const
{
    return kind_ == kind::object ? &members_ : nullptr;
}

const value* value::find(std::string_view key) const
{
    if (kind_ != kind::object) {
        return nullptr;
    }
    for (const auto& m : members_) {
        if (m.key == key) {
            return &m.val;
        }
    }
    return nullptr;
}

namespace {

value copy(simdjson::dom::element e)
{
    switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
        std::vector<value> items;
        // Named first: iterating `get_array().value_unsafe()` directly would walk a reference
        // into a simdjson_result temporary that dies before the loop body runs.
        const simdjson::dom::array array = e.get_array().value_unsafe();
        for (auto child : array) {
            items.push_back(copy(child));
        }
        return value::make_array(std::move(items));
    }
    case simdjson::dom::element_type::OBJECT: {
        std::vector<value::member> members;
        const simdjson::dom::object object = e.get_object().value_unsafe();
        for (auto field : object) {
            members.push_back(value::member{std::string{field.key}, copy(field.value)});
        }
        return value::make_object(std::move(members));
    }
    case simdjson::dom::element_type::INT64:
        return value::make_int(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
        return value::make_number_text(std::to_string(e.get_uint64().value_unsafe()));
    case simdjson::dom::element_type::DOUBLE:
        return value::make_number_text(fmt::format("{}", e.get_double().value_unsafe()));
    case simdjson::dom::element_type::STRING:
        return value::make_string(std::string{e.get_string().value_unsafe()});
    case simdjson::dom::element_type::BOOL:
        return value::make_bool(e.get_bool().value_unsafe());
    case simdjson::dom::element_type::NULL_VALUE:
        break;
    }
    return value{};
}

void write(std::string& out, const value& v)
{
    switch (v.type()) {
    case value::kind::null: out += "null"; break;
    case value::kind::boolean: out += *v.as_bool() ? "true" : "false"; break;
    case value::kind::number: out += v.number_text(); break;
    case value::kind::string: append_json_string(out, *v.as_string()); break;
    case value::kind::array: {
        out.push_back('[');
        bool first = true;
        for (const auto& item : *v.as_array()) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            write(out, item);
        }
        out.push_back(']');
        break;
    }
    case value::kind::object: {
        out.push_back('{');
        bool first = true;
        for (const auto& m : *v.as_object()) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            append_json_string(out, m.key);
            out.push_back(':');
            write(out, m.val);
        }
        out.push_back('}');
        break;
    }
    }
}

} // namespace

value_result parse_value(std::string_view text)
{
    const detail::document doc = detail::parse_document(text, false);
    if (doc.error != simdjson::SUCCESS) {
        return parse_error{detail::describe(doc.error)};
    }
    return copy(doc.root);
}

std::string serialize(const value& v)
{
    std::string out;
    write(out, v);
    return out;
}

} // namespace cwhook::json
