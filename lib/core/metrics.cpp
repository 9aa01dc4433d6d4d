#include "core/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace cwhook::metrics {

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1])
{
    std::sort(bounds_.begin(), bounds_.end());
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        buckets_[i].store(0, std::memory_order_relaxed);
    }
}

void histogram::observe(double v) noexcept
{
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
    buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    if (v > 0) {
        sum_nano_.fetch_add(static_cast<std::uint64_t>(std::llround(v * 1e9)), std::memory_order_relaxed);
    }
}

double histogram::sum() const noexcept
{
    return static_cast<double>(sum_nano_.load(std::memory_order_relaxed)) / 1e9;
}

std::uint64_t histogram::cumulative(std::size_t i) const noexcept
{
    std::uint64_t n = 0;
    for (std::size_t b = 0; b <= i && b <= bounds_.size(); ++b) {
        n += buckets_[b].load(std::memory_order_relaxed);
    }
    return n;
}

std::vector<double> latency_buckets()
{
    return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> size_buckets()
{
    return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
}

std::string registry::key(std::string_view name, std::string_view labels)
{
    std::string k(name);
    if (!labels.empty()) {
        k.push_back('{');
        k.append(labels);
        k.push_back('}');
    }
    return k;
}

counter& registry::get_counter(std::string_view name, std::string_view labels)
{
    const auto k = key(name, labels);
    std::lock_guard lock(mutex_);
    auto it = counters_.find(k);
    if (it == counters_.end()) {
        it = counters_.emplace(k, std::make_unique<counter>()).first;
    }
    return *it->second;
}

gauge& registry::get_gauge(std::string_view name, std::string_view labels)
{
    const auto k = key(name, labels);
    std::lock_guard lock(mutex_);
    auto it = gauges_.find(k);
    if (it == gauges_.end()) {
        it = gauges_.emplace(k, std::make_unique<gauge>()).first;
    }
    return *it->second;
}

histogram& registry::get_histogram(std::string_view name, std::string_view labels, std::vector<double> bounds)
{
    const auto k = key(name, labels);
    std::lock_guard lock(mutex_);
    auto it = histograms_.find(k);
    if (it == histograms_.end()) {
        it = histograms_.emplace(k, std::make_unique<histogram>(std::move(bounds))).first;
    }
    return *it->second;
}

std::uint64_t registry::counter_value(std::string_view name, std::string_view labels) const
{
    const auto k = key(name, labels);
    std::lock_guard lock(mutex_);
    const auto it = counters_.find(k);
    return it == counters_.end() ? 0 : it->second->value();
}

std::int64_t registry::gauge_value(std::string_view name, std::string_view labels) const
{
    const auto k = key(name, labels);
    std::lock_guard lock(mutex_);
    const auto it = gauges_.find(k);
    return it == gauges_.end() ? 0 : it->second->value();
}

std::string registry::render() const
{
    // Keys sort as "name{labels}", and '_' sorts before '{', so samples of one family can be
    // interleaved with another family's: regroup by name so each family gets one TYPE line.
    std::map<std::string, std::vector<std::string>> counter_families;
    std::map<std::string, std::vector<std::string>> gauge_families;
    std::map<std::string, std::vector<std::string>> histogram_families;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [k, c] : counters_) {
            counter_families[k.substr(0, k.find('{'))].push_back(fmt::format("{} {}\n", k, c->value()));
        }
        for (const auto& [k, g] : gauges_) {
            gauge_families[k.substr(0, k.find('{'))].push_back(fmt::format("{} {}\n", k, g->value()));
        }
        for (const auto& [k, h] : histograms_) {
            const auto brace = k.find('{');
            const std::string name = k.substr(0, brace);
            // Existing labels go before "le": name{a="b",le="0.1"}.
            const std::string labels = brace == std::string::npos ? "" : k.substr(brace + 1, k.size() - brace - 2) + ",";
            std::string text;
            const auto& b = h->bounds();
            for (std::size_t i = 0; i <= b.size(); ++i) {
                const auto le = i < b.size() ? fmt::format("{}", b[i]) : std::string("+Inf");
                fmt::format_to(std::back_inserter(text), "{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, le, h->cumulative(i));
            }
            const auto suffix = brace == std::string::npos ? std::string() : k.substr(brace);
            fmt::format_to(std::back_inserter(text), "{}_sum{} {}\n{}_count{} {}\n", name, suffix, h->sum(), name, suffix,
                           h->count());
            histogram_families[name].push_back(std::move(text));
        }
    }
    std::string out;
    auto emit = [&out](const auto& families, std::string_view type) {
        for (const auto& [name, samples] : families) {
            fmt::format_to(std::back_inserter(out), "# TYPE {} {}\n", name, type);
            for (const auto& s : samples) {
                out += s;
            }
        }
    };
    emit(counter_families, "counter");
    emit(gauge_families, "gauge");
    emit(histogram_families, "histogram");
    return out;
}

} // namespace cwhook::metrics
