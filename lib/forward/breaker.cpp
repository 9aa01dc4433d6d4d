#include "forward/breaker.hpp"

namespace cwhook::forward {

circuit_breaker::circuit_breaker(std::size_t threshold, std::chrono::milliseconds probe_interval)
    : threshold_(threshold), probe_interval_(probe_interval)
{
}

bool circuit_breaker::allow(time_point now)
{
    if (!open_) {
        return true;
    }
    // One probe at a time: a destination that is down would otherwise get a burst of them
    // whenever the interval passes with several deliveries due.
    if (probing_ || now < next_probe_) {
        return false;
    }
    probing_ = true;
    return true;
}

void circuit_breaker::success()
{
    failures_ = 0;
    open_ = false;
    probing_ = false;
}

void circuit_breaker::failure(time_point now)
{
    ++failures_;
    if (open_) {
        // A failure that arrives while no probe is out comes from a request sent before the
        // circuit opened: stale news, which must not push the next probe further away.
        if (probing_) {
            probing_ = false;
            next_probe_ = now + probe_interval_;
        }
        return;
    }
    if (threshold_ != 0 && failures_ >= threshold_) {
        open_ = true;
        probing_ = false;
        next_probe_ = now + probe_interval_;
    }
}

} // namespace cwhook::forward
