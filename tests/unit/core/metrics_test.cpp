#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace cwhook::metrics {
namespace {

std::size_t occurrences(std::string_view text, std::string_view what)
{
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string_view::npos; pos = text.find(what, pos + 1)) {
        ++n;
    }
    return n;
}

TEST(Counter, StartsAtZeroAndIncrements)
{
    registry r;
    auto& c = r.get_counter("cwhook_events_total");
    EXPECT_EQ(c.value(), 0U);
    c.inc();
    c.inc(4);
    EXPECT_EQ(c.value(), 5U);
    EXPECT_EQ(r.counter_value("cwhook_events_total"), 5U);
}

TEST(Counter, SameNameAndLabelsIsSameCounter)
{
    registry r;
    auto& a = r.get_counter("cwhook_rejections_total", R"(reason="bad_signature")");
    auto& b = r.get_counter("cwhook_rejections_total", R"(reason="bad_signature")");
    EXPECT_EQ(&a, &b);
}

TEST(Counter, DifferentLabelsAreDifferentCounters)
{
    registry r;
    r.get_counter("cwhook_rejections_total", R"(reason="bad_signature")").inc(2);
    r.get_counter("cwhook_rejections_total", R"(reason="missing_signature")").inc();
    r.get_counter("cwhook_rejections_total").inc(7);
    EXPECT_EQ(r.counter_value("cwhook_rejections_total", R"(reason="bad_signature")"), 2U);
    EXPECT_EQ(r.counter_value("cwhook_rejections_total", R"(reason="missing_signature")"), 1U);
    EXPECT_EQ(r.counter_value("cwhook_rejections_total"), 7U);
}

TEST(Counter, ReferenceStaysValidAsOthersAreCreated)
{
    registry r;
    auto& first = r.get_counter("cwhook_a_total");
    for (int i = 0; i < 200; ++i) {
        r.get_counter("cwhook_b_total", "n=\"" + std::to_string(i) + "\"").inc();
    }
    first.inc(3);
    EXPECT_EQ(r.counter_value("cwhook_a_total"), 3U);
}

