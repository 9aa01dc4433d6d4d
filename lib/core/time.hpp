// Points in time for the command line and the admin API: RFC 3339 text or a duration back from
// now ("2h", "7d"), all as integer microseconds since the Unix epoch (UTC), the unit the
// database stores. Pure functions, thread-safe.
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook {

// Microseconds since the epoch, from the system clock.
std::int64_t now_us();

// "2026-11-28T04:05:06Z", "2026-11-28T04:05:06.123+01:00", "2026-11-28 04:05:06Z",
// "2026-11-28" (midnight UTC), or a duration ("90m", "2h", "7d", "1h30m") meaning that long
// before now_us. invalid_argument otherwise (and for dates out of 1970..9999).
result<std::int64_t> parse_time(std::string_view text, std::int64_t now_us);

// "2026-11-28T04:05:06.123456Z"; with millis_only, "2026-11-28T04:05:06.123Z"; with
// seconds_only, "2026-11-28T04:05:06Z".
enum class time_precision { seconds, millis, micros };
std::string format_time(std::int64_t us, time_precision p = time_precision::micros);

} // namespace cwhook
