#include "core/text.hpp"

#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>

#include <algorithm>

namespace cwhook {

std::string lower_ascii(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    return out;
}

std::string_view trim(std::string_view s) noexcept
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::optional<std::uint16_t> parse_port(std::string_view text) noexcept
{
    const auto p = parse_integer<unsigned>(text);
    if (!p || *p == 0 || *p > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(*p);
}

std::optional<std::int64_t> parse_id(std::string_view text) noexcept
{
    const auto n = parse_integer<std::int64_t>(text);
    if (!n || *n < 1) {
        return std::nullopt;
    }
    return n;
}

std::optional<std::string> percent_decode(std::string_view text)
{
    if (text.empty()) {
        return std::string();
    }
    auto s = boost::urls::make_pct_string_view(boost::urls::string_view(text.data(), text.size()));
    if (!s) {
        return std::nullopt;
    }
    return s->decode();
}

std::optional<query_params> parse_query(std::string_view query)
{
    // A copy: Boost.URL 1.81's parse_query reads past the end of a view that is not the end
    // of its string (the last value runs on to a '#'), and takes an empty view's null data()
    // for a C string.
    const std::string copy(query);
    auto parsed = boost::urls::parse_query(copy);
    if (!parsed) {
        return std::nullopt;
    }
    query_params out;
    boost::urls::encoding_opts form;
    form.space_as_plus = true;
    for (const auto& p : *parsed) {
        if (p.key.empty() && !p.has_value) {
            continue;  // "a=1&&b=2", a trailing '&'
        }
        out.emplace_back(p.key.decode(form), p.has_value ? p.value.decode(form) : std::string());
    }
    return out;
}

std::string aligned(const std::vector<std::vector<std::string>>& rows)
{
    std::vector<std::size_t> width;
    for (const auto& r : rows) {
        width.resize(std::max(width.size(), r.size()), 0);
        for (std::size_t i = 0; i < r.size(); ++i) {
            width[i] = std::max(width[i], r[i].size());
        }
    }
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size()) {
                line.append(width[i] - r[i].size() + 2, ' ');
            }
        }
        while (!line.empty() && line.back() == ' ') {
            line.pop_back();
        }
        out += line;
        out += '\n';
    }
    return out;
}

} // namespace cwhook
