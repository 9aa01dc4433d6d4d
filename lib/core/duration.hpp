// Human durations for configuration and the command line: "500ms", "3s", "1h30m", "7d".
// Pure functions, thread-safe.
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace cwhook {

using millis = std::chrono::milliseconds;

// Units: ms, s, m, h, d, w; components may be chained ("1h30m"). A bare "0" is zero.
result<millis> parse_duration(std::string_view text);

// Shortest exact spelling: 3600000ms -> "1h", 1500ms -> "1s500ms".
std::string format_duration(millis d);

} // namespace cwhook
