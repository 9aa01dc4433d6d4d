#include "forward/schedule.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cmath>

namespace cwhook::forward {

retry_decision after_failure(const retry_schedule& s, std::size_t tries_done, double jitter, double unit,
                             std::optional<std::chrono::milliseconds> retry_after,
                             std::chrono::milliseconds max_retry_after)
{
    // after_failure is only asked after an attempt was made.
    CWHOOK_CHECK(tries_done >= 1);
    if (tries_done >= s.size()) {
        return {true, std::chrono::milliseconds(0)};
    }
    // Clamped so that a bad jitter or random number can never make a negative delay.
    jitter = std::clamp(std::isnan(jitter) ? 0.0 : jitter, 0.0, 1.0);
    unit = std::clamp(std::isnan(unit) ? 0.0 : unit, 0.0, 1.0);
    const double factor = 1.0 - jitter + 2.0 * jitter * unit;
    const auto scheduled = std::max(s[tries_done], std::chrono::milliseconds(0));
    auto delay = std::chrono::milliseconds(
        static_cast<std::chrono::milliseconds::rep>(std::llround(static_cast<double>(scheduled.count()) * factor)));
    // A server that says when to come back is believed when it asks for more patience than the
    // schedule has (up to the bound, so that a hostile or broken answer cannot park a delivery for
    // days); asking for less does not make the schedule more aggressive.
    if (retry_after && *retry_after > delay) {
        delay = std::max(delay, std::min(*retry_after, max_retry_after));
    }
    return {false, delay};
}

std::chrono::milliseconds first_delay(const retry_schedule& s)
{
    return s.empty() ? std::chrono::milliseconds(0) : std::max(s.front(), std::chrono::milliseconds(0));
}

} // namespace cwhook::forward
