// Smaller holes closed, end to end: readiness probes that do not split the writer's batches.
#include "support/harness.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include <chrono>
#include <future>
#include <thread>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;

class Hardening : public ::testing::Test, protected receiver_env {
protected:
    http_call delivery(std::int64_t id, std::string_view message_id)
    {
        return signed_call(make_payload(keys.url(), id, message_id), keys.key());
    }
};

http_call get(std::string target)
{
    http_call c;
    c.method = "GET";
    c.target = std::move(target);
    return c;
}

TEST_F(Hardening, ReadinessProbesShareOneWriterJob)
{
    running_app app(options());
    const auto started = std::chrono::steady_clock::now();
    constexpr int threads = 8;
    constexpr int per_thread = 25;
    std::vector<std::future<int>> ok;
    for (int t = 0; t < threads; ++t) {
        ok.push_back(std::async(std::launch::async, [&] {
            int n = 0;
            for (int i = 0; i < per_thread; ++i) {
                n += send(app.http(), get("/readyz")).status == 200 ? 1 : 0;
            }
            return n;
        }));
    }
    int answered = 0;
    for (auto& f : ok) {
        answered += f.get();
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(answered, threads * per_thread);
    // One probe (one job in the writer's queue) per second at most, however many asked.
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
    EXPECT_GE(app.counter("cwhook_readiness_probes_total"), 1u);
    EXPECT_LE(app.counter("cwhook_readiness_probes_total"), static_cast<std::uint64_t>(seconds) + 1)
        << threads * per_thread << " requests in " << seconds << " s";
}

} // namespace
} // namespace cwhook::test
