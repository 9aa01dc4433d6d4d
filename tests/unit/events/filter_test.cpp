#include "events/filter.hpp"
#include "events/render.hpp"
#include "events/replay.hpp"

#include "crypto/digest.hpp"

#include <gtest/gtest.h>

using namespace std::string_literals;
using namespace cwhook;
using namespace cwhook::events;

namespace {

constexpr std::int64_t now = 1'764'302'400'000'000;  // 2025-11-28T04:00:00Z

store::stored_event sample()
{
    store::stored_event e;
    e.id = 42;
    auto& r = e.record;
    r.received_at_us = now - 5;
    r.status = store::event_status::failed;
    r.verify_reason = "bad_signature";
    r.dedupe_key = "m:abc";
    r.body = "{\"ID\":1,\"Entity\":\"{\\\"h\\\":2.00}\"}\xff\x00tail"s;
    r.body_sha256 = crypto::hex(crypto::sha256(r.body));
    r.method = "POST";
    r.path = "/callbacks";
    r.query = "recordId=1";
    r.client_addr = "192.0.2.7";
    r.headers = "Content-Type: application/json\nX-Odd: caf\xe9\n";
    r.content_type = "application/json";
    r.signature = "AG/S/z4z3Mc5RvJvUnoMjalnj2/lECvtYY6cP/URqn4=";
    r.message_id = "abc";
    r.type = "ticket";
    r.action = "updated";
    r.entity_id = 1;
    r.company_id = "Cobalt";
    r.callback_id = 26604;
    r.key_url = "https://na.myconnectwise.net/k";
    e.deliveries = 3;
    e.last_delivery_at_us = now;
    e.verify_attempts = 2;
    return e;
}

} // namespace

