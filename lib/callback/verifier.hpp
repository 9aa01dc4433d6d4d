// Deciding whether a body is genuine, shared by ingest, the background re-verifier and the
// operators' re-check: the key through the cache (with one fresh fetch after a mismatch
// against a cached key), then the signature. Also the counts of unsettled rows that bound
// what forgeries can make cwhook store. Thread-safe.
#pragma once

#include "callback/key_cache.hpp"
#include "callback/refusal.hpp"
#include "crypto/digest.hpp"
#include "store/event_store.hpp"

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::callback {

// Rows that are not settled as genuine: pending (awaiting a key server) and failed
// (quarantined: kept whole, never treated as verified). Ingest adds, the re-verifier and the
// store's upgrades take away; the re-verifier re-reads both from the store now and then, so
// changes made by other processes (cwhook events import/prune) do not drift for ever.
struct status_counts {
    std::atomic<std::int64_t> pending{0};
    std::atomic<std::int64_t> failed{0};
};

struct key_verdict {
    enum class kind {
        verified,       // the signature matches the key
        bad_signature,  // it does not match a key fetched after the delivery arrived
        no_key,         // the key server answered without a usable key
        transient,      // the key server could not be reached or failed (try later)
        busy,           // no key fetch possible before the deadline (answer 429)
        refused,        // key_url or signature header refused before any fetch (re-checks only)
    };
    kind what = kind::bad_signature;
    // The refusal a delivery with this verdict earns: bad_signature, key_unavailable,
    // key_redirect, key_fetch_busy or a key_url refusal. None for verified and transient.
    std::optional<refusal> why;

    // As stored in verify_reason: "" (verified), transient_reason, else why's code.
    std::string_view reason() const noexcept;
};

// The verify_reason of a row stored pending because the key server could not be reached.
inline constexpr std::string_view transient_reason = "key_fetch_failed";

// arrived: when the delivery came in (cache clock). A mismatch against a key fetched before
// then is never a verdict: a fresh key is fetched (or awaited) first, within the deadline.
boost::asio::awaitable<key_verdict> check_signature(key_cache& keys, const key_target& target, const std::string& body,
                                                    const crypto::digest256& signature,
                                                    key_cache::clock::time_point arrived,
                                                    key_cache::clock::time_point deadline);

// The verdict on a stored row (re-verification of pending rows, operators' re-checks):
// the policy first, as the allowlist or the companies may have changed since it was stored,
// then the key. A mismatch is definitive only against a key fetched after the row was
// received. `wait` bounds the time spent waiting for a fetch.
boost::asio::awaitable<key_verdict> recheck(key_cache& keys, const key_url_policy& policy,
                                            const store::pending_event& row, std::chrono::milliseconds wait);

} // namespace cwhook::callback
