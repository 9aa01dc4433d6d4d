#include "manage/paging.hpp"

#include <gtest/gtest.h>

namespace cwhook::manage {
namespace {

TEST(LinkHeader, ParsesNextAndLastFromTheGuide)
{
    const auto links = parse_link_header(
        R"(<https://staging.connectwisedev.com/v2017_3/apis/3.0/company/companies?pageSize=50&page=2>; rel="next", )"
        R"(<https://staging.connectwisedev.com/v2017_3/apis/3.0/company/companies?pageSize=50&page=4>; rel="last")");
    ASSERT_EQ(links.size(), 2u);
    EXPECT_EQ(links[0].rel, "next");
    EXPECT_EQ(links[0].url, "https://staging.connectwisedev.com/v2017_3/apis/3.0/company/companies?pageSize=50&page=2");
    EXPECT_EQ(links[1].rel, "last");
}

TEST(LinkHeader, FindsRelCaseInsensitivelyAmongSeveral)
{
    const std::string h = R"(<https://h/a?page=3>; rel="next", <https://h/a?page=1>; rel="prev", )"
                          R"(<https://h/a?page=1>; rel=first, <https://h/a?page=4>; REL="last")";
    EXPECT_EQ(find_link(h, "NEXT").value(), "https://h/a?page=3");
    EXPECT_EQ(find_link(h, "first").value(), "https://h/a?page=1");
    EXPECT_EQ(find_link(h, "last").value(), "https://h/a?page=4");
}

TEST(LinkHeader, NoNextOnTheLastPage)
{
    EXPECT_FALSE(find_link(R"(<https://h/a?page=1>; rel="first", <https://h/a?page=1>; rel="prev")", "next"));
    EXPECT_FALSE(find_link("", "next"));
}

TEST(LinkHeader, CommasAndSemicolonsInsideTheUrlOrQuotesDoNotSplit)
{
    const auto links = parse_link_header(R"(<https://h/a?conditions=x%3D1,y;z&page=2>; title="a, b; c"; rel="next")");
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].url, "https://h/a?conditions=x%3D1,y;z&page=2");
    EXPECT_EQ(links[0].rel, "next");
}

TEST(LinkHeader, SeveralRelationsInOneParameter)
{
    EXPECT_EQ(find_link(R"(<https://h/a?page=2>; rel="next last")", "last").value(), "https://h/a?page=2");
}

TEST(LinkHeader, GarbageIsSkippedNotFatal)
{
    const auto links = parse_link_header(R"(garbage, <https://h/x>; rel="next", <unterminated)");
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].url, "https://h/x");
}

TEST(LinkTarget, AbsoluteUrlBecomesPathAndQuery)
{
    EXPECT_EQ(link_target("https://api-na.myconnectwise.net/v2025_1/apis/3.0/system/callbacks?page=2").value(),
              "/v2025_1/apis/3.0/system/callbacks?page=2");
    EXPECT_EQ(link_target("http://127.0.0.1:8080/x?y#frag").value(), "/x?y");
    EXPECT_EQ(link_target("https://host").value(), "/");
    EXPECT_EQ(link_target("https://host?a=1").value(), "/?a=1");
}

TEST(LinkTarget, AbsolutePathKeptOtherFormsRefused)
{
    EXPECT_EQ(link_target("/v4_6_release/apis/3.0/x?page=2").value(), "/v4_6_release/apis/3.0/x?page=2");
    EXPECT_FALSE(link_target("//evil.example/x"));
    EXPECT_FALSE(link_target("ftp://h/x"));
    EXPECT_FALSE(link_target("relative/x"));
}

} // namespace
} // namespace cwhook::manage
