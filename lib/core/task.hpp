// Supervision of long-running background coroutines (accept loops, the re-verifier, the
// subscription check, retention). A loop spawned with net::detached dies silently when it
// throws; spawn_supervised() logs the exception, counts cwhook_task_failures_total{task}, and
// then either restarts the loop after a backoff (counted in cwhook_task_restarts_total{task})
// or calls the policy's stop callback, for loops the process cannot run without.
// Thread-safe: spawn_supervised() may be called from any thread; restarts run on `ex`.
#pragma once

#include "core/metrics.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace cwhook::task {

enum class on_failure {
    restart, // log, count, wait the backoff, run the loop again
    stop,    // log, count, call policy::stop
};

struct policy {
    on_failure action = on_failure::restart;
    std::chrono::milliseconds backoff{1000};       // before the first restart; doubles per failure in a row
    std::chrono::milliseconds max_backoff{60'000}; // cap; a run that lasted this long resets the doubling
    // on_failure::stop: asks the process to stop, with "<task> failed: <exception text>".
    std::function<void(const std::string& why)> stop;
    metrics::registry* metrics = nullptr; // where failures and restarts are counted (may be null)
};

// Makes a fresh run of the loop: called for the first run and for every restart.
using factory = std::function<boost::asio::awaitable<void>()>;

// Runs make() on `ex` under `p`. A run that returns normally ends the supervision (loops
// return when they are stopped).
void spawn_supervised(const boost::asio::any_io_executor& ex, std::string name, factory make, policy p);

// The wait before restart number `in_row` (0-based) of a task that keeps failing:
// min(backoff * 2^in_row, max_backoff).
std::chrono::milliseconds restart_delay(const policy& p, unsigned in_row);

} // namespace cwhook::task
