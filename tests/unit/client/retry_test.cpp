#include "client/https_client.hpp"

#include <gtest/gtest.h>

namespace cwhook::client {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicy, BackoffDoublesFromTheBaseAndIsCapped)
{
    retry_policy p;
    p.base_delay = milliseconds(100);
    p.max_delay = milliseconds(1000);
    // unit 1.0 is the top of the jitter range: the undisturbed 2^n * base.
    EXPECT_EQ(backoff_delay(p, 0, 1.0), milliseconds(100));
    EXPECT_EQ(backoff_delay(p, 1, 1.0), milliseconds(200));
    EXPECT_EQ(backoff_delay(p, 2, 1.0), milliseconds(400));
    EXPECT_EQ(backoff_delay(p, 3, 1.0), milliseconds(800));
    EXPECT_EQ(backoff_delay(p, 4, 1.0), milliseconds(1000));
    EXPECT_EQ(backoff_delay(p, 60, 1.0), milliseconds(1000));
}

TEST(RetryPolicy, JitterStaysWithinHalfToFull)
{
    retry_policy p;
    p.base_delay = milliseconds(100);
    EXPECT_EQ(backoff_delay(p, 2, 0.0), milliseconds(200));
    EXPECT_EQ(backoff_delay(p, 2, 0.5), milliseconds(300));
    for (double u = 0.0; u < 1.0; u += 0.05) {
        const auto d = backoff_delay(p, 3, u);
        EXPECT_GE(d, milliseconds(400));
        EXPECT_LE(d, milliseconds(800));
    }
}

TEST(RetryPolicy, RetryAfterSecondsOnly)
{
    EXPECT_EQ(parse_retry_after("3").value(), milliseconds(3000));
    EXPECT_EQ(parse_retry_after(" 0 ").value(), milliseconds(0));
    EXPECT_FALSE(parse_retry_after(""));
    EXPECT_FALSE(parse_retry_after("-1"));
    EXPECT_FALSE(parse_retry_after("1.5"));
    EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
    EXPECT_FALSE(parse_retry_after("99999999999999"));
}

TEST(RetryPolicy, IdempotentMethods)
{
    for (const char* m : {"GET", "get", "HEAD", "PUT", "DELETE", "OPTIONS"}) {
        EXPECT_TRUE(is_idempotent(m)) << m;
    }
    for (const char* m : {"POST", "PATCH", "CONNECT"}) {
        EXPECT_FALSE(is_idempotent(m)) << m;
    }
}

} // namespace
} // namespace cwhook::client
