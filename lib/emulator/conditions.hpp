// Manage's `conditions` query language (manage-api-guide "Conditions"), as the emulator
// evaluates it: `field op value` comparisons joined by `and` / `or`, grouped with
// parentheses, negated with `not`. Operators = != < <= > >= contains like in, each of the
// last three also as `not contains` / `not like` / `not in`. Values: "strings" (with
// backslash escapes), integers, true/false (any case), null, [2016-08-20T18:04:26Z] dates, and
// (a, b, ...) lists for `in`. Keywords and field names are case-insensitive; string
// comparisons too (Manage runs on a case-insensitive collation); `like` takes * or % as
// wildcards; a [date] compares with an RFC 3339 field as a point in time (so precision and
// offset do not matter). Immutable after parse; thread-safe.
#pragma once

#include <boost/system/result.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cwhook::emulator {

class conditions {
public:
    // A field's value in a record: null, bool, integer or string (dates as ISO-8601 text).
    using field_value = std::variant<std::monostate, bool, std::int64_t, std::string>;
    // Returns the field named (lower-cased, e.g. "objectid", "_info/lastupdated"), or nullopt
    // when the record has no such field.
    using lookup = std::function<std::optional<field_value>(std::string_view field)>;

    // An empty text matches everything. Errors say where and why ("expected a value at 12").
    static boost::system::result<conditions, std::string> parse(std::string_view text);

    bool matches(const lookup& record) const;

    // Every field named, lower-cased (so callers can refuse unknown ones up front).
    const std::vector<std::string>& fields() const noexcept { return fields_; }

    struct literal {
        enum class kind { string, number, boolean, null, date } type = kind::null;
        std::string text;  // string contents, number text, date text
        std::int64_t number = 0;
        bool boolean = false;
    };
    enum class op { eq, ne, lt, le, gt, ge, contains, like, in };
    struct node {
        enum class kind { all, and_, or_, not_, compare } type = kind::all;
        std::size_t left = 0;   // and_/or_/not_: child indexes into nodes_
        std::size_t right = 0;
        std::string field;      // compare
        op oper = op::eq;
        bool negated = false;   // "not contains", "not like", "not in"
        std::vector<literal> values;  // one, or the list of `in`
    };

private:
    bool eval(std::size_t n, const lookup& record) const;

    std::vector<node> nodes_;  // the root is the last one
    std::vector<std::string> fields_;
};

// Case-insensitive wildcard match: '*' and '%' stand for any run of characters.
bool like_match(std::string_view text, std::string_view pattern);

} // namespace cwhook::emulator
