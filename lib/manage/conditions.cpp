#include "manage/conditions.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

namespace cwhook::manage {

namespace {

std::string_view op_text(op o)
{
    switch (o) {
    case op::eq: return "=";
    case op::ne: return "!=";
    case op::lt: return "<";
    case op::le: return "<=";
    case op::gt: return ">";
    case op::ge: return ">=";
    case op::contains: return "contains";
    case op::like: return "like";
    case op::not_contains: return "not contains";
    case op::not_like: return "not like";
    }
    return "=";
}

// Field names are ours (code, not input): letters, digits, '_' and '/' for references.
bool valid_field(std::string_view f)
{
    if (f.empty()) {
        return false;
    }
    for (const char c : f) {
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '/';
        if (!ok) {
            return false;
        }
    }
    return true;
}

} // namespace

std::string quote_string(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('"');
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::string format_date(std::chrono::sys_seconds t)
{
    // Calendar arithmetic in UTC, independent of the process's time zone.
    using namespace std::chrono;
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> time{t - day};
    return fmt::format("[{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z]", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), time.hours().count(),
                       time.minutes().count(), time.seconds().count());
}

std::string format_value(const condition_value& v)
{
    if (const auto* s = std::get_if<std::string>(&v)) {
        return quote_string(*s);
    }
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
        return std::to_string(*n);
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        return *b ? "true" : "false";
    }
    return format_date(std::get<date_time>(v).at);
}

std::string url_encode(std::string_view s)
{
    static constexpr char hexdigits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() * 3);
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(hexdigits[u >> 4]);
            out.push_back(hexdigits[u & 0xF]);
        }
    }
    return out;
}

conditions& conditions::add(std::string_view joiner, std::string_view field, std::string_view op_text,
                            const std::string& value)
{
    CWHOOK_CHECK(valid_field(field));
    if (!text_.empty()) {
        text_ += fmt::format(" {} ", joiner);
    }
    text_ += fmt::format("{} {} {}", field, op_text, value);
    return *this;
}

conditions& conditions::where(std::string_view field, op o, const condition_value& v)
{
    return add("and", field, op_text(o), format_value(v));
}

conditions& conditions::or_where(std::string_view field, op o, const condition_value& v)
{
    return add("or", field, op_text(o), format_value(v));
}

conditions& conditions::where_in(std::string_view field, const std::vector<condition_value>& values)
{
    std::string list = "(";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            list += ", ";
        }
        list += format_value(values[i]);
    }
    list += ")";
    return add("and", field, "in", list);
}

std::string conditions::encoded() const
{
    return url_encode(text_);
}

} // namespace cwhook::manage
