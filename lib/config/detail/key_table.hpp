// The key table: what one configuration key is (section, name, kind, secret flag, how to set
// it from a value and read it back) and factories for the kinds of keys the settings use.
// One table drives the file, the environment, unknown-key detection, render() and what a
// reload does with a changed value, so a key is listed once. Plain data and pure functions; thread-safe once built.
#pragma once

#include "config/config.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace cwhook::config::detail {

// The TOML shapes a key accepts. Durations and choices are strings; a number is a float or
// an integer (jitter = 0 means 0.0).
enum class kind { string, integer, string_list, boolean, number };

// A value as given; the alternative index equals the kind's value.
using value = std::variant<std::string, std::int64_t, std::vector<std::string>, bool, double>;

// `v` in the shape `wanted`, or nullopt when it has another: an integer is also a number.
inline std::optional<value> as_kind(kind wanted, const std::optional<value>& v)
{
    if (!v) {
        return std::nullopt;
    }
    if (v->index() == static_cast<std::size_t>(wanted)) {
        return v;
    }
    if (const auto* n = std::get_if<std::int64_t>(&*v); n != nullptr && wanted == kind::number) {
        return value{static_cast<double>(*n)};
    }
    return std::nullopt;
}

inline std::string_view expected_text(kind k)
{
    switch (k) {
    case kind::string: return "expected a string";
    case kind::integer: return "expected an integer";
    case kind::string_list: return "expected an array of strings";
    case kind::boolean: return "expected true or false";
    case kind::number: return "expected a number";
    }
    return "expected a string";
}

// A TOML basic string: the spelling render() writes and error messages quote values with,
// so a value with quotes or control characters still prints as one unambiguous line.
inline std::string quote(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('"');
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
            if (u < 0x20 || u == 0x7f) {
                out += fmt::format("\\u{:04X}", u);
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
    return out;
}

inline std::string toml_literal(const value& v)
{
    if (const auto* s = std::get_if<std::string>(&v)) {
        return quote(*s);
    }
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
        return std::to_string(*n);
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        return *b ? "true" : "false";
    }
    if (const auto* d = std::get_if<double>(&v)) {
        // The shortest spelling that reads back as the same double ("0.2", "50", "1e+20").
        return fmt::format("{}", *d);
    }
    std::string out = "[";
    for (const auto& item : std::get<std::vector<std::string>>(v)) {
        if (out.size() > 1) {
            out += ", ";
        }
        out += quote(item);
    }
    out += "]";
    return out;
}

// Why a value was refused. `shown` is the offending value as printed ("" when the reason
// says it all); the loader replaces it with <redacted> for secret keys.
struct refusal {
    std::string shown;
    std::string why;
};
using verdict = std::optional<refusal>;

// Checks one string (a whole string value or one array element); returns why it is refused.
using string_check = std::function<std::optional<std::string>(std::string_view)>;
// Checks a whole array; returns the complete reason (the value is not repeated).
using list_check = std::function<std::optional<std::string>(const std::vector<std::string>&)>;

template <class S>
struct key {
    std::string_view section;
    std::string_view name;
    kind type = kind::string;
    bool secret = false;  // may be given as <name>_file; render() redacts it
    // Called with the alternative `type` names only (the loader checks the shape first).
    std::function<verdict(S&, const value&)> set;
    std::function<value(const S&)> get;  // as render() writes it
    std::function<bool(const S&, const S&)> same;   // the two settings hold the same value
    std::function<void(S& to, const S& from)> copy; // takes `from`'s value, unchecked
    reload_effect effect = reload_effect::unclassified;

    // Row marks for the table: what a reload does when the value changed.
    key live() &&
    {
        effect = reload_effect::live;
        return std::move(*this);
    }
    key needs_restart() &&
    {
        effect = reload_effect::restart;
        return std::move(*this);
    }
};

// Factories. `field` is a generic lambda projecting the settings onto the member, used for
// both writing and reading: [](auto& s) -> auto& { return s.app.server.listen; }.
template <class S>
struct make_key {
    template <class F>
    static key<S> string(std::string_view section, std::string_view name, F field, string_check check = {})
    {
        return string_like(section, name, std::move(field), std::move(check), true);
    }

