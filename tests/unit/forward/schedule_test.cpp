#include "forward/schedule.hpp"

#include <gtest/gtest.h>

namespace cwhook::forward {
namespace {

using std::chrono::milliseconds;

const retry_schedule schedule{milliseconds(0), milliseconds(5'000), milliseconds(300'000)};
constexpr milliseconds no_bound{3'600'000};

TEST(RetrySchedule, NextDelayAfterEachFailure)
{
    const auto first = after_failure(schedule, 1, 0.0, 0.5, std::nullopt, no_bound);
    EXPECT_FALSE(first.dead);
    EXPECT_EQ(first.delay, milliseconds(5'000));
    const auto second = after_failure(schedule, 2, 0.0, 0.5, std::nullopt, no_bound);
    EXPECT_FALSE(second.dead);
    EXPECT_EQ(second.delay, milliseconds(300'000));
}

TEST(RetrySchedule, DeadAfterTheLastAttempt)
{
    EXPECT_TRUE(after_failure(schedule, 3, 0.2, 0.5, std::nullopt, no_bound).dead);
    EXPECT_TRUE(after_failure(schedule, 4, 0.2, 0.5, std::nullopt, no_bound).dead);
    // A Retry-After does not bring back an attempt the schedule does not have.
    EXPECT_TRUE(after_failure(schedule, 3, 0.2, 0.5, milliseconds(1'000), no_bound).dead);
}

TEST(RetrySchedule, OneAttemptScheduleIsDeadAfterIt)
{
    EXPECT_TRUE(after_failure(retry_schedule{milliseconds(0)}, 1, 0.2, 0.5, std::nullopt, no_bound).dead);
    EXPECT_TRUE(after_failure(retry_schedule{}, 1, 0.2, 0.5, std::nullopt, no_bound).dead);
}

TEST(RetrySchedule, JitterLowerBoundAtUnitZero)
{
    EXPECT_EQ(after_failure(schedule, 1, 0.2, 0.0, std::nullopt, no_bound).delay, milliseconds(4'000));
}

TEST(RetrySchedule, JitterUpperBoundIsApproachedNotExceeded)
{
    const auto top = after_failure(schedule, 1, 0.2, 0.999'999'9, std::nullopt, no_bound).delay;
    EXPECT_LE(top, milliseconds(6'000));
    EXPECT_GE(top, milliseconds(5'999));
    EXPECT_EQ(after_failure(schedule, 1, 0.2, 0.5, std::nullopt, no_bound).delay, milliseconds(5'000));
}

TEST(RetrySchedule, JitterStaysWithinBoundsForEveryUnit)
{
    for (double u = 0.0; u < 1.0; u += 0.01) {
        const auto d = after_failure(schedule, 2, 0.2, u, std::nullopt, no_bound).delay;
        EXPECT_GE(d, milliseconds(240'000)) << u;
        EXPECT_LE(d, milliseconds(360'000)) << u;
    }
}

TEST(RetrySchedule, OutOfRangeJitterNeverMakesANegativeDelay)
{
    EXPECT_EQ(after_failure(schedule, 1, 5.0, 0.0, std::nullopt, no_bound).delay, milliseconds(0));
    EXPECT_EQ(after_failure(schedule, 1, -1.0, 0.0, std::nullopt, no_bound).delay, milliseconds(5'000));
}

TEST(RetrySchedule, LongerRetryAfterIsHonoured)
{
    EXPECT_EQ(after_failure(schedule, 1, 0.0, 0.5, milliseconds(60'000), no_bound).delay, milliseconds(60'000));
}

TEST(RetrySchedule, RetryAfterIsClampedToTheBound)
{
    EXPECT_EQ(after_failure(schedule, 1, 0.0, 0.5, milliseconds(86'400'000), milliseconds(120'000)).delay,
              milliseconds(120'000));
}

TEST(RetrySchedule, ShorterRetryAfterDoesNotShortenTheSchedule)
{
    EXPECT_EQ(after_failure(schedule, 2, 0.0, 0.5, milliseconds(1'000), no_bound).delay, milliseconds(300'000));
    EXPECT_EQ(after_failure(schedule, 1, 0.0, 0.5, milliseconds(0), no_bound).delay, milliseconds(5'000));
}

TEST(RetrySchedule, BoundBelowTheScheduleDoesNotShortenIt)
{
    EXPECT_EQ(after_failure(schedule, 2, 0.0, 0.5, milliseconds(900'000), milliseconds(60'000)).delay,
              milliseconds(300'000));
}

TEST(RetrySchedule, RetryAfterIsComparedWithTheJitteredDelay)
{
    // Jittered down to 4 s, so a Retry-After of 4.5 s asks for more and wins.
    EXPECT_EQ(after_failure(schedule, 1, 0.2, 0.0, milliseconds(4'500), no_bound).delay, milliseconds(4'500));
}

TEST(RetrySchedule, FirstDelayIsTheConfiguredOne)
{
    EXPECT_EQ(first_delay(schedule), milliseconds(0));
    EXPECT_EQ(first_delay(retry_schedule{milliseconds(2'000), milliseconds(5'000)}), milliseconds(2'000));
    EXPECT_EQ(first_delay(retry_schedule{}), milliseconds(0));
}

} // namespace
} // namespace cwhook::forward
