// Readiness for /readyz without slowing ingest: the storage probe (take and release the write
// lock) goes through the store's writer queue, where each one ends a group-commit batch. This
// cache runs at most one probe at a time, hands its outcome to every request that asked
// meanwhile, and reuses it for `ttl`, so a load balancer probing hard costs one writer job per
// `ttl` however often it asks.
// Thread-safe: check() may be called from any thread; completions run on the thread that
// completes the probe (the store's writer) or, for a cached answer, on the caller's.
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

namespace cwhook::callback {

class readiness_cache {
public:
    using clock = std::chrono::steady_clock;
    using done_fn = std::function<void(result<void>)>;
    // Starts one probe; returns false when it cannot be queued (done is then never called).
    using probe_fn = std::function<bool(done_fn done)>;

    explicit readiness_cache(probe_fn probe, std::chrono::milliseconds ttl = std::chrono::seconds(1),
                             std::function<clock::time_point()> now = clock::now);

    // Calls `done` exactly once with the readiness: a cached outcome younger than ttl, else
    // the outcome of the probe in flight (started here when none is). A probe that could not
    // be queued answers storage_queue_full and is not cached.
    void check(done_fn done);

    // Probes started so far.
    std::uint64_t probes() const;

private:
    void finished(result<void> r);

    probe_fn probe_;
    std::chrono::milliseconds ttl_;
    std::function<clock::time_point()> now_;

    mutable std::mutex mutex_;
    std::optional<result<void>> cached_; // guarded by mutex_
    clock::time_point cached_at_{};      // guarded by mutex_
    bool in_flight_ = false;             // guarded by mutex_
    std::vector<done_fn> waiting_;       // guarded by mutex_
    std::uint64_t probes_ = 0;           // guarded by mutex_
};

} // namespace cwhook::callback
