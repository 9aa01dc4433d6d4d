#include "events/deliveries_render.hpp"
#include "events/render.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace std::string_literals;
using namespace cwhook;
using namespace cwhook::events;

namespace {

constexpr std::int64_t now = 1'764'302'400'000'000; // 2025-11-28T04:00:00Z

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

store::delivery_row failing_row()
{
    store::delivery_row d;
    d.id = 7;
    d.event_id = 42;
    d.destination = "crm";
    d.state = store::delivery_state::failing;
    d.created_at_us = now - 60'000'000;
    d.next_attempt_at_us = now + 5'000'000;
    d.attempts = 2;
    d.tries = 2;
    d.last_status = 503;
    d.last_error = "HTTP 503";
    d.history = {{7, now - 59'000'000, 0, 10'000'000, "connect: connection refused"},
                 {7, now - 1'000'000, 503, 12'345, "HTTP 503"}};
    return d;
}

store::delivery_row done_row()
{
    store::delivery_row d;
    d.id = 8;
    d.event_id = 42;
    d.destination = "warehouse";
    d.state = store::delivery_state::done;
    d.created_at_us = now - 60'000'000;
    d.attempts = 1;
    d.tries = 1;
    d.last_status = 204;
    d.done_at_us = now - 59'000'000;
    d.history = {{8, now - 59'000'100, 204, 100, ""}};
    return d;
}

store::stored_event event()
{
    store::stored_event e;
    e.id = 42;
    e.record.received_at_us = now - 61'000'000;
    e.record.status = store::event_status::verified;
    e.record.body = R"({"ID":1})";
    e.record.type = "ticket";
    e.record.action = "updated";
    e.deliveries = 2;
    e.last_delivery_at_us = now;
    return e;
}

} // namespace

TEST(DeliveriesRender, TableHasOneAlignedLinePerRow)
{
    std::vector<store::delivery_row> rows{failing_row(), done_row()};
    const auto lines = lines_of(deliveries_table(rows));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].find("DESTINATION"), lines[1].find("crm"));
    EXPECT_EQ(lines[0].find("STATE"), lines[2].find("done"));
    EXPECT_EQ(lines[0].find("LAST STATUS"), lines[1].find("503"));
    EXPECT_EQ(lines[0].find("NEXT ATTEMPT / DONE"), lines[1].find("2025-11-28T04:00:05.000Z"));
    EXPECT_EQ(lines[0].find("NEXT ATTEMPT / DONE"), lines[2].find("2025-11-28T03:59:01.000Z"));
    // No error: a dash, as for other empty cells.
    EXPECT_EQ(lines[0].find("LAST ERROR"), lines[2].find("- "));
}

TEST(DeliveriesRender, TableShortensLongErrorsToOneLine)
{
    auto d = failing_row();
    d.last_error = "TLS handshake failed:\ncertificate verify failed (unable to get local issuer certificate) \xff";
    d.next_attempt_at_us = 0;
    d.state = store::delivery_state::pending;
    const auto lines = lines_of(deliveries_table(std::vector{d}));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("TLS handshake failed: certificate verify...  now"), std::string::npos) << lines[1];
    EXPECT_EQ(lines[1].find("unable to get"), std::string::npos) << lines[1];
    EXPECT_TRUE(lines[1].ends_with("now")) << lines[1]; // due at once
}

TEST(DeliveriesRender, JsonOfAnUndeliveredRow)
{
    EXPECT_EQ(delivery_json(failing_row()),
              R"({"id":7,"event_id":42,"destination":"crm","state":"failing",)"
              R"("created_at":"2025-11-28T03:59:00.000000Z","created_at_us":1764302340000000,)"
              R"("next_attempt_at":"2025-11-28T04:00:05.000000Z","next_attempt_at_us":1764302405000000,)"
              R"("attempt_count":2,"tries":2,"last_status":503,"last_error":"HTTP 503","done_at":null,)"
              R"("done_at_us":null})");
}

