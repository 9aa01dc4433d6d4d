// The circuit breaker of one destination: after `threshold` consecutive failures nothing is sent
// to it but one probe per probe interval, until a probe succeeds. Time is passed in (never read
// here), so tests drive it without sleeping.
// Not thread-safe: a destination's breaker is used on that destination's strand only.
#pragma once

#include <chrono>
#include <cstddef>

namespace cwhook::forward {

class circuit_breaker {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // threshold 0: never opens (failures are still counted).
    circuit_breaker(std::size_t threshold, std::chrono::milliseconds probe_interval);

    // May a request be sent now? Closed: always. Open: once per probe interval (counted from the
    // opening or from the last failed probe); the request allowed then is the probe, and until
    // its outcome is reported (success() or failure()) nothing else is allowed.
    bool allow(time_point now);

    // A request got the answer that counts as delivered: closes the circuit, resets the count.
    // Also closes it when the request was sent before the circuit opened: the destination works.
    void success();

    // A request failed (no answer, or one that counts as a failure). Counts consecutive failures
    // and opens the circuit at the threshold. While the circuit is open and a probe is out, a
    // failure ends the probe: the circuit stays open for a fresh interval from now. (A request
    // sent before the circuit opened that fails while the probe is out cannot be told from the
    // probe; the only effect is that the next probe comes one interval later.)
    void failure(time_point now);

    // The probe allow() granted was not sent (nothing was due): the next allow() may grant it.
    void release() noexcept { probing_ = false; }
    bool open() const noexcept { return open_; }
    std::size_t consecutive_failures() const noexcept { return failures_; }

private:
    std::size_t threshold_;
    std::chrono::milliseconds probe_interval_;
    std::size_t failures_ = 0;
    bool open_ = false;
    bool probing_ = false;    // the probe allowed by allow() has not reported yet
    time_point next_probe_{}; // while open and not probing: when allow() lets the probe through
};

} // namespace cwhook::forward
