#include "manage/paging.hpp"

#include "core/text.hpp"
#include "manage/types.hpp"

namespace cwhook::manage {

namespace {

bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

} // namespace

std::vector<link> parse_link_header(std::string_view v)
{
    std::vector<link> out;
    std::size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && (is_space(v[i]) || v[i] == ',')) {
            ++i;
        }
        if (i >= v.size()) {
            break;
        }
        if (v[i] != '<') {
            // Not a link-value: skip to the next comma.
            while (i < v.size() && v[i] != ',') {
                ++i;
            }
            continue;
        }
        const auto close = v.find('>', i + 1);
        if (close == std::string_view::npos) {
            break;
        }
        link l;
        l.url = std::string(v.substr(i + 1, close - i - 1));
        i = close + 1;
        // Parameters: ; name=value or ; name="quoted, value" up to the next comma outside quotes.
        while (i < v.size() && v[i] != ',') {
            if (v[i] != ';') {
                ++i;
                continue;
            }
            ++i;
            const auto eq = v.find('=', i);
            const auto stop = v.find_first_of(",;", i);
            if (eq == std::string_view::npos || (stop != std::string_view::npos && stop < eq)) {
                i = stop == std::string_view::npos ? v.size() : stop;
                continue;
            }
            const auto name = lower_ascii(trim(v.substr(i, eq - i)));
            i = eq + 1;
            while (i < v.size() && is_space(v[i])) {
                ++i;
            }
            std::string value;
            if (i < v.size() && v[i] == '"') {
                ++i;
                while (i < v.size() && v[i] != '"') {
                    if (v[i] == '\\' && i + 1 < v.size()) {
                        ++i;
                    }
                    value.push_back(v[i]);
                    ++i;
                }
                if (i < v.size()) {
                    ++i; // closing quote
                }
            } else {
                const auto end = v.find_first_of(",;", i);
                value =
                    std::string(trim(v.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i)));
                i = end == std::string_view::npos ? v.size() : end;
            }
            if (name == "rel") {
                l.rel = value;
            }
        }
        out.push_back(std::move(l));
    }
    return out;
}

std::optional<std::string> find_link(std::string_view header, std::string_view rel)
{
    const auto wanted = lower_ascii(rel);
    for (const auto& l : parse_link_header(header)) {
        std::string_view rels = l.rel;
        while (!rels.empty()) {
            const auto sp = rels.find(' ');
            const auto one = rels.substr(0, sp);
            if (!one.empty() && lower_ascii(one) == wanted) {
                return l.url;
            }
            rels = sp == std::string_view::npos ? std::string_view{} : rels.substr(sp + 1);
        }
    }
    return std::nullopt;
}

std::optional<std::string> link_target(std::string_view url)
{
    if (url.starts_with('/') && !url.starts_with("//")) {
        return std::string(url);
    }
    const auto lower = lower_ascii(url.substr(0, 8));
    std::size_t skip = 0;
    if (lower.starts_with("https://")) {
        skip = 8;
    } else if (lower.starts_with("http://")) {
        skip = 7;
    } else {
        return std::nullopt;
    }
    const auto rest = url.substr(skip);
    const auto slash = rest.find_first_of("/?#");
    if (slash == std::string_view::npos || rest[slash] == '#') {
        return std::string("/");
    }
    auto target = std::string(rest.substr(slash));
    if (target.front() == '?') {
        target = "/" + target;  // not insert(): GCC 12 warns falsely (-Wrestrict) about it
    }
    if (const auto hash = target.find('#'); hash != std::string::npos) {
        target.resize(hash);
    }
    return target;
}

} // namespace cwhook::manage
