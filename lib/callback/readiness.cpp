#include "callback/readiness.hpp"

#include <utility>

namespace cwhook::callback {

readiness_cache::readiness_cache(probe_fn probe, std::chrono::milliseconds ttl, std::function<clock::time_point()> now)
    : probe_(std::move(probe)), ttl_(ttl), now_(std::move(now))
{
}

void readiness_cache::check(done_fn done)
{
    {
        std::unique_lock lock(mutex_);
        if (cached_ && now_() - cached_at_ < ttl_) {
            const result<void> r = *cached_;
            lock.unlock();
            done(r);
            return;
        }
        waiting_.push_back(std::move(done));
        if (in_flight_) {
            return; // the probe in flight answers this one too
        }
        in_flight_ = true;
        ++probes_;
    }
    // Outside the lock: the store may complete the probe on its thread before submit returns.
    // A failed outcome is cached too: a probe against a locked database holds the writer for
    // up to storage.busy_timeout, the last thing to repeat for every request.
    if (!probe_([this](result<void> r) { finished(r); })) {
        std::vector<done_fn> waiters;
        {
            std::lock_guard lock(mutex_);
            in_flight_ = false;
            waiters.swap(waiting_);
        }
        for (auto& w : waiters) {
            w(make_error_code(errc::storage_queue_full));
        }
    }
}

void readiness_cache::finished(result<void> r)
{
    std::vector<done_fn> waiters;
    {
        std::lock_guard lock(mutex_);
        cached_ = r;
        cached_at_ = now_();
        in_flight_ = false;
        waiters.swap(waiting_);
    }
    for (auto& w : waiters) {
        w(r);
    }
}

std::uint64_t readiness_cache::probes() const
{
    std::lock_guard lock(mutex_);
    return probes_;
}

} // namespace cwhook::callback
