#include "emulator/detail/impl.hpp"

#include <gtest/gtest.h>

namespace cwhook::emulator {
namespace {

TEST(Query, DecodesPercentAndPlus)
{
    EXPECT_EQ(url_decode("type%3D%22ticket%22+and+id%3E1"), "type=\"ticket\" and id>1");
    EXPECT_EQ(url_decode("100%"), "100%");    // a lone % stays
    EXPECT_EQ(url_decode("%zz%4"), "%zz%4");  // so do malformed escapes
}

TEST(Query, FindsParametersCaseInsensitively)
{
    const std::string_view q = "pageSize=10&conditions=type%3D%22ticket%22&page=&flag";
    EXPECT_EQ(query_param(q, "pagesize"), "10");
    EXPECT_EQ(query_param(q, "conditions"), "type=\"ticket\"");
    EXPECT_EQ(query_param(q, "page"), "");
    EXPECT_EQ(query_param(q, "flag"), "");
    EXPECT_FALSE(query_param(q, "pageId"));
    EXPECT_FALSE(query_param("", "page"));
}

} // namespace
} // namespace cwhook::emulator
