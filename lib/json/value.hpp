// A small owned JSON tree for bodies whose shape is open or nested (REST request bodies,
// JSON Patch arrays, API answers): parse once, then walk it with typed accessors that return
// nullopt/nullptr on a kind mismatch instead of throwing. Numbers keep a textual form; integral
// ones are also readable as int64. Depth is bounded (64) like every parse in this module.
// Immutable after construction; thread-safe to read.
#pragma once

#include "json/payload.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cwhook::json {

class value {
public:
    enum class kind { null, boolean, number, string, array, object };
    struct member;

    value() = default;  // null
    static value make_bool(bool b);
    static value make_int(std::int64_t n);
    static value make_number_text(std::string text);  // text must be a valid JSON number
    static value make_string(std::string s);
    static value make_array(std::vector<value> items);
    static value make_object(std::vector<member> members);

    kind type() const noexcept { return kind_; }
    bool is_null() const noexcept { return kind_ == kind::null; }

    std::optional<bool> as_bool() const;
    std::optional<std::int64_t> as_int() const;  // integral numbers in range only
    std::optional<std::string_view> as_string() const;
    std::string_view number_text() const;  // "" unless a number
    const std::vector<value>* as_array() const;
    const std::vector<member>* as_object() const;

    // First member named `key` of an object (exact, case-sensitive); nullptr when absent or
    // not an object.
    const value* find(std::string_view key) const;

private:
    kind kind_ = kind::null;
    bool bool_ = false;
    std::string text_;  // string contents or number text
    std::vector<value> items_;
    std::vector<member> members_;
};

struct value::member {
    std::string key;
    value val;
};

using value_result = std::variant<value, parse_error>;

// Strict JSON (UTF-8 validated), any top-level kind.
value_result parse_value(std::string_view text);

// Compact JSON text of v (object member order kept).
std::string serialize(const value& v);

} // namespace cwhook::json