TEST(Filter, SetsEachTermFromText)
{
    store::event_filter f;
    EXPECT_FALSE(set_filter(f, "type", "ticket", now));
    EXPECT_FALSE(set_filter(f, "action", "added", now));
    EXPECT_FALSE(set_filter(f, "entity-id", "57961", now));
    EXPECT_FALSE(set_filter(f, "company", "Cobalt", now));
    EXPECT_FALSE(set_filter(f, "status", "pending", now));
    EXPECT_FALSE(set_filter(f, "source", "catch_up", now));
    EXPECT_FALSE(set_filter(f, "since", "2h", now));
    EXPECT_FALSE(set_filter(f, "until", "2025-11-28T03:30:00Z", now));
    EXPECT_FALSE(set_filter(f, "callback_id", "26604", now));
    EXPECT_FALSE(set_filter(f, "limit", "10", now));
    EXPECT_EQ(f.type.value_or(""), "ticket");
    EXPECT_EQ(f.action.value_or(""), "added");
    EXPECT_EQ(f.entity_id.value_or(0), 57961);
    EXPECT_EQ(f.company_id.value_or(""), "Cobalt");
    EXPECT_EQ(f.status, store::event_status::pending);
    EXPECT_EQ(f.source, store::event_source::catch_up);
    EXPECT_EQ(f.since_us.value_or(0), now - 7'200'000'000LL);
    EXPECT_EQ(f.until_us.value_or(0), now - 1'800'000'000LL);
    EXPECT_EQ(f.callback_id.value_or(0), 26604);
    EXPECT_EQ(f.limit, 10u);
}

TEST(Filter, RefusesBadValuesWithAReason)
{
    store::event_filter f;
    EXPECT_EQ(set_filter(f, "status", "ok", now).value_or(""),
              "expected verified, pending, failed, unverified or synthesized");
    EXPECT_FALSE(set_filter(f, "status", "synthesized", now));
    EXPECT_EQ(set_filter(f, "source", "manage", now).value_or(""), "expected callback or catch_up");
    EXPECT_TRUE(set_filter(f, "since", "yesterday", now));
    EXPECT_TRUE(set_filter(f, "entity-id", "12x", now));
    EXPECT_TRUE(set_filter(f, "limit", "0", now));
    EXPECT_TRUE(set_filter(f, "limit", "-3", now));
    EXPECT_EQ(set_filter(f, "colour", "red", now).value_or(""), "unknown filter");
    EXPECT_TRUE(set_filter(f, "cursor", "nope", now));
}

TEST(Filter, CursorRoundTrips)
{
    const store::event_cursor c{now, 99};
    const auto back = parse_cursor(format_cursor(c));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->received_at_us, now);
    EXPECT_EQ(back->id, 99);
}

TEST(Render, ExportLineRoundTripsEveryByte)
{
    const auto e = sample();
    const auto line = export_line(e);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto parsed = parse_export_line(line);
    ASSERT_TRUE(std::holds_alternative<store::stored_event>(parsed)) << std::get<std::string>(parsed);
    const auto& back = std::get<store::stored_event>(parsed);
    EXPECT_EQ(back.record.body, e.record.body);
    EXPECT_EQ(back.record.received_at_us, e.record.received_at_us);
    EXPECT_EQ(back.record.status, e.record.status);
    EXPECT_EQ(back.record.verify_reason, e.record.verify_reason);
    EXPECT_EQ(back.record.dedupe_key, e.record.dedupe_key);
    EXPECT_EQ(back.record.signature, e.record.signature);
    EXPECT_EQ(back.record.query, e.record.query);
    EXPECT_EQ(back.record.message_id, e.record.message_id);
    EXPECT_EQ(back.record.entity_id, e.record.entity_id);
    EXPECT_EQ(back.record.callback_id, e.record.callback_id);
    EXPECT_EQ(back.record.member_id, std::nullopt);
    EXPECT_EQ(back.deliveries, 3);
    EXPECT_EQ(back.verify_attempts, 2);
    // Header values are not guaranteed UTF-8; they travel with the offending byte as '?'.
    EXPECT_EQ(back.record.headers, "Content-Type: application/json\nX-Odd: caf?\n");
    EXPECT_EQ(back.record.source, store::event_source::callback);
    EXPECT_EQ(back.record.twin_of, std::nullopt);
}

TEST(Render, ExportLineCarriesCatchUpFields)
{
    auto e = sample();
    e.record.status = store::event_status::synthesized;
    e.record.source = store::event_source::catch_up;
    e.record.entity_updated_at_us = now - 5;
    auto twin = sample();
    twin.record.twin_of = 41;
    twin.record.entity_updated_at_us = now - 9;
    for (const auto& in : {e, twin}) {
        auto parsed = parse_export_line(export_line(in));
        ASSERT_TRUE(std::holds_alternative<store::stored_event>(parsed)) << std::get<std::string>(parsed);
        const auto& back = std::get<store::stored_event>(parsed);
        EXPECT_EQ(back.record.status, in.record.status);
        EXPECT_EQ(back.record.source, in.record.source);
        EXPECT_EQ(back.record.twin_of, in.record.twin_of);
        EXPECT_EQ(back.record.entity_updated_at_us, in.record.entity_updated_at_us);
    }
    const auto json = detail_json(twin);
    EXPECT_NE(json.find(R"("source":"callback","twin_of":41,)"), std::string::npos) << json;
    EXPECT_NE(detail_text(e).find("catch_up"), std::string::npos);
}

TEST(Render, ExportLinesFromBeforeCatchUpAreCallbacks)
{
    // A line written before v4 has no source, twin_of or entity_updated_at_us.
    auto line = export_line(sample());
    for (const char* key : {R"(,"source":"callback")", R"(,"twin_of":null)", R"(,"entity_updated_at_us":null)"}) {
        const auto at = line.find(key);
        ASSERT_NE(at, std::string::npos) << key << " in " << line;
        line.erase(at, std::string_view(key).size());
    }
    auto parsed = parse_export_line(line);
    ASSERT_TRUE(std::holds_alternative<store::stored_event>(parsed)) << std::get<std::string>(parsed);
    const auto& back = std::get<store::stored_event>(parsed);
    EXPECT_EQ(back.record.source, store::event_source::callback);
    EXPECT_EQ(back.record.twin_of, std::nullopt);
    EXPECT_EQ(back.record.entity_updated_at_us, std::nullopt);
}

TEST(Render, ExportLineRefusesTamperedBodies)
{
    auto line = export_line(sample());
    const auto pos = line.find("\"body_sha256\":\"") + 15;
    line[pos] = line[pos] == '0' ? '1' : '0';
    auto parsed = parse_export_line(line);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
    EXPECT_EQ(std::get<std::string>(parsed), "field body_sha256 does not match the body");
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_export_line(R"({"received_at_us":1})")));
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_export_line("not json")));
}

