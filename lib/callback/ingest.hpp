// The ingest pipeline for one delivery: parse -> key_url policy (host, key endpoint, company)
// -> payload company -> key -> signature -> persist (group commit) -> answer. Answers follow
// Manage's retry rules: anything we cannot take right now is a 429 with Retry-After (Manage
// retries 429, never 5xx), and a genuine delivery is never refused for trouble on the key
// side: it is stored pending (key server unreachable) or quarantined as failed (the key server
// answered without a usable key), both kept whole and never treated as verified.
// Thread-safe: handle() runs concurrently on the server's threads.
#pragma once

#include "callback/key_cache.hpp"
#include "callback/key_url.hpp"
#include "callback/refusal.hpp"
#include "callback/settings.hpp"
#include "callback/verifier.hpp"
#include "core/live_value.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"
#include "store/event_store.hpp"

#include <atomic>
#include <mutex>
#include <set>

namespace cwhook::callback {

class ingest {
public:
    // cfg: read once per request, so a reload applies from the next delivery on.
    ingest(const live_value<verify_settings>& cfg, const key_url_policy& policy, key_cache& keys, store::event_store& store,
           status_counts& counts, metrics::registry& metrics);

    boost::asio::awaitable<http::response> handle(http::request& req);

    // Records a request the server refused before routing (413).
    void record_rejection(http::request& req, refusal why, std::string_view detail);

private:
    struct verdict;
    boost::asio::awaitable<verdict> verify(const verify_settings& cfg, const std::string& body,
                                           std::string_view signature_header, const std::string& key_url,
                                           const std::optional<std::string>& company_id);
    // A warning at most every 10 s while storage refuses events (the counter counts each).
    void warn_busy(std::string_view why);
    void count_by_type(std::string_view type, std::string_view action, store::event_status status);
    http::response reject(http::request& req, refusal why, std::string_view detail, std::string_view key_url = {});
    http::response defer(http::request& req, refusal why, std::string_view detail);
    // The answer for a delivery the store took (counted and logged).
    http::response answer(http::request& req, const store::insert_outcome& o, const verdict& v, std::string_view type,
                          std::string_view action, verify_mode mode);

    const live_value<verify_settings>& cfg_;
    const key_url_policy& policy_;
    key_cache& keys_;
    store::event_store& store_;
    status_counts& counts_;
    metrics::registry& metrics_;
    metrics::counter& stored_;
    metrics::counter& duplicates_;
    metrics::counter& upgraded_;
    metrics::counter& busy_;
    metrics::counter* by_status_[4];  // indexed by store::event_status
    std::atomic<std::int64_t> last_busy_warning_ms_{-100'000};
    std::mutex label_mutex_;
    std::set<std::string, std::less<>> label_types_;  // type label values in use
};

} // namespace cwhook::callback
