#include "json/pretty.hpp"
#include "json/records.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace std::string_literals;
using namespace cwhook::json;

namespace {

std::string fixture(const std::string& name)
{
    std::ifstream in(std::string(CWHOOK_FIXTURES_DIR) + "/" + name, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST(Pretty, KeepsNumberTextExactly)
{
    const auto r = reformat(R"({"a":2.00,"b":[1e2,-0.0,12345678901234567890],"c":true,"d":null})", 0);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, R"({"a":2.00,"b":[1e2,-0.0,12345678901234567890],"c":true,"d":null})");
}

TEST(Pretty, Indents)
{
    const auto r = reformat(R"( {"a" : [ 1 , {} , [] ], "b":{"c":"x, y: {z}"}} )", 2);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "{\n  \"a\": [\n    1,\n    {},\n    []\n  ],\n  \"b\": {\n    \"c\": \"x, y: {z}\"\n  }\n}");
}

TEST(Pretty, RefusesInvalidJson)
{
    EXPECT_FALSE(reformat("{\"a\":", 2));
    EXPECT_FALSE(reformat("", 2));
    EXPECT_FALSE(reformat_payload("not json", 2));
}

TEST(Pretty, PayloadEntityIsDecodedIntoAnObject)
{
    const auto r = reformat_payload(R"({"Action":"updated","Entity":"{\"id\":1,\"hours\":2.00,\"s\":\"a\\\"b\"}","ID":1})", 0);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, R"({"Action":"updated","Entity":{"id":1,"hours":2.00,"s":"a\"b"},"ID":1})");
}

TEST(Pretty, EntityThatIsNotJsonStaysAString)
{
    const auto r = reformat_payload(R"({"Entity":"not { json","ID":1})", 0);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, R"({"Entity":"not { json","ID":1})");
    EXPECT_FALSE(decoded_entity(R"({"Entity":"not { json"})", 0));
}

TEST(Pretty, NullOrMissingEntityDecodesToNull)
{
    EXPECT_EQ(decoded_entity(R"({"Entity":null})", 2).value_or("?"), "null");
    EXPECT_EQ(decoded_entity(R"({"ID":1})", 2).value_or("?"), "null");
}

TEST(Pretty, InvalidUtf8IsShownAsQuestionMarks)
{
    const auto body = fixture("manage-ticket-updated-invalid-utf8.json");
    const auto entity = decoded_entity(body, 0);
    ASSERT_TRUE(entity);
    EXPECT_NE(entity->find(R"("summary":"Caf? printer ?? jammed")"), std::string::npos) << *entity;
    EXPECT_NE(entity->find(R"("budgetHours":2.00,"actualHours":1.50)"), std::string::npos) << *entity;
    EXPECT_NE(entity->find("Service \xe2\x80\x93 Desk"), std::string::npos) << *entity;  // valid UTF-8 kept
    const auto whole = reformat_payload(body, 2);
    ASSERT_TRUE(whole);
    EXPECT_NE(whole->find("\"budgetHours\": 2.00"), std::string::npos) << *whole;
}

TEST(Pretty, UnescapeHandlesSurrogates)
{
    EXPECT_EQ(unescape_string(R"("a\u00e9\ud83d\ude00\n\/")"), "a\xc3\xa9\xf0\x9f\x98\x80\n/");
    EXPECT_EQ(unescape_string(R"("\ud83d x")"), "\xef\xbf\xbd x");
}

TEST(Records, FlatObject)
{
    auto r = parse_flat_object(R"({"a":"x","b":-5,"c":null})");
    ASSERT_TRUE(std::holds_alternative<flat_object>(r));
    const auto& o = std::get<flat_object>(r);
    ASSERT_NE(o.find("a"), nullptr);
    EXPECT_EQ(std::get<std::string>(*o.find("a")), "x");
    EXPECT_EQ(std::get<std::int64_t>(*o.find("b")), -5);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(*o.find("c")));
    EXPECT_EQ(o.find("d"), nullptr);
    EXPECT_TRUE(std::holds_alternative<parse_error>(parse_flat_object(R"({"a":[1]})")));
    EXPECT_TRUE(std::holds_alternative<parse_error>(parse_flat_object("[1]")));
}

TEST(Records, ReplayRequest)
{
    auto r = parse_replay_request(R"({"ids":[3,4],"to":"http://127.0.0.1:1/x","rate":2.5,"concurrency":2})");
    ASSERT_TRUE(std::holds_alternative<replay_request>(r));
    const auto& q = std::get<replay_request>(r);
    EXPECT_EQ(q.ids, (std::vector<std::int64_t>{3, 4}));
    EXPECT_EQ(q.to, "http://127.0.0.1:1/x");
    EXPECT_EQ(q.rate.value_or(0), 2.5);
    EXPECT_EQ(q.concurrency.value_or(0), 2);
    EXPECT_FALSE(q.has_filter);

    auto f = parse_replay_request(R"({"filter":{"type":"ticket","entity_id":7},"to":"x"})");
    ASSERT_TRUE(std::holds_alternative<replay_request>(f));
    EXPECT_TRUE(std::get<replay_request>(f).has_filter);
    EXPECT_EQ(std::get<replay_request>(f).filter[1], (std::pair<std::string, std::string>{"entity_id", "7"}));

    EXPECT_TRUE(std::holds_alternative<parse_error>(parse_replay_request(R"({"ids":["a"]})")));
    EXPECT_TRUE(std::holds_alternative<parse_error>(parse_replay_request(R"({"bogus":1})")));
}

TEST(Records, DeliveryRetryRequest)
{
    auto r = parse_delivery_retry_request(R"({"ids":[3,4],"dry_run":true})");
    ASSERT_TRUE(std::holds_alternative<delivery_retry_request>(r));
    EXPECT_EQ(std::get<delivery_retry_request>(r).ids, (std::vector<std::int64_t>{3, 4}));
    EXPECT_TRUE(std::get<delivery_retry_request>(r).dry_run);
    EXPECT_FALSE(std::get<delivery_retry_request>(r).all);

    auto f = parse_delivery_retry_request(R"({"destination":"crm","state":"dead","event":42,"all":true})");
    ASSERT_TRUE(std::holds_alternative<delivery_retry_request>(f));
    const auto& q = std::get<delivery_retry_request>(f);
    using term = std::pair<std::string, std::string>;
    EXPECT_EQ(q.filter, (std::vector<term>{{"destination", "crm"}, {"state", "dead"}, {"event", "42"}}));
    EXPECT_TRUE(q.all);
    EXPECT_FALSE(q.dry_run);

    for (const char* bad : {R"({"ids":["a"]})", R"({"state":1})", R"({"event":1.5})", R"({"dry_run":"yes"})",
                            R"({"type":"ticket"})", "[]"}) {
        EXPECT_TRUE(std::holds_alternative<parse_error>(parse_delivery_retry_request(bad))) << bad;
    }
}