TEST(Render, TableIsAligned)
{
    std::vector<store::event_summary> rows{
        {1, now, "ticket", "added", 7, "Cobalt", store::event_status::verified, 1, store::event_source::callback,
         std::nullopt},
        {12345, now, "contact", "updated", std::nullopt, std::nullopt, store::event_status::synthesized, 2,
         store::event_source::catch_up, std::nullopt},
    };
    const auto text = table(rows);
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].find("RECEIVED"), lines[1].find("2025-11-28T04:00:00.000Z"));
    EXPECT_EQ(lines[0].find("TYPE"), lines[2].find("contact"));
    EXPECT_EQ(lines[0].find("STATUS"), lines[2].find("synthesized"));
    EXPECT_EQ(lines[0].find("SOURCE"), lines[2].find("catch_up"));
    EXPECT_NE(lines[2].find(" - "), std::string::npos);
}

TEST(Render, DetailShowsDecodedEntityAndHistory)
{
    auto e = sample();
    e.record.body = R"({"ID":1,"Entity":"{\"budgetHours\":2.00}"})";
    e.replays.push_back({42, now, "http://127.0.0.1:1/x", 502, "", ""});
    const auto text = detail_text(e);
    EXPECT_NE(text.find("\"budgetHours\": 2.00"), std::string::npos) << text;
    EXPECT_NE(text.find("X-Odd: caf"), std::string::npos) << text;
    EXPECT_NE(text.find("http://127.0.0.1:1/x  502"), std::string::npos) << text;
    const auto json = detail_json(e);
    EXPECT_NE(json.find(R"("payload":{"ID":1,"Entity":{"budgetHours":2.00}})"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("http_status":502)"), std::string::npos) << json;
}

TEST(Replay, TargetMustBeHttpOrHttps)
{
    replay_options o;
    o.to = "ftp://x/";
    EXPECT_FALSE(replay_request_for(o));
    o.to = "http://127.0.0.1:8080/hook?x=1";
    auto r = replay_request_for(o);
    ASSERT_TRUE(r) << r.error();
    EXPECT_FALSE(r->tls);
    EXPECT_EQ(r->port, 8080);
    EXPECT_EQ(r->target, "/hook?x=1");
    o.to = "https://[::1]/";
    r = replay_request_for(o);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->host, "::1");
    EXPECT_EQ(r->port, 443);
}

TEST(Replay, SummaryText)
{
    replay_summary s;
    s.total = 5;
    s.sent = 4;
    s.ok = 2;
    s.non_2xx[500] = 1;
    s.non_2xx[404] = 1;
    s.failed = 1;
    EXPECT_EQ(describe(s), "sent 4, 2xx 2, non-2xx 2 (404 x1, 500 x1), failed 1");
    EXPECT_FALSE(s.all_ok());
}

TEST(Filter, SetsEachDeliveryTermFromText)
{
    store::delivery_filter f;
    EXPECT_FALSE(set_delivery_filter(f, "destination", "crm"));
    EXPECT_FALSE(set_delivery_filter(f, "state", "dead"));
    EXPECT_FALSE(set_delivery_filter(f, "event", "42"));
    EXPECT_FALSE(set_delivery_filter(f, "before", "100"));
    EXPECT_FALSE(set_delivery_filter(f, "limit", "20"));
    EXPECT_EQ(f.destination, "crm");
    EXPECT_EQ(f.state, store::delivery_state::dead);
    EXPECT_EQ(f.event_id, 42);
    EXPECT_EQ(f.before_id, 100);
    EXPECT_EQ(f.limit, 20u);
}

TEST(Filter, RefusesBadDeliveryTermsWithAReason)
{
    store::delivery_filter f;
    EXPECT_EQ(set_delivery_filter(f, "state", "failed"), "expected pending, failing, done, dead or cancelled");
    EXPECT_EQ(set_delivery_filter(f, "event", "0"), "expected an event id");
    EXPECT_EQ(set_delivery_filter(f, "before", "x"), "expected a delivery id");
    EXPECT_EQ(set_delivery_filter(f, "limit", "0"), "expected an integer from 1 to 1000000");
    EXPECT_EQ(set_delivery_filter(f, "destination", ""), "expected a destination name");
    EXPECT_EQ(set_delivery_filter(f, "type", "ticket"), "unknown filter");
    EXPECT_FALSE(f.state || f.event_id || f.before_id || f.destination);
    EXPECT_EQ(f.limit, 50u);
}
