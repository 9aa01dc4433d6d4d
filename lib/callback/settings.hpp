// Settings of the callback application: [verify], [admin] and the whole application's
// (app_settings, which the configuration fills). Plain data.
#pragma once

#include "catchup/settings.hpp"
#include "forward/settings.hpp"
#include "http/settings.hpp"
#include "manage/settings.hpp"
#include "store/settings.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace cwhook::callback {

enum class verify_mode { enforce, report, off };

struct verify_settings {
    verify_mode mode = verify_mode::enforce;
    std::vector<std::string> allowed_key_hosts{};  // "host" or "host:port", added to the cloud hosts
    // Manage company ids whose keys are trusted (key_url's companyName, without case); the
    // application adds manage.company_id. Empty: every delivery is refused.
    std::vector<std::string> companies{};
    std::chrono::milliseconds key_cache_ttl{3'600'000};
    std::chrono::milliseconds key_fetch_timeout{3'000};
    std::chrono::milliseconds key_failure_ttl{5'000};        // negative cache after a failed fetch
    std::chrono::milliseconds key_refetch_interval{1'000};  // min time between two fetches of one key
    std::chrono::milliseconds answer_deadline{4'000};       // longest wait for a key before 429
    std::size_t key_fetch_rate = 5;                         // fetches per second per key host (token bucket)
    std::size_t key_fetch_concurrency = 4;                  // fetches in flight per key host
    std::size_t key_max_bytes = std::size_t{16} * 1024;
    std::size_t key_cache_entries = 10'000;
    std::string ca_file;
    std::size_t max_pending = 10'000;                        // pending rows; beyond: 429
    std::size_t max_failed = 10'000;                         // quarantined (failed) rows; beyond: 401
    std::chrono::milliseconds pending_retry_min{1'000};      // re-verification backoff
    std::chrono::milliseconds pending_retry_max{300'000};
    std::chrono::milliseconds pending_max_age{259'200'000};  // 3 days: then the row is marked failed
};

// The [admin] section: the operators' HTTP API on its own listener.
struct admin_settings {
    std::string listen = "127.0.0.1:9090";  // "host:port"; "" = no admin listener
    // Bearer token every request must send. "": one is generated at first start into
    // admin_token_file(storage.path) and reused afterwards.
    std::string token;
    // Host header names accepted besides the listener's own address (and, on loopback,
    // localhost / 127.0.0.1 / [::1]): "name" (any port) or "name:port".
    std::vector<std::string> hosts{};
    // Origin header values accepted ("https://admin.example.com"); a request carrying any
    // other Origin is refused, one without Origin is not.
    std::vector<std::string> origins{};
    // Where POST /api/events/replay may send: "host" (the URL scheme's default port) or
    // "host:port". Empty: replays through the API are refused (the CLI is not limited).
    std::vector<std::string> replay_targets{};
    // How long a web console session lasts from its login (fixed, not sliding).
    std::chrono::milliseconds session_lifetime{std::chrono::hours(8)};
};

struct app_settings {
    http::settings server;
    std::string callback_path = "/callbacks";
    verify_settings verify;
    store::settings storage;
    admin_settings admin;
    manage::settings manage;
    std::vector<manage::subscription> subscriptions;  // [[subscriptions]]
    forward::settings forward;
    std::vector<forward::destination> destinations; // [[destinations]]
    catchup::settings catch_up;
};

// The Manage company ids whose callbacks are accepted: verify.companies and manage.company_id.
std::vector<std::string> trusted_companies(const app_settings& s);

} // namespace cwhook::callback
