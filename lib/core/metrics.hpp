// Metrics registry: named counters and gauges with a fixed label set, created on first use
// and never removed, so callers may keep references. One registry per application instance
// (tests run several side by side). Thread-safe: lookups take a mutex, updates are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace cwhook::metrics {

class counter {
public:
    void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

class gauge {
public:
    void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> v_{0};
};

class registry {
public:
    // labels is the Prometheus label text without braces, e.g. `reason="bad_signature"`.
    counter& get_counter(std::string_view name, std::string_view labels = {});
    gauge& get_gauge(std::string_view name, std::string_view labels = {});

    // Current value, 0 when never created. For tests and status output.
    std::uint64_t counter_value(std::string_view name, std::string_view labels = {}) const;
    std::int64_t gauge_value(std::string_view name, std::string_view labels = {}) const;

    // Prometheus text exposition of everything registered.
    std::string render() const;

private:
    static std::string key(std::string_view name, std::string_view labels);

    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<counter>, std::less<>> counters_;
    std::map<std::string, std::unique_ptr<gauge>, std::less<>> gauges_;
};

} // namespace cwhook::metrics