    // A file name: like string(), but errors print it bare, as the operator typed it in a shell.
    template <class F>
    static key<S> path(std::string_view section, std::string_view name, F field, string_check check = {})
    {
        return string_like(section, name, std::move(field), std::move(check), false);
    }

    template <class F>
    static key<S> secret(std::string_view section, std::string_view name, F field, string_check check = {})
    {
        auto k = string(section, name, std::move(field), std::move(check));
        k.secret = true;
        return k;
    }

    template <class F>
    static key<S> list(std::string_view section, std::string_view name, F field, string_check each = {},
                       list_check whole = {})
    {
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::string_list;
        k.set = [field, each = std::move(each), whole = std::move(whole)](S& s, const value& v) -> verdict {
            const auto& items = std::get<std::vector<std::string>>(v);
            if (each) {
                for (const auto& item : items) {
                    if (auto why = each(item)) {
                        return refusal{quote(item), std::move(*why)};
                    }
                }
            }
            if (whole) {
                if (auto why = whole(items)) {
                    return refusal{"", std::move(*why)};
                }
            }
            field(s) = items;
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value { return field(s); };
        project(k, field);
        return k;
    }

    // An integer in [min, max] (max is also capped by the member's type).
    template <class F>
    static key<S> count(std::string_view section, std::string_view name, F field, std::int64_t min,
                        std::int64_t max = std::numeric_limits<std::int64_t>::max())
    {
        using member = std::remove_cvref_t<decltype(field(std::declval<S&>()))>;
        if constexpr (static_cast<std::uint64_t>(std::numeric_limits<member>::max()) <
                      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            max = std::min<std::int64_t>(max, static_cast<std::int64_t>(std::numeric_limits<member>::max()));
        }
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::integer;
        k.set = [field, min, max](S& s, const value& v) -> verdict {
            const auto n = std::get<std::int64_t>(v);
            if (n < min) {
                if (min == 1) {
                    return refusal{std::to_string(n), "must be positive"};
                }
                if (min == 0) {
                    return refusal{std::to_string(n), "must not be negative"};
                }
                return refusal{std::to_string(n), fmt::format("must be at least {}", min)};
            }
            if (n > max) {
                return refusal{std::to_string(n), fmt::format("must be at most {}", max)};
            }
            field(s) = static_cast<member>(n);
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value { return static_cast<std::int64_t>(field(s)); };
        project(k, field);
        return k;
    }

    // true / false.
    template <class F>
    static key<S> flag(std::string_view section, std::string_view name, F field)
    {
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::boolean;
        k.set = [field](S& s, const value& v) -> verdict {
            field(s) = std::get<bool>(v);
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value { return static_cast<bool>(field(s)); };
        project(k, field);
        return k;
    }

    // A finite number (a TOML float or integer) in [min, max].
    template <class F>
    static key<S> number(std::string_view section, std::string_view name, F field, double min,
                         double max = std::numeric_limits<double>::max())
    {
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::number;
        k.set = [field, min, max](S& s, const value& v) -> verdict {
            const auto n = std::get<double>(v);
            const auto shown = toml_literal(v);
            // NaN compares false both ways: test finiteness before the bounds.
            if (!std::isfinite(n)) {
                return refusal{shown, "expected a finite number"};
            }
            if (n < min) {
                return refusal{shown, min == 0 ? std::string("must not be negative")
                                               : fmt::format("must be at least {}", min)};
            }
            if (n > max) {
                return refusal{shown, fmt::format("must be at most {}", max)};
            }
            field(s) = n;
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value { return static_cast<double>(field(s)); };
        project(k, field);
        return k;
    }

    // A duration string ("500ms", "3s", "1h30m") in [min, max].
    template <class F>
    static key<S> duration(std::string_view section, std::string_view name, F field, millis min = millis{0},
                           millis max = millis::max())
    {
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::string;
        k.set = [field, min, max](S& s, const value& v) -> verdict {
            auto d = duration_in(std::get<std::string>(v), min, max);
            if (auto* why = std::get_if<refusal>(&d)) {
                return std::move(*why);
            }
            field(s) = std::get<millis>(d);
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value { return format_duration(field(s)); };
        project(k, field);
        return k;
    }

    // An array of duration strings, each in [min, max], with min_items to max_items entries
    // (a retry schedule: ["0", "5s", "5m"]).
    template <class F>
    static key<S> durations(std::string_view section, std::string_view name, F field, std::size_t min_items,
                            std::size_t max_items, millis min = millis{0}, millis max = millis::max())
    {
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::string_list;
        k.set = [field, min_items, max_items, min, max](S& s, const value& v) -> verdict {
            const auto& items = std::get<std::vector<std::string>>(v);
            std::vector<millis> out;
            out.reserve(items.size());
            for (const auto& item : items) {
                auto d = duration_in(item, min, max);
                if (auto* why = std::get_if<refusal>(&d)) {
                    return std::move(*why);
                }
                out.push_back(std::get<millis>(d));
            }
            if (out.size() < min_items) {
                return refusal{"", min_items == 1 ? std::string("must not be empty")
                                                  : fmt::format("needs at least {} entries", min_items)};
            }
            if (out.size() > max_items) {
                return refusal{"", fmt::format("has {} entries; at most {} are allowed", out.size(), max_items)};
            }
            field(s) = std::move(out);
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value {
            std::vector<std::string> out;
            for (const auto d : field(s)) {
                out.push_back(format_duration(d));
            }
            return out;
        };
        project(k, field);
        return k;
    }

    // One of a fixed set of words, each naming an enumerator.
    template <class F, class E>
    static key<S> choice(std::string_view section, std::string_view name, F field,
                         std::vector<std::pair<std::string_view, E>> choices)
    {
        std::string expected = "expected ";
        for (std::size_t i = 0; i < choices.size(); ++i) {
            if (i > 0) {
                expected += i + 1 == choices.size() ? " or " : ", ";
            }
            expected += choices[i].first;
        }
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::string;
        k.set = [field, choices, expected](S& s, const value& v) -> verdict {
            const auto& text = std::get<std::string>(v);
            for (const auto& [word, e] : choices) {
                if (word == text) {
                    field(s) = e;
                    return std::nullopt;
                }
            }
            return refusal{quote(text), expected};
        };
        k.get = [field, choices](const S& s) -> value {
            for (const auto& [word, e] : choices) {
                if (e == field(s)) {
                    return std::string(word);
                }
            }
            CWHOOK_CHECK(!"enumerator missing from its choice table");
            return std::string();
        };
        project(k, field);
        return k;
    }

private:
    // The duration `text` spells when it lies in [min, max]; why not otherwise.
    static std::variant<millis, refusal> duration_in(const std::string& text, millis min, millis max)
    {
        const auto d = parse_duration(text);
        if (!d) {
            return refusal{quote(text), "expected a duration like 500ms, 3s, 1h"};
        }
        if (*d < min) {
            return refusal{quote(text), min == millis{1} ? std::string("must be positive")
                                                         : "must be at least " + format_duration(min)};
        }
        if (*d > max) {
            return refusal{quote(text), "must be at most " + format_duration(max)};
        }
        return *d;
    }

    // Comparing and copying go through the member itself, not its rendering.
    template <class F>
    static void project(key<S>& k, F field)
    {
        k.same = [field](const S& a, const S& b) { return field(a) == field(b); };
        k.copy = [field](S& to, const S& from) { field(to) = field(from); };
    }

    template <class F>
    static key<S> string_like(std::string_view section, std::string_view name, F field, string_check check, bool quoted)
    {
        key<S> k;
        k.section = section;
        k.name = name;
        k.type = kind::string;
        k.set = [field, check = std::move(check), quoted](S& s, const value& v) -> verdict {
            const auto& text = std::get<std::string>(v);
            if (check) {
                if (auto why = check(text)) {
                    return refusal{quoted ? quote(text) : text, std::move(*why)};
                }
            }
            field(s) = text;
            return std::nullopt;
        };
        k.get = [field](const S& s) -> value { return field(s); };
        project(k, field);
        return k;
    }
};

} // namespace cwhook::config::detail
