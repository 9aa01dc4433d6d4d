#include "emulator/callback_table.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace cwhook::emulator {
namespace {

std::string fixture(std::string_view name)
{
    std::ifstream in(std::string(CWHOOK_FIXTURES_DIR) + "/" + std::string(name), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

json::value parsed(std::string_view text)
{
    auto r = json::parse_value(text);
    EXPECT_TRUE(std::holds_alternative<json::value>(r)) << text;
    return std::holds_alternative<json::value>(r) ? std::get<json::value>(r) : json::value{};
}

// Same JSON regardless of spacing.
std::string canonical(std::string_view text)
{
    return json::serialize(parsed(text));
}

TEST(CallbackTable, TypeLevelTable)
{
    EXPECT_TRUE(valid_type("ticket"));
    EXPECT_TRUE(valid_type("Ticket"));
    EXPECT_FALSE(valid_type("tickets"));
    EXPECT_TRUE(valid_level("ticket", "board"));
    EXPECT_TRUE(valid_level("ticket", "integratortag"));
    EXPECT_FALSE(valid_level("ticket", "territory"));
    EXPECT_TRUE(valid_level("opportunity", "statusid"));
    EXPECT_FALSE(valid_level("productcatalog", "company"));
    EXPECT_EQ(levels_of("time"), "owner, company, time");
}

TEST(CallbackTable, FixtureRequestBecomesOwnerEntryWithObjectIdOne)
{
    callback_entry e;
    EXPECT_TRUE(apply_object(e, parsed(fixture("api-system-callbacks-contacts-request.json"))).empty());
    EXPECT_TRUE(validate(e).empty());
    EXPECT_EQ(e.type, "contact");
    EXPECT_EQ(e.level, "owner");
    EXPECT_EQ(e.object_id, 1);
    EXPECT_EQ(e.url, "https://test.com/webhook?recordId=");
    EXPECT_EQ(e.payload_version, "3.0.0");
    EXPECT_EQ(e.member_id, 243);  // memberId of the request (0) is read-only and ignored
}

TEST(CallbackTable, EntryJsonHasTheResponseFixtureShape)
{
    const auto want = parsed(fixture("api-system-callbacks-tickets-response.json"));
    callback_entry e;
    e.id = 26552;
    e.url = "https://test.com/webhook?recordId=";
    e.object_id = 1;
    e.type = "ticket";
    e.level = "owner";
    e.connectwise_id = "5a6f7d74-a45f-f111-aa6d-d25dfe3c7792";
    e.last_updated = "2026-06-03T23:32:20Z";
    e.updated_by = "Cobalt";
    EXPECT_EQ(canonical(entry_json(e)), json::serialize(want));
}

TEST(CallbackTable, ObjectExistsBodyIsTheFixture)
{
    const auto body = error_json("InvalidObject", "callbackEntry object is invalid",
                                 {field_error{"ObjectExists", "A matching callback entry already exists", "objectId"}});
    EXPECT_EQ(canonical(body), canonical(fixture("api-system-callbacks-create-webhook-bad-request-2.json")));
}

TEST(CallbackTable, BadUrlAndLevelGiveTheFixtureErrors)
{
    callback_entry e;
    e.type = "ticket";
    e.level = "nosuch";
    e.url = "not a url";
    const auto errors = validate(e);
    const auto body = error_json("InvalidObject", "callbackEntry object is invalid", errors);
    EXPECT_EQ(canonical(body), canonical(fixture("api-system-callbacks-create-webhook-bad-request-1.json")));
}

TEST(CallbackTable, NonOwnerLevelNeedsObjectId)
{
    callback_entry e;
    e.type = "TICKET";
    e.level = "Board";
    e.url = "http://127.0.0.1:8080/callbacks?recordId=";
    auto errors = validate(e);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].field, "objectId");
    e.object_id = 7;
    EXPECT_TRUE(validate(e).empty());
    EXPECT_EQ(e.type, "ticket");
    EXPECT_EQ(e.level, "board");
}

TEST(CallbackTable, DescriptionLimitedTo100)
{
    callback_entry e;
    e.type = "ticket";
    e.level = "owner";
    e.url = "https://x.example/cb?recordId=";
    e.description = std::string(101, 'd');
    ASSERT_EQ(validate(e).size(), 1u);
    e.description.pop_back();
    EXPECT_TRUE(validate(e).empty());
}

TEST(CallbackTable, PatchReplacesAndRemoves)
{
    callback_entry e;
    e.description = "old";
    e.inactive = true;
    auto errors = apply_patch(e, parsed(R"([{"op":"replace","path":"inactiveFlag","value":false},
                                            {"op":"replace","path":"/description","value":"new"}])"));
    EXPECT_TRUE(errors.empty());
    EXPECT_FALSE(e.inactive);
    EXPECT_EQ(e.description, "new");
    EXPECT_TRUE(apply_patch(e, parsed(R"([{"op":"remove","path":"description"}])")).empty());
    EXPECT_EQ(e.description, "");
}

TEST(CallbackTable, PatchRefusesUnknownReadOnlyAndMistyped)
{
    callback_entry e;
    EXPECT_EQ(apply_patch(e, parsed(R"([{"op":"replace","path":"nosuch","value":1}])")).size(), 1u);
    EXPECT_EQ(apply_patch(e, parsed(R"([{"op":"replace","path":"id","value":9}])")).size(), 1u);
    EXPECT_EQ(apply_patch(e, parsed(R"([{"op":"replace","path":"inactiveFlag","value":"yes"}])")).size(), 1u);
    EXPECT_EQ(apply_patch(e, parsed(R"([{"op":"replace","path":"InactiveFlag","value":true}])")).size(), 1u);
    EXPECT_EQ(apply_patch(e, parsed(R"({"op":"replace"})")).size(), 1u);  // not an array
    EXPECT_FALSE(e.inactive);
}

TEST(CallbackTable, DuplicateRule)
{
    callback_entry a;
    a.type = "ticket";
    a.level = "owner";
    a.object_id = 1;
    a.url = "https://x/cb?recordId=";
    callback_entry b = a;
    b.description = "different description, same registration";
    b.inactive = true;
    EXPECT_TRUE(same_registration(a, b));
    b.url += "&x=1";
    EXPECT_FALSE(same_registration(a, b));
}

TEST(CallbackTable, FieldsForConditions)
{
    callback_entry e;
    e.id = 5;
    e.type = "ticket";
    e.inactive = true;
    EXPECT_EQ(std::get<std::int64_t>(*entry_field(e, "id")), 5);
    EXPECT_EQ(std::get<std::string>(*entry_field(e, "type")), "ticket");
    EXPECT_TRUE(std::get<bool>(*entry_field(e, "inactiveflag")));
    EXPECT_TRUE(std::holds_alternative<std::monostate>(*entry_field(e, "description")));
    EXPECT_FALSE(entry_field(e, "nosuch"));
    EXPECT_TRUE(known_field("_info/lastupdated"));
}

TEST(CallbackTable, TableRoundTrip)
{
    callback_entry a;
    a.id = 3;
    a.type = "ticket";
    a.level = "board";
    a.object_id = 12;
    a.url = "https://x/cb?recordId=";
    a.description = "a \"quoted\" one";
    a.inactive = true;
    a.connectwise_id = new_guid();
    a.last_updated = utc_now();
    a.updated_by = "me";
    a.consecutive_failures = 2;
    a.deliveries = 9;
    auto back = parse_table(table_json({a}));
    ASSERT_TRUE(back) << back.error();
    ASSERT_EQ(back->size(), 1u);
    const auto& b = back->front();
    EXPECT_EQ(entry_json(b), entry_json(a));
    EXPECT_EQ(b.consecutive_failures, 2u);
    EXPECT_EQ(b.deliveries, 9u);
    EXPECT_FALSE(parse_table("{}"));
    EXPECT_FALSE(parse_table("[{\"type\":\"ticket\"}]"));  // no id
}

TEST(CallbackTable, GuidAndTimeShapes)
{
    const auto g = new_guid();
    EXPECT_EQ(g.size(), 36u);
    EXPECT_EQ(g[8], '-');
    EXPECT_EQ(g[23], '-');
    EXPECT_NE(g, new_guid());
    const auto t = utc_now();
    EXPECT_EQ(t.size(), 20u);
    EXPECT_EQ(t[10], 'T');
    EXPECT_EQ(t.back(), 'Z');
}

} // namespace
} // namespace cwhook::emulator
