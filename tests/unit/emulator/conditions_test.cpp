#include "emulator/conditions.hpp"

#include <gtest/gtest.h>

#include <map>

namespace cwhook::emulator {
namespace {

using record = std::map<std::string, conditions::field_value, std::less<>>;

bool eval(std::string_view text, const record& r)
{
    auto c = conditions::parse(text);
    EXPECT_TRUE(c) << text << ": " << (c ? "" : c.error());
    if (!c) {
        return false;
    }
    return c->matches([&r](std::string_view f) -> std::optional<conditions::field_value> {
        const auto it = r.find(f);
        if (it == r.end()) {
            return std::nullopt;
        }
        return it->second;
    });
}

const record ticket_owner{
    {"id", std::int64_t{42}},
    {"type", std::string("ticket")},
    {"level", std::string("owner")},
    {"url", std::string("https://hooks.example.com/callbacks?recordId=")},
    {"objectid", std::int64_t{1}},
    {"inactiveflag", false},
    {"description", std::monostate{}},
    {"_info/lastupdated", std::string("2026-06-04T17:14:20Z")},
};

TEST(Conditions, EmptyMatchesEverything)
{
    EXPECT_TRUE(eval("", ticket_owner));
    EXPECT_TRUE(eval("   ", ticket_owner));
}

TEST(Conditions, StringEqualityIsCaseInsensitive)
{
    EXPECT_TRUE(eval(R"(type="ticket")", ticket_owner));
    EXPECT_TRUE(eval(R"(Type = "TICKET")", ticket_owner));
    EXPECT_FALSE(eval(R"(type="contact")", ticket_owner));
    EXPECT_TRUE(eval(R"(type!="contact")", ticket_owner));
}

TEST(Conditions, IntegersAndBooleans)
{
    EXPECT_TRUE(eval("objectId=1", ticket_owner));
    EXPECT_FALSE(eval("objectId=2", ticket_owner));
    EXPECT_TRUE(eval("id > 41 and id <= 42", ticket_owner));
    EXPECT_FALSE(eval("id < 42", ticket_owner));
    EXPECT_TRUE(eval("inactiveFlag=false", ticket_owner));
    EXPECT_TRUE(eval("inactiveFlag = False", ticket_owner));
    EXPECT_FALSE(eval("inactiveFlag=true", ticket_owner));
}

TEST(Conditions, AndBindsTighterThanOr)
{
    EXPECT_TRUE(eval(R"(type="contact" and level="owner" or objectId=1)", ticket_owner));
    EXPECT_FALSE(eval(R"(type="contact" and (level="owner" or objectId=1))", ticket_owner));
    EXPECT_TRUE(eval(R"(type="ticket" AND (level="board" OR level="owner"))", ticket_owner));
}

TEST(Conditions, NotNegates)
{
    EXPECT_FALSE(eval(R"(not type="ticket")", ticket_owner));
    EXPECT_TRUE(eval(R"(not (type="contact" or objectId=2))", ticket_owner));
}

TEST(Conditions, LikeAndContains)
{
    EXPECT_TRUE(eval(R"(url like "https://hooks.*")", ticket_owner));
    EXPECT_TRUE(eval(R"(url like "%recordId=")", ticket_owner));
    EXPECT_TRUE(eval(R"(url like "*HOOKS*")", ticket_owner));
    EXPECT_FALSE(eval(R"(url like "http://*")", ticket_owner));
    EXPECT_FALSE(eval(R"(url like "https://hooks")", ticket_owner));  // like matches the whole value
    EXPECT_TRUE(eval(R"(url contains "example")", ticket_owner));
    EXPECT_TRUE(eval(R"(url not contains "manage")", ticket_owner));
    EXPECT_FALSE(eval(R"(url not like "*example*")", ticket_owner));
}

TEST(Conditions, InLists)
{
    EXPECT_TRUE(eval("id in (1, 42, 7)", ticket_owner));
    EXPECT_FALSE(eval("id in (1,2)", ticket_owner));
    EXPECT_TRUE(eval(R"(level in ("board","OWNER"))", ticket_owner));
    EXPECT_TRUE(eval("id not in (1,2)", ticket_owner));
}

TEST(Conditions, NullAndDates)
{
    EXPECT_TRUE(eval("description = null", ticket_owner));
    EXPECT_FALSE(eval("description != null", ticket_owner));
    EXPECT_FALSE(eval(R"(description = "x")", ticket_owner));
    EXPECT_TRUE(eval("_info/lastUpdated > [2026-01-01T00:00:00Z]", ticket_owner));
    EXPECT_FALSE(eval("_info/lastUpdated < [2026-01-01T00:00:00Z]", ticket_owner));
}

TEST(Conditions, EscapedQuotesInStrings)
{
    const record r{{"description", std::string(R"(say "hi" \ bye)")}};
    EXPECT_TRUE(eval(R"(description = "say \"hi\" \\ bye")", r));
}

TEST(Conditions, UnknownFieldNeverMatchesAndIsListed)
{
    auto c = conditions::parse(R"(nosuch="x" or type="ticket")");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->fields(), (std::vector<std::string>{"nosuch", "type"}));
    EXPECT_FALSE(eval(R"(nosuch="x")", ticket_owner));
}

TEST(Conditions, SyntaxErrorsSayWhere)
{
    for (const char* bad : {R"(type=)", R"(type="ticket)", R"(type="a" and)", R"((type="a")", R"(type ~ "a")",
                            R"(type=ticket)", R"(id in 1)", R"(type not = "a")", R"(= "a")"}) {
        auto c = conditions::parse(bad);
        EXPECT_FALSE(c) << bad;
        if (!c) {
            EXPECT_NE(c.error().find(" at "), std::string::npos) << c.error();
        }
    }
}

TEST(Conditions, DeepNestingIsRefused)
{
    std::string text(200, '(');
    text += "id=1";
    text += std::string(200, ')');
    EXPECT_FALSE(conditions::parse(text));
}

TEST(LikeMatch, Wildcards)
{
    EXPECT_TRUE(like_match("abc", "abc"));
    EXPECT_TRUE(like_match("abc", "*"));
    EXPECT_TRUE(like_match("", "%"));
    EXPECT_TRUE(like_match("abcabd", "*abd"));
    EXPECT_TRUE(like_match("aXbYc", "a*b*c"));
    EXPECT_FALSE(like_match("abc", "a*d"));
    EXPECT_FALSE(like_match("abc", "ab"));
}

} // namespace
} // namespace cwhook::emulator
