// The request rate limit of one destination: a token bucket holding max(1, rate) tokens,
// refilled at `rate` per second and full at the start. take() reserves the next token and says
// how long to wait for it, so a caller sleeps that long and sends without asking again. Time is
// passed in (never read here).
// Not thread-safe: a destination's bucket is used on that destination's strand only.
#pragma once

#include <chrono>

namespace cwhook::forward {

class token_bucket {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // rate: tokens per second; 0 (or less) = unlimited. Rates above 1e9/s act as 1e9/s and
    // rates below one a day as one a day (the bucket counts in whole nanoseconds).
    explicit token_bucket(double rate);

    // 0 when a token was free and is now taken; otherwise how long after `now` the token that
    // this call reserved becomes available. Each reservation is one token: callers that wait
    // queue up one interval apart. Always 0 when unlimited.
    std::chrono::nanoseconds take(time_point now);

    bool unlimited() const noexcept { return interval_.count() == 0; }

private:
    // Generic cell rate algorithm, the exact equivalent of a token bucket: one token every
    // interval_, and a request may run ahead of the steady pace by at most capacity_ (burst
    // tokens' worth of time). tat_ is when the bucket would be full again.
    std::chrono::nanoseconds interval_{0};
    std::chrono::nanoseconds capacity_{0};
    time_point tat_{};
};

} // namespace cwhook::forward
