#include "core/duration.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsEachUnit)
{
    const struct {
        std::string_view text;
        std::int64_t ms;
    } cases[] = {
        {"500ms", 500},
        {"3s", 3'000},
        {"2m", 120'000},
        {"1h", 3'600'000},
        {"7d", 604'800'000},
        {"1w", 604'800'000},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        const auto r = parse_duration(c.text);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->count(), c.ms);
    }
}

TEST(ParseDuration, AcceptsChainedComponents)
{
    const struct {
        std::string_view text;
        std::int64_t ms;
    } cases[] = {
        {"1h30m", 5'400'000},
        {"1s500ms", 1'500},
        {"1d1h1m1s1ms", 90'061'001},
        {"2w3d", 1'468'800'000},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        const auto r = parse_duration(c.text);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->count(), c.ms);
    }
}

TEST(ParseDuration, AcceptsZeroSpellings)
{
    for (const std::string_view text : {"0", "0s", "0ms", "0h"}) {
        SCOPED_TRACE(text);
        const auto r = parse_duration(text);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->count(), 0);
    }
}

TEST(ParseDuration, RefusesMalformedText)
{
    for (const std::string_view text :
         {"", "5", "00", "s", "ms", "1x", "1S", "1H", "1Ms", "-1s", "+1s", "1.5s", " 1s", "1s ", "1 s",
          "1h 30m", "1sms", "1h30", "h1", "1,5s"}) {
        SCOPED_TRACE(text);
        const auto r = parse_duration(text);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(errc::invalid_argument));
    }
}

TEST(ParseDuration, AcceptsTheLargestRepresentableDayCount)
{
    // 106751991167 days is the last whole day below INT64_MAX milliseconds.
    const auto r = parse_duration("106751991167d");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->count(), 106'751'991'167LL * 86'400'000LL);
}

TEST(ParseDuration, RefusesValuesThatOverflow)
{
    for (const std::string_view text :
         {"106751991168d", "9223372036854775807ms", "99999999999999999999s", "106751991167d106751991167d",
          "15250284453w"}) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(parse_duration(text));
    }
}

TEST(FormatDuration, SpellsShortestExactForm)
{
    const struct {
        std::int64_t ms;
        std::string_view text;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {999, "999ms"},
        {1'000, "1s"},
        {1'500, "1s500ms"},
        {60'000, "1m"},
        {3'600'000, "1h"},
        {5'400'000, "1h30m"},
        {86'400'000, "1d"},
        {90'061'001, "1d1h1m1s1ms"},
        {3'600'001, "1h1ms"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.ms);
        EXPECT_EQ(format_duration(milliseconds{c.ms}), c.text);
    }
}

TEST(FormatDuration, SpellsNegativeWithLeadingMinus)
{
    EXPECT_EQ(format_duration(milliseconds{-1'500}), "-1s500ms");
}

TEST(FormatDuration, UsesWeeksWhenThatIsShorter)
{
    EXPECT_EQ(format_duration(milliseconds{604'800'000}), "1w");
    EXPECT_EQ(format_duration(milliseconds{1'468'800'000}), "2w3d");
}

TEST(FormatDuration, RoundTripsThroughParse)
{
    for (const std::int64_t ms :
         {0LL, 1LL, 999LL, 1'000LL, 1'500LL, 59'999LL, 5'400'000LL, 90'061'001LL, 604'800'000LL, 1'234'567'890'123LL}) {
        SCOPED_TRACE(ms);
        const auto text = format_duration(milliseconds{ms});
        const auto back = parse_duration(text);
        ASSERT_TRUE(back) << text;
        EXPECT_EQ(back->count(), ms);
    }
}

} // namespace
} // namespace cwhook
