// The ingest pipeline for one delivery: parse -> key_url policy -> key -> signature ->
// persist (group commit) -> answer. Answers follow Manage's retry rules: anything we cannot
// take right now is a 429 with Retry-After (Manage retries 429, never 5xx).
// Thread-safe: handle() runs concurrently on the server's threads.
#pragma once

#include "callback/key_cache.hpp"
#include "callback/key_url.hpp"
#include "callback/settings.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"
#include "store/event_store.hpp"

#include <atomic>
#include <mutex>
#include <set>

namespace cwhook::callback {

// Shared by ingest (which creates pending rows) and the re-verifier (which resolves them).
struct pending_tracker {
    std::atomic<std::int64_t> count{0};
};

class ingest {
public:
    ingest(const verify_settings& cfg, const key_url_policy& policy, key_cache& keys, store::event_store& store,
           pending_tracker& pending, metrics::registry& metrics);

    boost::asio::awaitable<http::response> handle(http::request& req);

    // Records a request the server refused before routing (413).
    void record_rejection(http::request& req, unsigned status, std::string_view reason, std::string_view detail);

private:
    struct verdict;
    boost::asio::awaitable<verdict> verify(const std::string& body, std::string_view signature_header,
                                           const std::string& key_url);
    // A warning at most every 10 s while storage refuses events (the counter counts each).
    void warn_busy(std::string_view why);
    void count_by_type(std::string_view type, std::string_view action, store::event_status status);
    http::response reject(http::request& req, unsigned status, std::string_view reason, std::string_view detail,
                          std::string_view key_url = {});

    const verify_settings& cfg_;
    const key_url_policy& policy_;
    key_cache& keys_;
    store::event_store& store_;
    pending_tracker& pending_;
    metrics::registry& metrics_;
    metrics::counter& stored_;
    metrics::counter& duplicates_;
    metrics::counter& busy_;
    metrics::counter* by_status_[4];  // indexed by store::event_status
    std::atomic<std::int64_t> last_busy_warning_ms_{-100'000};
    std::mutex label_mutex_;
    std::set<std::string, std::less<>> label_types_;  // type label values in use
};

// Shared with the re-verifier: decide a stored body's fate with the key cache.
struct verify_outcome {
    store::event_status status = store::event_status::failed;
    std::string reason;  // "" when verified
};
boost::asio::awaitable<verify_outcome> verify_body(key_cache& keys, const key_target& target, const std::string& url,
                                                   const std::string& body, const crypto::digest256& signature);

} // namespace cwhook::callback
