#include "core/time.hpp"

#include <gtest/gtest.h>

using namespace cwhook;

namespace {

constexpr std::int64_t now = 1'764'302'400'000'000;  // 2025-11-28T04:00:00Z

std::int64_t t(std::string_view text)
{
    auto r = parse_time(text, now);
    EXPECT_TRUE(r) << text;
    return r ? *r : -1;
}

} // namespace

TEST(Time, Rfc3339Utc)
{
    EXPECT_EQ(t("2025-11-28T04:00:00Z"), now);
    EXPECT_EQ(t("2025-11-28t04:00:00z"), now);
    EXPECT_EQ(t("2025-11-28 04:00:00Z"), now);
    EXPECT_EQ(t("1970-01-01T00:00:00Z"), 0);
}

TEST(Time, Rfc3339FractionAndOffset)
{
    EXPECT_EQ(t("2025-11-28T04:00:00.5Z"), now + 500'000);
    EXPECT_EQ(t("2025-11-28T04:00:00.123456Z"), now + 123'456);
    EXPECT_EQ(t("2025-11-28T05:30:00+01:30"), now);
    EXPECT_EQ(t("2025-11-27T23:00:00-05:00"), now);
}

TEST(Time, DateOnlyIsMidnightUtc)
{
    EXPECT_EQ(t("2025-11-28"), now - 4 * 3'600'000'000LL);
    EXPECT_EQ(t("2024-02-29"), t("2024-03-01") - 86'400'000'000LL);
}

TEST(Time, DurationsCountBackFromNow)
{
    EXPECT_EQ(t("2h"), now - 7'200'000'000LL);
    EXPECT_EQ(t("7d"), now - 7 * 86'400'000'000LL);
    EXPECT_EQ(t("1h30m"), now - 5'400'000'000LL);
    EXPECT_EQ(t("0"), now);
}

TEST(Time, RejectsNonsense)
{
    for (const char* bad : {"", "yesterday", "2h ago", "2025-13-01", "2025-02-30", "2023-02-29", "2025-11-28T24:00:00Z",
                            "2025-11-28T04:00:00", "2025-11-28T04:00Z", "2025-11-28T04:00:00+0100", "1969-12-31",
                            "2025-11-28T04:00:00.Z", "-2h", "2x"}) {
        EXPECT_FALSE(parse_time(bad, now)) << bad;
    }
}

TEST(Time, FormatRoundTrips)
{
    EXPECT_EQ(format_time(now), "2025-11-28T04:00:00.000000Z");
    EXPECT_EQ(format_time(now + 1'234, time_precision::millis), "2025-11-28T04:00:00.001Z");
    EXPECT_EQ(format_time(now, time_precision::seconds), "2025-11-28T04:00:00Z");
    EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000000Z");
    for (const std::int64_t us : {now, now + 987'654, std::int64_t{951'782'400'000'000}}) {
        EXPECT_EQ(t(format_time(us)), us);
    }
}
