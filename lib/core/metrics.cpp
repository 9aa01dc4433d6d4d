#include "core/metrics.hpp"

#include <fmt/format.h>

namespace cwhook::metrics {

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
    std::string out;
    std::lock_guard lock(mutex_);
    std::string last;
    for (const auto& [k, c] : counters_) {
        const auto name = k.substr(0, k.find('{'));
        if (name != last) {
            fmt::format_to(std::back_inserter(out), "# TYPE {} counter\n", name);
            last = name;
        }
        fmt::format_to(std::back_inserter(out), "{} {}\n", k, c->value());
    }
    for (const auto& [k, g] : gauges_) {
        const auto name = k.substr(0, k.find('{'));
        if (name != last) {
            fmt::format_to(std::back_inserter(out), "# TYPE {} gauge\n", name);
            last = name;
        }
        fmt::format_to(std::back_inserter(out), "{} {}\n", k, g->value());
    }
    return out;
}

} // namespace cwhook::metrics
