#include "forward/breaker.hpp"

#include <gtest/gtest.h>

namespace cwhook::forward {
namespace {

using std::chrono::milliseconds;
using time_point = circuit_breaker::time_point;

const time_point t0 = time_point{} + std::chrono::hours(1);
constexpr milliseconds interval{30'000};

void fail(circuit_breaker& b, std::size_t n, time_point now)
{
    for (std::size_t i = 0; i < n; ++i) {
        b.failure(now);
    }
}

TEST(CircuitBreaker, ClosedAllowsEverything)
{
    circuit_breaker b(3, interval);
    EXPECT_FALSE(b.open());
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(b.allow(t0));
    }
}

TEST(CircuitBreaker, OpensAtTheThreshold)
{
    circuit_breaker b(3, interval);
    fail(b, 2, t0);
    EXPECT_FALSE(b.open());
    EXPECT_TRUE(b.allow(t0));
    b.failure(t0);
    EXPECT_TRUE(b.open());
    EXPECT_EQ(b.consecutive_failures(), 3u);
    EXPECT_FALSE(b.allow(t0));
    EXPECT_FALSE(b.allow(t0 + interval - milliseconds(1)));
}

TEST(CircuitBreaker, SuccessResetsTheCount)
{
    circuit_breaker b(3, interval);
    fail(b, 2, t0);
    b.success();
    EXPECT_EQ(b.consecutive_failures(), 0u);
    fail(b, 2, t0);
    EXPECT_FALSE(b.open());
}

TEST(CircuitBreaker, OneProbePerInterval)
{
    circuit_breaker b(1, interval);
    b.failure(t0);
    ASSERT_TRUE(b.open());
    EXPECT_TRUE(b.allow(t0 + interval));
    // The probe is out: nothing else, however long it takes.
    EXPECT_FALSE(b.allow(t0 + interval));
    EXPECT_FALSE(b.allow(t0 + 10 * interval));
    EXPECT_TRUE(b.open());
}

TEST(CircuitBreaker, ProbeSuccessCloses)
{
    circuit_breaker b(2, interval);
    fail(b, 2, t0);
    ASSERT_TRUE(b.allow(t0 + interval));
    b.success();
    EXPECT_FALSE(b.open());
    EXPECT_EQ(b.consecutive_failures(), 0u);
    EXPECT_TRUE(b.allow(t0 + interval));
    EXPECT_TRUE(b.allow(t0 + interval));
}

TEST(CircuitBreaker, ProbeFailureReopensForAFreshInterval)
{
    circuit_breaker b(2, interval);
    fail(b, 2, t0);
    const auto probe_at = t0 + interval + milliseconds(500);
    ASSERT_TRUE(b.allow(probe_at));
    const auto failed_at = probe_at + milliseconds(2'000);
    b.failure(failed_at);
    EXPECT_TRUE(b.open());
    EXPECT_EQ(b.consecutive_failures(), 3u);
    EXPECT_FALSE(b.allow(failed_at));
    EXPECT_FALSE(b.allow(failed_at + interval - milliseconds(1)));
    EXPECT_TRUE(b.allow(failed_at + interval));
    EXPECT_FALSE(b.allow(failed_at + interval));
}

TEST(CircuitBreaker, StaleFailureWhileOpenDoesNotDelayTheProbe)
{
    // Requests in flight when the circuit opened report afterwards.
    circuit_breaker b(1, interval);
    b.failure(t0);
    b.failure(t0 + milliseconds(20'000));
    EXPECT_TRUE(b.allow(t0 + interval));
}

TEST(CircuitBreaker, ThresholdZeroNeverOpens)
{
    circuit_breaker b(0, interval);
    fail(b, 1000, t0);
    EXPECT_FALSE(b.open());
    EXPECT_EQ(b.consecutive_failures(), 1000u);
    EXPECT_TRUE(b.allow(t0));
}

} // namespace
} // namespace cwhook::forward
