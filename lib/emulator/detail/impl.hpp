// The emulator's shared state and the entry points of its three parts: the Manage API
// (api.cpp), deliveries (delivery.cpp) and lifecycle/control (emulator.cpp).
// Everything runs on the emulator's single io thread except the public members, which take
// `mutex` for the state below it.
#pragma once

#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "emulator/emulator.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "json/value.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

namespace cwhook::emulator {

inline constexpr std::size_t route_count = static_cast<std::size_t>(route::other) + 1;
inline constexpr std::size_t recent_limit = 256;

struct emulator::impl {
    explicit impl(settings s);

    settings cfg;
    std::string product_instance_id;  // 24 hex, fixed per instance
    std::string partner_id;

    // Set by start(), immutable until stop().
    std::string host;
    std::uint16_t port = 0;
    std::filesystem::path dir;
    bool owns_dir = false;
    std::string cert_file;
    std::unique_ptr<boost::asio::io_context> ioc;
    std::thread thread;
    metrics::registry registry;
    std::unique_ptr<http::server> server;
    std::unique_ptr<client::https_client> outbound;  // deliveries
    bool running = false;

    std::array<std::atomic<std::uint64_t>, route_count> counters{};

    mutable std::mutex mutex;  // guards everything below
    std::string codebase;
    std::map<std::int64_t, callback_entry> entries;
    std::int64_t next_id = 1;
    std::string key_id;
    std::string key;
    std::vector<fault> faults;
    std::deque<seen_request> recent;
    // type (lower case) -> id -> record (a JSON object), for the REST collections.
    std::map<std::string, std::map<std::int64_t, json::value>, std::less<>> records;

    std::string scheme() const { return cfg.tls ? "https" : "http"; }
    std::string base_url() const;
    std::string key_url_locked() const;
    std::string api_prefix_locked() const;  // "/v2025_1/apis/3.0"
    std::string key_path_locked() const;    // "/v2025_1//system/callbackkey/index.rails"
    void new_key_locked();
    std::int64_t insert_locked(callback_entry e);
    void persist_locked() const;
    std::chrono::system_clock::time_point now() const
    {
        return cfg.clock ? cfg.clock() : std::chrono::system_clock::now();
    }
    // Applies a trigger to its record (records.cpp); returns the Entity to deliver: the record's
    // JSON, "" for deleted (null), or t.entity as given for an unknown type or action.
    std::string apply_trigger_locked(const trigger_request& t);
    void count(route r) { counters[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
};

// The router's one handler: every path and method comes here.
boost::asio::awaitable<http::response> handle_request(emulator::impl* im, http::request& req);

// /_emulator/... (loopback peers only).
boost::asio::awaitable<http::response> handle_control(emulator::impl* im, http::request& req);

// Fires a trigger at every matching active subscription, in parallel; completes when each
// delivery succeeded or gave up.
boost::asio::awaitable<std::vector<delivery_result>> run_trigger(emulator::impl* im, const trigger_request& t);

// {"callback_id":..,"url":..,"attempts":..,"status":..,"delivered":..,"disabled":..,"error":..}
std::string delivery_json(const delivery_result& r);

// The value of `name` (case-insensitive) in a raw query, decoded; nullopt when absent or when
// the query is malformed.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

} // namespace cwhook::emulator
