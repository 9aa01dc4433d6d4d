#include "emulator/detail/impl.hpp"

#include <gtest/gtest.h>

namespace cwhook::emulator {
namespace {

TEST(Query, DecodesPercentAndPlus)
{
    EXPECT_EQ(query_param("conditions=type%3D%22ticket%22+and+id%3E1", "conditions"), "type=\"ticket\" and id>1");
    EXPECT_FALSE(query_param("page=100%", "page"));  // a malformed escape spoils the query
    EXPECT_FALSE(query_param("page=%zz", "page"));
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
