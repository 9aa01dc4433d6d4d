#include "events/feed.hpp"
#include "events/filter.hpp"

#include "store/event_store.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <future>
#include <tuple>
#include <vector>

using namespace std::string_literals;
using namespace cwhook;
using namespace cwhook::events;

namespace {

constexpr std::int64_t t0 = 1'764'302'400'000'000; // 2025-11-28T04:00:00Z

feed_event sample(std::string body)
{
    feed_event f;
    f.seq = 17;
    f.event.id = 42;
    auto& r = f.event.record;
    r.received_at_us = t0 + 123'456;
    r.status = store::event_status::verified;
    r.body = std::move(body);
    r.type = "ticket";
    r.action = "updated";
    r.entity_id = 1;
    r.company_id = "Cobalt";
    r.callback_id = 26604;
    return f;
}

store::event_record stored(std::string key, store::event_status status = store::event_status::verified)
{
    store::event_record ev;
    ev.received_at_us = t0;
    ev.status = status;
    ev.dedupe_key = "m:" + key;
    ev.body_sha256 = std::string(64, 'a');
    ev.body = R"({"ID":1})";
    ev.type = "ticket";
    ev.action = "added";
    ev.next_verify_at_us = status == store::event_status::pending ? t0 : 0;
    return ev;
}

std::int64_t insert(store::event_store& st, store::event_record ev)
{
    std::promise<result<store::insert_outcome>> done;
    auto f = done.get_future();
    EXPECT_TRUE(st.submit_event(std::move(ev), [&done](result<store::insert_outcome> r) { done.set_value(r); }));
    auto r = f.get();
    EXPECT_TRUE(r);
    return r ? r->id : -1;
}

} // namespace

TEST(EventsFeed, JsonHasTheCursorTheSummaryAndTheDecodedPayload)
{
    const auto f = sample(R"({"ID":1,"Entity":"{\"h\":2.00,\"n\":[1e3]}"})");
    EXPECT_EQ(
        feed_json(f),
        R"({"cursor":"17","id":42,"type":"ticket","action":"updated","entity_id":1,)"
        R"("company_id":"Cobalt","status":"verified","source":"callback","received_at":"2025-11-28T04:00:00.123456Z",)"
        R"("payload":{"ID":1,"Entity":{"h":2.00,"n":[1e3]}}})");
}

TEST(EventsFeed, JsonPayloadIsNullWhenTheBodyIsNotJson)
{
    auto f = sample("not json\xff"s);
    f.event.record.entity_id.reset();
    f.event.record.company_id.reset();
    const auto text = feed_json(f);
    EXPECT_NE(text.find(R"("entity_id":null,"company_id":null,)"), std::string::npos) << text;
    EXPECT_TRUE(text.ends_with(R"("payload":null})")) << text;
}

TEST(EventsFeed, CursorsAreNonNegativeIntegers)
{
    EXPECT_EQ(parse_feed_cursor("0"), 0);
    EXPECT_EQ(parse_feed_cursor(format_feed_cursor(9'007'199'254'740'993)), 9'007'199'254'740'993);
    for (const char* bad : {"", "-1", "1.5", "x", " 1", "99999999999999999999"}) {
        EXPECT_FALSE(parse_feed_cursor(bad)) << bad;
    }
}

TEST(EventsFeed, SummaryLineHasTheColumnsOfEventsList)
{
    const auto f = sample("{}");
    EXPECT_EQ(summary_line(summary_of(f.event)), "42        2025-11-28T04:00:00.123Z  ticket            updated  1     "
                                                 "    Cobalt        verified     1           callback\n");
}

TEST(EventsFeed, MatchesAppliesEveryTermToOneEvent)
{
    const auto e = sample("{}").event;
    store::event_filter f;
    EXPECT_TRUE(matches(f, e));
    for (const auto& [name, value, want] : std::vector<std::tuple<std::string, std::string, bool>>{
             {"type", "ticket", true},
             {"type", "company", false},
             {"action", "added", false},
             {"entity-id", "1", true},
             {"entity-id", "2", false},
             {"company", "Cobalt", true},
             {"company", "Other", false},
             {"status", "verified", true},
             {"status", "failed", false},
             {"callback-id", "26604", true},
             {"since", "2025-11-28T04:00:00Z", true},
             {"since", "2025-11-28T04:00:01Z", false},
             {"until", "2025-11-28T04:00:01Z", true},
             {"until", "2025-11-28T04:00:00Z", false},
         }) {
        store::event_filter one;
        ASSERT_FALSE(set_filter(one, name, value, t0));
        EXPECT_EQ(matches(one, e), want) << name << "=" << value;
    }
    auto no_entity = e;
    no_entity.record.entity_id.reset();
    store::event_filter by_entity;
    by_entity.entity_id = 1;
    EXPECT_FALSE(matches(by_entity, no_entity));
}

TEST(EventsFeed, ReadGoesPastDeletedEventsAndLeavesOutUnforwardableOnes)
{
    test::temp_dir dir;
    store::settings s;
    s.path = dir.file("events.db");
    auto st = store::event_store::open(s);
    ASSERT_TRUE(st) << st.error();
    const auto first = insert(**st, stored("a"));
    insert(**st, stored("p", store::event_status::pending)); // no position
    auto older = stored("b");
    older.received_at_us = t0 - 10; // the one retention takes below
    const auto gone = insert(**st, older);
    const auto third = insert(**st, stored("c"));
    auto db = store::event_db::open(s, store::db_access::read_write);
    ASSERT_TRUE(db) << db.error();

    auto all = read_feed(**db, 0, 10);
    ASSERT_TRUE(all) << all.error();
    ASSERT_EQ(all->events.size(), 3u);
    EXPECT_EQ(all->events[0].event.id, first);
    EXPECT_EQ(all->events[1].event.id, gone);
    EXPECT_EQ(all->events[2].event.id, third);
    EXPECT_EQ(all->events[2].seq, 3);
    EXPECT_EQ(all->last, 3);
    EXPECT_EQ(all->positions, 3u);

    // Retention deleted an event after it got its position: the feed goes on past the gap.
    (*st)->stop();
    ASSERT_EQ(*(*db)->prune(t0 - 5, std::nullopt), 1);
    auto page = read_feed(**db, 1, 1);
    ASSERT_TRUE(page);
    ASSERT_EQ(page->events.size(), 1u);
    EXPECT_EQ(page->events[0].event.id, third);
    EXPECT_EQ(page->last, 3);

    auto end = read_feed(**db, 3, 10);
    ASSERT_TRUE(end);
    EXPECT_TRUE(end->events.empty());
    EXPECT_EQ(end->positions, 0u);
    EXPECT_EQ(end->last, 3);
}
