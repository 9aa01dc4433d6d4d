#include "manage/conditions.hpp"

#include <gtest/gtest.h>

namespace cwhook::manage {
namespace {

using namespace std::chrono;

TEST(Conditions, StringsAreQuotedAndJoinedWithAnd)
{
    conditions c;
    c.where("type", op::eq, std::string("ticket")).where("level", op::eq, std::string("owner"));
    EXPECT_EQ(c.text(), R"(type = "ticket" and level = "owner")");
}

TEST(Conditions, QuotesAndBackslashesInsideStringsAreEscaped)
{
    conditions c;
    c.where("description", op::eq, std::string(R"(say "hi" \ bye)"));
    EXPECT_EQ(c.text(), R"(description = "say \"hi\" \\ bye")");
}

TEST(Conditions, IntegersAndBooleansAreBare)
{
    conditions c;
    c.where("objectId", op::eq, std::int64_t{42}).or_where("inactiveFlag", op::eq, true);
    EXPECT_EQ(c.text(), "objectId = 42 or inactiveFlag = true");
}

TEST(Conditions, DatesAreBracketed)
{
    conditions c;
    const sys_seconds t = sys_days{year{2016} / 8 / 20} + hours{18} + minutes{4} + seconds{26};
    c.where("lastUpdated", op::gt, date_time{t});
    EXPECT_EQ(c.text(), "lastUpdated > [2016-08-20T18:04:26Z]");
}

TEST(Conditions, WordOperatorsAndInLists)
{
    conditions c;
    c.where("url", op::not_contains, std::string("example"))
        .where_in("id", {condition_value{std::int64_t{3}}, condition_value{std::int64_t{4}}});
    EXPECT_EQ(c.text(), R"(url not contains "example" and id in (3, 4))");
}

TEST(Conditions, EncodedIsPercentEncodedWithSpacesAsPercent20)
{
    conditions c;
    c.where("url", op::eq, std::string("https://h/c?recordId=&x=1+2"));
    EXPECT_EQ(c.encoded(), "url%20%3D%20%22https%3A%2F%2Fh%2Fc%3FrecordId%3D%26x%3D1%2B2%22");
}

TEST(Conditions, UrlEncodeKeepsUnreservedAndEncodesUtf8Bytes)
{
    EXPECT_EQ(url_encode("aZ09-._~"), "aZ09-._~");
    EXPECT_EQ(url_encode("\xC3\xA9 /"), "%C3%A9%20%2F");
}

TEST(Conditions, EmptyBuilderIsEmpty)
{
    conditions c;
    EXPECT_TRUE(c.empty());
    EXPECT_EQ(c.encoded(), "");
}

} // namespace
} // namespace cwhook::manage
