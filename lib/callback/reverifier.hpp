// Background re-verification of `pending` events (stored while their key server was
// unreachable): loads due rows from the store, verifies them through the key cache, and
// moves each to verified or failed, or reschedules it with exponential backoff. Rows older
// than pending_max_age become failed. Every minute it re-reads the pending and failed counts
// from the store (other processes change them). Runs as one coroutine on the application's
// executor.
#pragma once

#include "callback/key_url.hpp"
#include "callback/verifier.hpp"
#include "core/live_value.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace cwhook::callback {

class reverifier {
public:
    // Time as the loop sees it; tests inject a clock whose sleep advances it.
    struct timing {
        std::function<std::int64_t()> now_us;  // wall clock in microseconds since the epoch, as rows store it
        std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> sleep;
    };

    // timing left empty: system_clock and a steady_timer on `ex` (which stop() cancels).
    reverifier(boost::asio::any_io_executor ex, const live_value<verify_settings>& cfg, const key_url_policy& policy,
               key_cache& keys, store::event_store& store, status_counts& counts, metrics::registry& metrics,
               timing t = {});
    ~reverifier();

    void start();
    void stop();  // the loop ends at its next wake-up; safe from any thread

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::callback
