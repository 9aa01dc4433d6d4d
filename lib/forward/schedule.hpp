// When a failed delivery is tried again: the destination's retry schedule with jitter, and a
// Retry-After that asks for a longer wait. The random number is passed in, so every decision
// is reproducible in tests. Pure functions, thread-safe.
#pragma once

#include "forward/settings.hpp"

#include <chrono>
#include <cstddef>
#include <optional>

namespace cwhook::forward {

struct retry_decision {
    bool dead = false;                  // no attempt is left: the delivery becomes a dead letter
    std::chrono::milliseconds delay{0}; // otherwise: wait this long after the failure, then try again
};

// After the failure of attempt number tries_done (1-based; attempts made in this round):
// dead once every attempt of the schedule is used (tries_done >= s.size()). Otherwise the
// schedule's next delay s[tries_done], scaled by 1 - jitter + 2 * jitter * unit (unit uniform in
// [0, 1), jitter clamped to [0, 1]). A retry_after longer than that delay replaces it, clamped to
// max_retry_after; a shorter one, or a bound below the schedule's delay, never shortens it.
retry_decision after_failure(const retry_schedule& s, std::size_t tries_done, double jitter, double unit,
                             std::optional<std::chrono::milliseconds> retry_after,
                             std::chrono::milliseconds max_retry_after);

// The wait before the first attempt of a round: s[0] as configured, without jitter (0 for an
// empty schedule, which then means one attempt and no retry). Jitter spreads retries that
// failed together; first attempts are already spread by when events arrive, and a configured
// first delay is a deliberate hold that should be exactly as long as the operator asked.
std::chrono::milliseconds first_delay(const retry_schedule& s);

} // namespace cwhook::forward
