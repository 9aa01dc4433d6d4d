#include "json/rest_records.hpp"

#include <gtest/gtest.h>

namespace cwhook::json {
namespace {

TEST(RestRecords, EachRecordKeepsItsExactTextAndTimes)
{
    const std::string text =
        R"([{"id":7,"summary":"a","budget":12.50,"dateEntered":"2026-12-03T09:00:00Z",)"
        R"("_info":{"lastUpdated":"2026-12-03T10:00:01Z","updatedBy":"x"}},)"
        R"( {"id":9,"_info":{"lastUpdated":"2026-12-03T10:00:02Z","dateEntered":"2026-12-01T00:00:00Z"}},)"
        R"({"id":11}])";
    const auto r = parse_rest_records(text);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[0].id, 7);
    EXPECT_EQ((*r)[0].json, R"({"id":7,"summary":"a","budget":12.50,"dateEntered":"2026-12-03T09:00:00Z",)"
                            R"("_info":{"lastUpdated":"2026-12-03T10:00:01Z","updatedBy":"x"}})");
    EXPECT_EQ((*r)[0].last_updated_us, 1'796'292'001'000'000);
    EXPECT_EQ((*r)[0].date_entered_us, 1'796'288'400'000'000);
    EXPECT_EQ((*r)[1].date_entered_us, 1'796'083'200'000'000); // _info.dateEntered
    EXPECT_FALSE((*r)[2].last_updated_us);
}

TEST(RestRecords, WhatIsNotAnArrayOfRecordsIsRefused)
{
    EXPECT_FALSE(parse_rest_records(R"({"id":1})"));
    EXPECT_FALSE(parse_rest_records(R"([{"name":"no id"}])"));
    EXPECT_FALSE(parse_rest_records(R"([1,2])"));
    EXPECT_FALSE(parse_rest_records("[{"));
    ASSERT_TRUE(parse_rest_records("[]"));
    EXPECT_TRUE(parse_rest_records("[]")->empty());
}

TEST(RestRecords, EntityLastUpdatedOfACallback)
{
    const std::string body =
        R"({"Action":"updated","Type":"ticket","ID":5,"Entity":"{\"id\":5,\"company\":{\"id\":2,\"_info\":)"
        R"({\"company_href\":\"x\"}},\"_info\":{\"lastUpdated\":\"2026-12-03T10:00:01Z\"}}"})";
    EXPECT_EQ(entity_last_updated(body), 1'796'292'001'000'000);
    EXPECT_FALSE(entity_last_updated(R"({"Action":"deleted","Type":"ticket","ID":5,"Entity":null})"));
    EXPECT_FALSE(entity_last_updated(R"({"Entity":"{\"id\":5}"})"));
    EXPECT_FALSE(entity_last_updated(R"({"Entity":"not json"})"));
    EXPECT_FALSE(entity_last_updated("garbage"));
}

} // namespace
} // namespace cwhook::json
