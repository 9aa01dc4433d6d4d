#include "forward/rate_limit.hpp"

#include <gtest/gtest.h>

namespace cwhook::forward {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using time_point = token_bucket::time_point;

const time_point t0 = time_point{} + std::chrono::hours(1);

TEST(TokenBucket, BurstOfRateTokensAtOnce)
{
    token_bucket b(10);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(b.take(t0), nanoseconds(0)) << i;
    }
    EXPECT_GT(b.take(t0), nanoseconds(0));
}

TEST(TokenBucket, WaitIsUntilTheNextToken)
{
    token_bucket b(10);
    for (int i = 0; i < 10; ++i) {
        b.take(t0);
    }
    EXPECT_EQ(b.take(t0), milliseconds(100));
}

TEST(TokenBucket, WaitersQueueOneIntervalApart)
{
    token_bucket b(10);
    for (int i = 0; i < 10; ++i) {
        b.take(t0);
    }
    EXPECT_EQ(b.take(t0), milliseconds(100));
    EXPECT_EQ(b.take(t0), milliseconds(200));
    // The first waiter's token is reserved: 50 ms later the next free one is still 250 ms away.
    EXPECT_EQ(b.take(t0 + milliseconds(50)), milliseconds(250));
}

TEST(TokenBucket, RefillsAtTheRate)
{
    token_bucket b(10);
    for (int i = 0; i < 10; ++i) {
        b.take(t0);
    }
    EXPECT_EQ(b.take(t0 + milliseconds(100)), nanoseconds(0));
    EXPECT_EQ(b.take(t0 + milliseconds(100)), milliseconds(100));
}

TEST(TokenBucket, IdleTimeDoesNotBuildMoreThanTheBurst)
{
    token_bucket b(2);
    const auto later = t0 + std::chrono::hours(1);
    EXPECT_EQ(b.take(later), nanoseconds(0));
    EXPECT_EQ(b.take(later), nanoseconds(0));
    EXPECT_EQ(b.take(later), milliseconds(500));
}

TEST(TokenBucket, SlowRateHasABurstOfOne)
{
    token_bucket b(0.5);
    EXPECT_EQ(b.take(t0), nanoseconds(0));
    EXPECT_EQ(b.take(t0), milliseconds(2'000));
    EXPECT_EQ(b.take(t0 + milliseconds(4'000)), nanoseconds(0));
}

TEST(TokenBucket, ZeroRateIsUnlimited)
{
    token_bucket b(0);
    EXPECT_TRUE(b.unlimited());
    for (int i = 0; i < 10'000; ++i) {
        ASSERT_EQ(b.take(t0), nanoseconds(0));
    }
}

} // namespace
} // namespace cwhook::forward
