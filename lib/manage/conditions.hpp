// Builder for Manage's `conditions` query parameter (manage-api-guide "Conditions"):
// strings in double quotes with \" and \\ escaped, dates in [2016-08-20T18:04:26Z],
// integers and booleans bare, comparisons joined by `and` / `or`; encoded() is the text
// percent-encoded for a query string. Field names come from code and are checked.
// A value type; not synchronized.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cwhook::manage {

struct date_time {
    std::chrono::sys_seconds at;
};

using condition_value = std::variant<std::string, std::int64_t, bool, date_time>;

enum class op { eq, ne, lt, le, gt, ge, contains, like, not_contains, not_like };

class conditions {
public:
    // Joined to what is there with `and` (or_where: `or`). Pass strings as std::string.
    conditions& where(std::string_view field, op o, const condition_value& v);
    conditions& or_where(std::string_view field, op o, const condition_value& v);
    // field in (a, b, ...)
    conditions& where_in(std::string_view field, const std::vector<condition_value>& values);

    bool empty() const noexcept { return text_.empty(); }
    const std::string& text() const noexcept { return text_; } // as Manage reads it
    std::string encoded() const;                               // for ?conditions=

private:
    conditions& add(std::string_view joiner, std::string_view field, std::string_view op_text,
                    const std::string& value);
    std::string text_;
};

// "a \"b\"" for a"b -> "a \"b\""; the Manage string literal of s.
std::string quote_string(std::string_view s);
// [2016-08-20T18:04:26Z]
std::string format_date(std::chrono::sys_seconds t);
std::string format_value(const condition_value& v);
// RFC 3986: unreserved characters kept, every other byte %XX (space is %20, never '+').
std::string url_encode(std::string_view s);

} // namespace cwhook::manage
