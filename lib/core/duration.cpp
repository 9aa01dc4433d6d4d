#include "core/duration.hpp"

#include <cstdint>
#include <limits>

namespace cwhook {

result<millis> parse_duration(std::string_view text)
{
    if (text == "0") {
        return millis{0};
    }
    if (text.empty()) {
        return errc::invalid_argument;
    }
    std::int64_t total = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        std::int64_t n = 0;
        const std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            if (n > std::numeric_limits<std::int64_t>::max() / 10 - 10) {
                return errc::invalid_argument;
            }
            n = n * 10 + (text[i] - '0');
            ++i;
        }
        if (i == start) {
            return errc::invalid_argument;
        }
        const std::size_t ustart = i;
        while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') {
            ++i;
        }
        const auto unit = text.substr(ustart, i - ustart);
        std::int64_t scale = 0;
        if (unit == "ms") {
            scale = 1;
        } else if (unit == "s") {
            scale = 1000;
        } else if (unit == "m") {
            scale = 60'000;
        } else if (unit == "h") {
            scale = 3'600'000;
        } else if (unit == "d") {
            scale = 86'400'000;
        } else if (unit == "w") {
            scale = 7 * 86'400'000LL;
        } else {
            return errc::invalid_argument;
        }
        if (n > (std::numeric_limits<std::int64_t>::max() - total) / scale) {
            return errc::invalid_argument;
        }
        total += n * scale;
    }
    return millis{total};
}

std::string format_duration(millis d)
{
    std::int64_t ms = d.count();
    if (ms == 0) {
        return "0s";
    }
    std::string out;
    if (ms < 0) {
        out.push_back('-');
        ms = -ms;
    }
    struct unit {
        std::int64_t scale;
        const char* name;
    };
    static constexpr unit units[] = {
        {7 * 86'400'000LL, "w"}, {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
    for (const auto& u : units) {
        if (ms >= u.scale) {
            out += std::to_string(ms / u.scale);
            out += u.name;
            ms %= u.scale;
        }
    }
    return out;
}

} // namespace cwhook
