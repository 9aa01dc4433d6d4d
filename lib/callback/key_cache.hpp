// Signing-key cache keyed by the full key_url: TTL for keys, a short negative TTL for
// failures, single flight (concurrent lookups of one uncached URL share one fetch), and a
// bounded number of entries. Only SHA-256(signing key) is kept.
// Thread-safe: get() may run on many threads at once; no lock is held across a co_await.
#pragma once

#include "callback/key_url.hpp"
#include "callback/settings.hpp"
#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "crypto/signature.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace cwhook::callback {

struct key_lookup {
    // errc::key_fetch_failed (transient: try later) or key_unavailable / redirect_refused /
    // response_too_large / private_address (definitive) on failure.
    result<crypto::key_digest> key;
    bool from_cache = false;
};

// True when a failed lookup is worth retrying later (store the event as pending).
bool is_transient(const boost::system::error_code& ec);

class key_cache {
public:
    key_cache(client::https_client& client, const verify_settings& cfg, metrics::registry& metrics);
    ~key_cache();

    // refresh: the cached key did not verify; fetch again unless it is younger than
    // key_refetch_interval (which keeps forged deliveries from hammering the key server).
    boost::asio::awaitable<key_lookup> get(const key_target& target, const std::string& url, bool refresh);

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace cwhook::callback
