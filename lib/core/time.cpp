#include "core/time.hpp"

#include "core/duration.hpp"

#include <fmt/format.h>

#include <chrono>
#include <limits>

namespace cwhook {

namespace {

constexpr std::int64_t us_per_second = 1'000'000;
constexpr std::int64_t us_per_day = 86'400 * us_per_second;

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
    std::int64_t y;
    unsigned m;
    unsigned d;
};

civil civil_from_days(std::int64_t z)
{
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

bool days_in_month_ok(std::int64_t y, unsigned m, unsigned d)
{
    static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1) {
        return false;
    }
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

// Reads exactly n digits at text[pos].
bool digits(std::string_view text, std::size_t pos, std::size_t n, unsigned& out)
{
    if (pos + n > text.size()) {
        return false;
    }
    unsigned v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        v = v * 10 + static_cast<unsigned>(text[i] - '0');
    }
    out = v;
    return true;
}

result<std::int64_t> parse_rfc3339(std::string_view t)
{
    unsigned y = 0;
    unsigned mo = 0;
    unsigned d = 0;
    if (!digits(t, 0, 4, y) || t.size() < 10 || t[4] != '-' || !digits(t, 5, 2, mo) || t[7] != '-' ||
        !digits(t, 8, 2, d)) {
        return errc::invalid_argument;
    }
    if (y < 1970 || !days_in_month_ok(y, mo, d)) {
        return errc::invalid_argument;
    }
    std::int64_t us = days_from_civil(y, mo, d) * us_per_day;
    if (t.size() == 10) {
        return us;
    }
    if (t[10] != 'T' && t[10] != 't' && t[10] != ' ') {
        return errc::invalid_argument;
    }
    unsigned h = 0;
    unsigned mi = 0;
    unsigned s = 0;
    if (!digits(t, 11, 2, h) || t.size() < 19 || t[13] != ':' || !digits(t, 14, 2, mi) || t[16] != ':' ||
        !digits(t, 17, 2, s) || h > 23 || mi > 59 || s > 60) {
        return errc::invalid_argument;
    }
    us += (static_cast<std::int64_t>(h) * 3600 + static_cast<std::int64_t>(mi) * 60 + s) * us_per_second;
    std::size_t pos = 19;
    if (pos < t.size() && t[pos] == '.') {
        ++pos;
        std::int64_t frac = 0;
        std::int64_t scale = 100'000;
        const std::size_t start = pos;
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
            frac += (t[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start) {
            return errc::invalid_argument;
        }
        us += frac;
    }
    const auto zone = t.substr(pos);
    if (zone == "Z" || zone == "z") {
        return us;
    }
    unsigned oh = 0;
    unsigned om = 0;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || !digits(zone, 1, 2, oh) || zone[3] != ':' ||
        !digits(zone, 4, 2, om) || oh > 23 || om > 59) {
        return errc::invalid_argument;
    }
    const std::int64_t offset = (static_cast<std::int64_t>(oh) * 3600 + static_cast<std::int64_t>(om) * 60) * us_per_second;
    return zone[0] == '+' ? us - offset : us + offset;
}

} // namespace

std::int64_t now_us()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

result<std::int64_t> parse_time(std::string_view text, std::int64_t now)
{
    if (text.size() >= 10 && text[4] == '-') {
        return parse_rfc3339(text);
    }
    auto d = parse_duration(text);
    if (!d) {
        return errc::invalid_argument;
    }
    constexpr std::int64_t max_ms = std::numeric_limits<std::int64_t>::max() / 1000;
    if (d->count() > max_ms) {
        return errc::invalid_argument;
    }
    return now - d->count() * 1000;
}

std::string format_time(std::int64_t us, time_precision p)
{
    std::int64_t days = us / us_per_day;
    std::int64_t rest = us % us_per_day;
    if (rest < 0) {
        rest += us_per_day;
        --days;
    }
    const auto c = civil_from_days(days);
    const std::int64_t secs = rest / us_per_second;
    const std::int64_t frac = rest % us_per_second;
    auto out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.y, c.m, c.d, secs / 3600, secs / 60 % 60, secs % 60);
    switch (p) {
    case time_precision::seconds: break;
    case time_precision::millis: out += fmt::format(".{:03}", frac / 1000); break;
    case time_precision::micros: out += fmt::format(".{:06}", frac); break;
    }
    out += 'Z';
    return out;
}

} // namespace cwhook
