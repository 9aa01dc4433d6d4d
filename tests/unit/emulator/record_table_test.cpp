#include "emulator/record_table.hpp"

#include "emulator/callback_table.hpp"

#include <gtest/gtest.h>

namespace cwhook::emulator {
namespace {

json::value parse(std::string_view text)
{
    auto r = json::parse_value(text);
    EXPECT_TRUE(std::holds_alternative<json::value>(r)) << text;
    return std::holds_alternative<json::value>(r) ? std::get<json::value>(std::move(r)) : json::value{};
}

bool matches(std::string_view text, const json::value& record)
{
    auto c = conditions::parse(text);
    EXPECT_TRUE(c) << text << ": " << (c ? "" : c.error());
    return c && c->matches([&record](std::string_view f) { return record_field(record, f); });
}

TEST(RecordTable, CollectionsOfEveryCallbackType)
{
    EXPECT_EQ(collection_of("ticket"), "service/tickets");
    EXPECT_EQ(collection_of("Contact"), "company/contacts");
    EXPECT_EQ(collection_of("productcatalog"), "procurement/catalog");
    EXPECT_EQ(collection_of("nosuch"), "");
    EXPECT_EQ(type_of_collection("procurement/purchaseorders"), "purchaseorder");
    EXPECT_EQ(type_of_collection("time/entries"), "time");
    EXPECT_EQ(type_of_collection("system/callbacks"), "");
    for (const auto* type :
         {"activity", "agreement", "company", "contact", "configuration", "invoice", "expense", "member", "opportunity",
          "productcatalog", "project", "purchaseorder", "schedule", "ticket", "time"}) {
        EXPECT_EQ(type_of_collection(collection_of(type)), type);
    }
}

TEST(RecordTable, NewRecordHasIdLabelDatesAndInfo)
{
    const auto r = new_record("ticket", 5000, "2026-12-02T10:00:00Z", "2026-12-03T10:00:00Z", "emulator");
    EXPECT_EQ(json::serialize(r), R"({"id":5000,"summary":"Emulated ticket 5000","dateEntered":"2026-12-02T10:00:00Z",)"
                                  R"("_info":{"lastUpdated":"2026-12-03T10:00:00Z","updatedBy":"emulator"}})");
    EXPECT_EQ(record_id(r), 5000);
    EXPECT_EQ(record_last_updated(r), "2026-12-03T10:00:00Z");
    EXPECT_EQ(record_date_entered(r), "2026-12-02T10:00:00Z");
}

TEST(RecordTable, MergeReplacesInPlaceAppendsAndKeepsTheId)
{
    const auto r = new_record("company", 7, "2026-12-02T10:00:00Z", "2026-12-02T10:00:00Z", "emulator");
    const auto merged = merge_record(r, parse(R"({"id":99,"name":"Acme","x":2.5,"_info":{"extra":1}})"));
    EXPECT_EQ(json::serialize(merged), R"({"id":7,"name":"Acme","dateEntered":"2026-12-02T10:00:00Z",)"
                                       R"("_info":{"lastUpdated":"2026-12-02T10:00:00Z","updatedBy":"emulator",)"
                                       R"("extra":1},"x":2.5})");
    const auto stamped = stamp_record(merged, "2026-12-03T11:00:00Z", "someone");
    EXPECT_EQ(record_last_updated(stamped), "2026-12-03T11:00:00Z");
    EXPECT_EQ(stamped.find("_info")->find("extra")->as_int(), 1);
}

TEST(RecordTable, FieldsByPathAndLastUpdatedAlias)
{
    const auto r = parse(R"({"id":3,"company":{"id":12,"name":"Acme"},"closedFlag":true,"budget":1.5,)"
                         R"("_info":{"lastUpdated":"2026-12-03T10:00:00Z"}})");
    EXPECT_EQ(record_field(r, "id"), conditions::field_value{std::int64_t{3}});
    EXPECT_EQ(record_field(r, "company/id"), conditions::field_value{std::int64_t{12}});
    EXPECT_EQ(record_field(r, "closedflag"), conditions::field_value{true});
    EXPECT_EQ(record_field(r, "budget"), conditions::field_value{std::string("1.5")});
    EXPECT_EQ(record_field(r, "lastupdated"), conditions::field_value{std::string("2026-12-03T10:00:00Z")});
    EXPECT_EQ(record_field(r, "_info/lastupdated"), record_field(r, "lastupdated"));
    EXPECT_FALSE(record_field(r, "company")); // an object is not comparable
    EXPECT_FALSE(record_field(r, "nosuch"));
}

TEST(RecordTable, ConditionsOnLastUpdatedAndId)
{
    const auto r = parse(R"({"id":3,"_info":{"lastUpdated":"2026-12-03T10:00:00Z"}})");
    EXPECT_TRUE(matches("lastUpdated > [2026-12-03T09:59:59Z]", r));
    EXPECT_FALSE(matches("lastUpdated > [2026-12-03T10:00:00Z]", r));
    EXPECT_TRUE(matches("lastUpdated >= [2026-12-03T10:00:00Z]", r));
    EXPECT_TRUE(matches("lastUpdated < [2026-12-03T10:00:01Z]", r));
    EXPECT_TRUE(matches("lastUpdated <= [2026-12-03T10:00:00Z] and id = 3", r));
    // Dates compare as points in time: another precision or offset names the same instant.
    EXPECT_TRUE(matches("lastUpdated = [2026-12-03T10:00:00.000Z]", r));
    EXPECT_TRUE(matches("lastUpdated = [2026-12-03T11:00:00+01:00]", r));
    EXPECT_FALSE(matches("lastUpdated > [2026-12-03T10:00:00.500Z]", r));
    EXPECT_TRUE(matches("id in (1, 2, 3)", r));
    EXPECT_FALSE(matches("id in (4, 5)", r));
    EXPECT_TRUE(matches("id > 2 and (id < 3 or lastUpdated >= [2026-12-01T00:00:00Z])", r));
    EXPECT_FALSE(matches("nosuch = 1", r));
}

TEST(RecordTable, ProjectKeepsNamedTopLevelMembers)
{
    const auto r = parse(R"({"id":3,"name":"x","_info":{"lastUpdated":"2026-12-03T10:00:00Z"}})");
    EXPECT_EQ(json::serialize(project(r, parse_fields(" id, _INFO ,nosuch,"))),
              R"({"id":3,"_info":{"lastUpdated":"2026-12-03T10:00:00Z"}})");
    EXPECT_EQ(json::serialize(project(r, {})), json::serialize(r));
}

} // namespace
} // namespace cwhook::emulator
