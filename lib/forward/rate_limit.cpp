#include "forward/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace cwhook::forward {

namespace {

constexpr double ns_per_second = 1e9;
constexpr double max_interval_ns = 86'400 * ns_per_second;

} // namespace

token_bucket::token_bucket(double rate)
{
    if (!(rate > 0)) { // also NaN
        return;
    }
    const double ns = std::clamp(ns_per_second / rate, 1.0, max_interval_ns);
    interval_ = std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(std::llround(ns)));
    // burst = max(1, rate) tokens: one second's worth, or one token when that is less than one.
    capacity_ = std::max(interval_, std::chrono::nanoseconds(std::chrono::seconds(1)));
}

std::chrono::nanoseconds token_bucket::take(time_point now)
{
    if (unlimited()) {
        return std::chrono::nanoseconds(0);
    }
    // The token taken now is the one due at tat_ (or now, when the bucket has been idle): taking
    // it moves tat_ one interval on. It may be taken at once when that leaves tat_ within
    // capacity_ of now (a token was left in the bucket); otherwise the caller waits until it would be.
    const time_point next = std::max(tat_, now) + interval_;
    tat_ = next;
    const auto ahead = next - now;
    if (ahead <= capacity_) {
        return std::chrono::nanoseconds(0);
    }
    return std::chrono::duration_cast<std::chrono::nanoseconds>(ahead - capacity_);
}

} // namespace cwhook::forward
