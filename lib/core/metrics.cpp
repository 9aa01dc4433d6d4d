#include "core/metrics.hpp"

#include <fmt/format.h>

#include <vector>

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
    // Keys sort as "name{labels}", and '_' sorts before '{', so samples of one family can be
    // interleaved with another family's: regroup by name so each family gets one TYPE line.
    std::map<std::string, std::vector<std::string>> counter_families;
    std::map<std::string, std::vector<std::string>> gauge_families;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [k, c] : counters_) {
            counter_families[k.substr(0, k.find('{'))].push_back(fmt::format("{} {}\n", k, c->value()));
        }
        for (const auto& [k, g] : gauges_) {
            gauge_families[k.substr(0, k.find('{'))].push_back(fmt::format("{} {}\n", k, g->value()));
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
    return out;
}

} // namespace cwhook::metrics
