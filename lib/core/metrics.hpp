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
#include <vector>

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

// Cumulative buckets with fixed upper bounds (Prometheus histogram). observe() is lock-free.
class histogram {
public:
    explicit histogram(std::vector<double> bounds);
    void observe(double v) noexcept;
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
    double sum() const noexcept;
    const std::vector<double>& bounds() const noexcept { return bounds_; }
    // Observations <= bounds()[i] (cumulative); i == bounds().size() is +Inf.
    std::uint64_t cumulative(std::size_t i) const noexcept;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_nano_{0};  // sum in 1e-9 units (seconds -> ns, sizes exact)
};

// Bucket sets used by cwhook: latencies in seconds, and batch sizes.
std::vector<double> latency_buckets();
std::vector<double> size_buckets();

class registry {
public:
    // labels is the Prometheus label text without braces, e.g. `reason="bad_signature"`.
    counter& get_counter(std::string_view name, std::string_view labels = {});
    gauge& get_gauge(std::string_view name, std::string_view labels = {});
    // The bounds are used when the histogram is created; later calls return it as it is.
    histogram& get_histogram(std::string_view name, std::string_view labels, std::vector<double> bounds);

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
    std::map<std::string, std::unique_ptr<histogram>, std::less<>> histograms_;
};

} // namespace cwhook::metrics
