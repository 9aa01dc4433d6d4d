// Signing-key cache keyed by (host, company, id) of the key_url (key_target::cache_key()).
// Only SHA-256(signing key) is kept.
//   - TTL for keys, a short negative TTL for failures, least-recently-used eviction beyond
//     key_cache_entries, so a flood of invented ids cannot push out the keys in use.
//   - Single flight: concurrent lookups of one key share one fetch.
//   - Fresh keys: after a signature mismatch, get_fresh() wants a key whose fetch started no
//     earlier than the delivery arrived. Such a fetch happens at most once per key per
//     key_refetch_interval; a caller inside the interval waits for the next one. A failed
//     refresh keeps the last good key until its TTL ends.
//   - A fetch budget per key host: key_fetch_concurrency in flight and key_fetch_rate per
//     second (token bucket, a burst of one second's worth). A caller that cannot get a fetch
//     before its deadline gets errc::key_fetch_busy (the delivery is answered 429).
// Thread-safe: lookups may run on many threads at once; no lock is held across a co_await.
#pragma once

#include "callback/key_url.hpp"
#include "callback/settings.hpp"
#include "client/https_client.hpp"
#include "core/live_value.hpp"
#include "core/metrics.hpp"
#include "crypto/signature.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace cwhook::callback {

// What to do when no key could be had.
enum class key_failure {
    transient,  // key_fetch_failed: the key server may answer later (store the event pending)
    no_key,     // the key server answered without a usable key (quarantine the event)
    busy,       // key_fetch_busy: no fetch possible before the deadline (answer 429)
};
key_failure classify(const boost::system::error_code& ec);

class key_cache {
public:
    using clock = std::chrono::steady_clock;
    // Fetches and digests the key of a target. Failures: errc::key_fetch_failed (transient),
    // key_unavailable or redirect_refused (definitive).
    using fetch_fn = std::function<boost::asio::awaitable<result<crypto::key_digest>>(const key_target&)>;

    // Time as the cache sees it; tests inject a clock whose sleep advances it.
    struct timing {
        std::function<clock::time_point()> now;
        std::function<boost::asio::awaitable<void>(clock::duration)> sleep;
    };

    struct lookup {
        result<crypto::key_digest> key;
        clock::time_point fetched_at{};  // when the fetch that brought the key (or failure) started
        bool from_cache = false;
    };

    // timing left empty: steady_clock and steady_timers on `ex`.
    key_cache(boost::asio::any_io_executor ex, fetch_fn fetch, const verify_settings& cfg, metrics::registry& metrics,
              timing t = {});
    ~key_cache();

    // The fetcher for real key servers: GET over verified HTTPS through `client`, bounded by
    // key_fetch_timeout and key_max_bytes, no redirects; logs without the query (the id names
    // the key).
    static fetch_fn https_fetcher(client::https_client& client, const verify_settings& cfg,
                                  metrics::registry& metrics);
    // The same, reading key_fetch_timeout and key_max_bytes from `cfg` at each fetch (a
    // configuration reload replaces them). `cfg` must outlive the fetcher.
    static fetch_fn https_fetcher(client::https_client& client, const live_value<verify_settings>& cfg,
                                  metrics::registry& metrics);

    // Configuration reload: TTLs, the refetch interval, the fetch budget and the entry bound
    // apply from the next lookup on (entries and budgets already made keep their state; a
    // smaller bound is reached as new entries evict old ones). The fetcher is not changed.
    void set_settings(const verify_settings& cfg);

    // The cached key, or one fetched now (or a cached failure).
    boost::asio::awaitable<lookup> get(const key_target& target, clock::time_point deadline);

    // A key whose fetch started at or after `since` (or that fetch's failure).
    boost::asio::awaitable<lookup> get_fresh(const key_target& target, clock::time_point since,
                                             clock::time_point deadline);

    clock::time_point now() const;
    std::size_t size() const;

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::callback
