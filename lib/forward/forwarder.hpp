// The forwarder: hands every forwardable event on to the configured destinations. One lane
// per destination, a coroutine on the forwarder's strand, claims due deliveries from the
// store's outbox (with a lease, so several instances never send the same delivery at once),
// sends each as a Standard Webhooks signed POST, and reports the result back to the outbox:
// done on a 2xx; otherwise the next attempt on the retry schedule (Retry-After honoured
// within bounds) or, after the last, a dead letter. A 410 pauses the destination ("gone").
// Consecutive failures open the destination's circuit: then one probe per interval, not
// every due delivery. At most `concurrency` requests per destination are in flight and at
// most `rate` start per second, so a slow destination never slows ingest or the others.
// Delivery is at least once: a crash between the request and its recorded result sends it
// again after the lease; consumers dedupe on webhook-id.
// Thread-safety: configure(), wake() and stop() may be called from any thread; everything
// else runs on the strand.
#pragma once

#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "forward/settings.hpp"
#include "store/event_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cwhook::forward {

class forwarder {
public:
    // Time as the lanes see it; tests inject a clock whose sleep advances it, so a retry
    // schedule of hours runs in milliseconds.
    struct timing {
        std::function<std::int64_t()> now_us; // wall clock, microseconds since the epoch (what rows store)
        std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> sleep;
        std::function<double()> random; // uniform in [0, 1), for jitter
    };

    // Empty timing members: the system clock, a steady_timer on the strand (which wake() and
    // stop() cut short) and a seeded generator. client must outlive the forwarder.
    forwarder(boost::asio::any_io_executor ex, store::event_store& store, client::https_client& client,
              metrics::registry& metrics, timing t = {});
    ~forwarder();
    forwarder(const forwarder&) = delete;
    forwarder& operator=(const forwarder&) = delete;

    // Makes `destinations` the ones forwarded to (at start, and at each reload): the store's
    // destination table is synced first (the undelivered rows of a removed destination become
    // cancelled, never dropped); then lanes start for new destinations, take the new settings
    // for changed ones and end for removed ones (their requests in flight finish). Blocks
    // until the store has applied it; the error names the cause. Secrets must be valid
    // (the configuration checked them).
    boost::system::result<void, std::string> configure(const settings& s, const std::vector<destination>& destinations);

    void start();
    // New deliveries may be due (this process committed forwardable events). Cheap; any thread.
    void wake();
    // Claimed deliveries whose request is about to start, under way, or whose result is not
    // yet handed to the store (not those waiting for their rate turn). Also what a test clock waits for before it moves
    // time on.
    std::size_t requests_in_flight() const noexcept;

    // Lanes stop claiming; requests in flight are not awaited (their leases run out and
    // another sender takes them). Idempotent.
    void stop();

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::forward
