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

#include <memory>

namespace cwhook::callback {

class reverifier {
public:
    reverifier(boost::asio::any_io_executor ex, const live_value<verify_settings>& cfg, const key_url_policy& policy,
               key_cache& keys, store::event_store& store, status_counts& counts, metrics::registry& metrics);
    ~reverifier();

    void start();
    void stop();  // the loop ends at its next wake-up; safe from any thread

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::callback