TEST(Counter, ConcurrentIncrementsAreNotLost)
{
    registry r;
    constexpr int threads = 4;
    constexpr int per_thread = 10'000;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&r] {
            for (int i = 0; i < per_thread; ++i) {
                r.get_counter("cwhook_events_total").inc();
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    EXPECT_EQ(r.counter_value("cwhook_events_total"), static_cast<std::uint64_t>(threads * per_thread));
}

TEST(Registry, UnknownValuesReadZeroWithoutBeingCreated)
{
    registry r;
    EXPECT_EQ(r.counter_value("cwhook_nothing_total"), 0U);
    EXPECT_EQ(r.gauge_value("cwhook_nothing"), 0);
    EXPECT_EQ(r.render(), "");
}

TEST(Registry, InstancesAreIndependent)
{
    registry a;
    registry b;
    a.get_counter("cwhook_events_total").inc();
    EXPECT_EQ(a.counter_value("cwhook_events_total"), 1U);
    EXPECT_EQ(b.counter_value("cwhook_events_total"), 0U);
}

TEST(Gauge, SetAndAddIncludingNegative)
{
    registry r;
    auto& g = r.get_gauge("cwhook_open_connections");
    EXPECT_EQ(g.value(), 0);
    g.set(5);
    g.add(-7);
    EXPECT_EQ(r.gauge_value("cwhook_open_connections"), -2);
    g.add(3);
    EXPECT_EQ(g.value(), 1);
}

TEST(Registry, CounterAndGaugeNamespacesAreSeparate)
{
    registry r;
    r.get_counter("cwhook_x").inc(4);
    r.get_gauge("cwhook_x").set(9);
    EXPECT_EQ(r.counter_value("cwhook_x"), 4U);
    EXPECT_EQ(r.gauge_value("cwhook_x"), 9);
}

TEST(Render, WritesPrometheusTextExposition)
{
    registry r;
    r.get_counter("cwhook_events_total", R"(type="ticket")").inc(2);
    r.get_counter("cwhook_events_total", R"(type="company")").inc();
    r.get_counter("cwhook_duplicates_total");
    r.get_gauge("cwhook_open_connections").set(3);
    r.get_gauge("cwhook_pending_events").set(-1);
    EXPECT_EQ(r.render(),
              "# TYPE cwhook_duplicates_total counter\n"
              "cwhook_duplicates_total 0\n"
              "# TYPE cwhook_events_total counter\n"
              "cwhook_events_total{type=\"company\"} 1\n"
              "cwhook_events_total{type=\"ticket\"} 2\n"
              "# TYPE cwhook_open_connections gauge\n"
              "cwhook_open_connections 3\n"
              "# TYPE cwhook_pending_events gauge\n"
              "cwhook_pending_events -1\n");
}

TEST(Render, OneTypeLinePerFamilyWithContiguousSamples)
{
    registry r;
    r.get_counter("cwhook_fetch");
    r.get_counter("cwhook_fetch", R"(result="error")");
    r.get_counter("cwhook_fetch_retries");
    const auto text = r.render();
    EXPECT_EQ(occurrences(text, "# TYPE cwhook_fetch counter\n"), 1U) << text;
    EXPECT_EQ(text,
              "# TYPE cwhook_fetch counter\n"
              "cwhook_fetch 0\n"
              "cwhook_fetch{result=\"error\"} 0\n"
              "# TYPE cwhook_fetch_retries counter\n"
              "cwhook_fetch_retries 0\n");
}


TEST(Histogram, CountsCumulativeBucketsSumAndCount)
{
    registry r;
    auto& h = r.get_histogram("cwhook_x_seconds", {}, {0.01, 0.1, 1});
    h.observe(0.005);
    h.observe(0.01);  // a bound belongs to its own bucket (le = less or equal)
    h.observe(0.5);
    h.observe(7);
    EXPECT_EQ(h.count(), 4u);
    EXPECT_NEAR(h.sum(), 7.515, 1e-9);
    EXPECT_EQ(h.cumulative(0), 2u);
    EXPECT_EQ(h.cumulative(1), 2u);
    EXPECT_EQ(h.cumulative(2), 3u);
    EXPECT_EQ(h.cumulative(3), 4u);  // +Inf
    EXPECT_EQ(&r.get_histogram("cwhook_x_seconds", {}, {5}), &h);  // same one, bounds kept
}

TEST(Histogram, RendersBucketsWithLabelsBeforeLe)
{
    registry r;
    r.get_histogram("cwhook_req_seconds", "route=\"/callbacks\"", {0.1, 1}).observe(0.2);
    const auto text = r.render();
    EXPECT_NE(text.find("# TYPE cwhook_req_seconds histogram\n"), std::string::npos) << text;
    EXPECT_NE(text.find("cwhook_req_seconds_bucket{route=\"/callbacks\",le=\"0.1\"} 0\n"), std::string::npos) << text;
    EXPECT_NE(text.find("cwhook_req_seconds_bucket{route=\"/callbacks\",le=\"1\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("cwhook_req_seconds_bucket{route=\"/callbacks\",le=\"+Inf\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("cwhook_req_seconds_sum{route=\"/callbacks\"} 0.2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("cwhook_req_seconds_count{route=\"/callbacks\"} 1\n"), std::string::npos) << text;
}

TEST(Histogram, ConcurrentObservationsAreNotLost)
{
    registry r;
    auto& h = r.get_histogram("cwhook_batch_size", {}, size_buckets());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&h] {
            for (int i = 0; i < 10000; ++i) {
                h.observe(static_cast<double>(i % 100));
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(h.count(), 40000u);
    EXPECT_EQ(h.cumulative(h.bounds().size()), 40000u);
}

} // namespace
} // namespace cwhook::metrics
