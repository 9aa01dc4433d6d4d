#include "core/text.hpp"

#include <gtest/gtest.h>

namespace cwhook {
namespace {

TEST(Text, LowerAsciiLeavesOtherBytes)
{
    EXPECT_EQ(lower_ascii("CoBalt_1\xc3\x89"), "cobalt_1\xc3\x89");
}

TEST(Text, TrimRemovesSpacesAndTabsOnly)
{
    EXPECT_EQ(trim(" \t a b \t"), "a b");
    EXPECT_EQ(trim("\na\r"), "\na\r");
    EXPECT_EQ(trim(""), "");
}

TEST(Text, IntegersAreWholeStrings)
{
    EXPECT_EQ(parse_integer<std::int64_t>("-42"), -42);
    EXPECT_FALSE(parse_integer<std::int64_t>(""));
    EXPECT_FALSE(parse_integer<std::int64_t>("4x"));
    EXPECT_FALSE(parse_integer<std::int64_t>(" 4"));
    EXPECT_FALSE(parse_integer<unsigned>("-1"));
    EXPECT_FALSE(parse_integer<std::int64_t>("99999999999999999999"));
}

TEST(Text, PortsAndIds)
{
    EXPECT_EQ(parse_port("443"), 443);
    EXPECT_EQ(parse_port("65535"), 65535);
    EXPECT_FALSE(parse_port("0"));
    EXPECT_FALSE(parse_port("65536"));
    EXPECT_FALSE(parse_port("+1"));
    EXPECT_EQ(parse_id("7"), 7);
    EXPECT_FALSE(parse_id("0"));
    EXPECT_FALSE(parse_id("-3"));
}

TEST(Text, QueriesDecodeFormEncoding)
{
    // Not NUL-terminated where it ends: a view into a longer buffer.
    const std::string target = "/x?conditions=type%3D%22ticket%22+and+id%3E1&page=&flag&&x=%41#rest";
    const std::string_view query = std::string_view(target).substr(3, target.find('#') - 3);
    const auto q = parse_query(query);
    ASSERT_TRUE(q);
    const query_params want = {{"conditions", "type=\"ticket\" and id>1"}, {"page", ""}, {"flag", ""}, {"x", "A"}};
    EXPECT_EQ(*q, want);
    EXPECT_FALSE(parse_query("a=%zz"));
    EXPECT_FALSE(parse_query("a=100%"));
    const auto none = parse_query(std::string_view());
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}

TEST(Text, PercentDecodeKeepsPlus)
{
    EXPECT_EQ(percent_decode("a%20b+c"), "a b+c");
    EXPECT_EQ(percent_decode(std::string_view()), "");
    EXPECT_FALSE(percent_decode("%4"));
}

TEST(Text, AlignedPadsColumnsAndTrimsLines)
{
    EXPECT_EQ(aligned({{"ID", "TYPE", "URL"}, {"10", "ticket", ""}, {"7"}}), "ID  TYPE    URL\n10  ticket\n7\n");
    EXPECT_EQ(aligned({}), "");
}

} // namespace
} // namespace cwhook