TEST(DeliveriesRender, JsonOfAFinishedRowWithItsAttempts)
{
    const auto json = delivery_json(done_row(), true);
    EXPECT_NE(json.find(R"("next_attempt_at":null,"next_attempt_at_us":null)"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("done_at":"2025-11-28T03:59:01.000000Z","done_at_us":1764302341000000)"), std::string::npos)
        << json;
    EXPECT_TRUE(json.ends_with(R"("attempts":[{"at":"2025-11-28T03:59:00.999900Z","at_us":1764302340999900,)"
                               R"("http_status":204,"latency_ms":0.100,"error":""}]})"))
        << json;
    // Without attempts asked for, none are given (the list endpoint does not load them).
    EXPECT_EQ(delivery_json(done_row()).find("\"attempts\""), std::string::npos);
}

TEST(DeliveriesRender, AttemptWithoutAnAnswerHasNullStatus)
{
    const store::delivery_attempt a{7, now, 0, 10'000'000, "timeout"};
    EXPECT_EQ(attempt_json(a), R"({"at":"2025-11-28T04:00:00.000000Z","at_us":1764302400000000,)"
                               R"("http_status":null,"latency_ms":10000.000,"error":"timeout"})");
}

TEST(DeliveriesRender, ShowListsEveryAttempt)
{
    const auto text = delivery_text(failing_row());
    EXPECT_NE(text.find("state        failing (next attempt 2025-11-28T04:00:05.000Z)"), std::string::npos) << text;
    EXPECT_NE(text.find("attempts     2 (2 since the last retry)"), std::string::npos) << text;
    EXPECT_NE(text.find("\nattempts:\n  2025-11-28T03:59:01.000Z  -    10000.0 ms  connect: connection refused\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("  2025-11-28T03:59:59.000Z  503  12.3 ms     HTTP 503\n"), std::string::npos) << text;
    auto fresh = failing_row();
    fresh.history.clear();
    EXPECT_TRUE(delivery_text(fresh).ends_with("\nattempts: none\n"));
}

TEST(DeliveriesRender, EventDetailGainsForwarding)
{
    const auto e = event();
    const std::vector<store::delivery_row> rows{failing_row(), done_row()};
    const auto text = detail_text(e, rows);
    EXPECT_TRUE(text.starts_with(detail_text(e)));
    EXPECT_NE(text.find("\nforwarding:\n  crm: failing (next attempt 2025-11-28T04:00:05.000Z), 2 attempts "
                        "(delivery 7)\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("  warehouse: done (2025-11-28T03:59:01.000Z), 1 attempt (delivery 8)\n"
                        "    2025-11-28T03:59:00.999Z  204  0.1 ms\n"),
              std::string::npos)
        << text;
    EXPECT_TRUE(detail_text(e, {}).ends_with("\nforwarding: none\n"));

    const auto json = detail_json(e, rows);
    EXPECT_NE(json.find(R"("deliveries":2,)"), std::string::npos) << json; // Manage's, as before
    EXPECT_NE(json.find(R"("forwarding":[{"id":7,)"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("attempts":[{"at":"2025-11-28T03:59:01.000000Z")"), std::string::npos) << json;
    EXPECT_EQ(detail_json(e).find("forwarding"), std::string::npos);
    EXPECT_NE(detail_json(e, {}, 2).find("\"forwarding\": []"), std::string::npos);
}

TEST(DeliveriesRender, DestinationsTableAndJson)
{
    store::destination_status crm;
    crm.name = "crm";
    crm.configured = true;
    crm.paused = true;
    crm.pause_reason = "maintenance";
    crm.changed_at_us = now - 1;
    crm.pending = 3;
    crm.failing = 1;
    crm.dead = 2;
    crm.done = 40;
    crm.oldest_due_created_at_us = now - 3'723'500'000; // 1h2m3.5s ago
    store::destination_status old;
    old.name = "old";
    old.cancelled = 5;
    const std::vector<store::destination_status> rows{crm, old};
    const auto lines = lines_of(destinations_table(rows, now));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].find("PAUSED"), lines[1].find("yes: maintenance"));
    EXPECT_EQ(lines[0].find("OLDEST UNDELIVERED"), lines[1].find("1h2m3s"));
    EXPECT_EQ(lines[0].find("CONFIGURED"), lines[2].find("no"));
    EXPECT_EQ(lines[0].find("CANCELLED"), lines[2].find("5 "));
    EXPECT_TRUE(lines[2].ends_with(" -")) << lines[2];

    EXPECT_EQ(destination_json(crm, now),
              R"({"name":"crm","configured":true,"paused":true,"pause_reason":"maintenance",)"
              R"("changed_at":"2025-11-28T03:59:59.999999Z","pending":3,"failing":1,"dead":2,"done":40,)"
              R"("cancelled":0,"oldest_undelivered_at":"2025-11-28T02:57:56.500000Z",)"
              R"("oldest_undelivered_age_s":3723})");
    EXPECT_NE(destination_json(old, now).find(R"("oldest_undelivered_at":null,"oldest_undelivered_age_s":null)"),
              std::string::npos);
}
