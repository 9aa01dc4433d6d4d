// Small text helpers every module uses: ASCII case, trimming, whole-string integers, ports and
// ids, form-encoded query strings, percent-decoding and aligned tables. One home for each, so a
// parsing rule is fixed in one place. Pure functions, thread-safe.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cwhook {

// ASCII lower case; other bytes unchanged.
std::string lower_ascii(std::string_view s);

// Without leading and trailing spaces and tabs (HTTP's optional white space).
std::string_view trim(std::string_view s) noexcept;

// The whole text as a base-10 integer of type Int; nullopt for "", a sign where Int has
// none, trailing bytes or overflow.
template <class Int>
std::optional<Int> parse_integer(std::string_view text) noexcept
{
    Int n{};
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, n);
    if (text.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return n;
}

// A TCP port, 1 to 65535.
std::optional<std::uint16_t> parse_port(std::string_view text) noexcept;

// A database id: a positive integer.
std::optional<std::int64_t> parse_id(std::string_view text) noexcept;

// "%41b" -> "Ab"; nullopt on a malformed escape. '+' stays '+' (a path, not a form).
std::optional<std::string> percent_decode(std::string_view text);

// An application/x-www-form-urlencoded query ("a=1&b=x+y"), decoded, in order; empty parts
// are skipped, a part without '=' has an empty value. nullopt on a malformed escape.
using query_params = std::vector<std::pair<std::string, std::string>>;
std::optional<query_params> parse_query(std::string_view query);

// Rows as text columns, each padded to its widest cell plus two spaces, no trailing spaces,
// one line a row. Rows may have different lengths.
std::string aligned(const std::vector<std::vector<std::string>>& rows);

} // namespace cwhook
