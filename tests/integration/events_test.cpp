// Operators' tools end to end: `cwhook events` / `cwhook rejections` as child processes on
// the database of a running receiver, replay to a second receiver that verifies ConnectWise
// signatures against the fake key server, the admin API over real sockets, and retention.
#include "support/harness.hpp"

#include "store/event_db.hpp"

#include <gtest/gtest.h>

// Filters are written with designated initializers naming only the terms a case sets; the
// rest keep their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <fmt/format.h>

#include <boost/asio/ip/tcp.hpp>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t hour_us = 3'600'000'000;

std::int64_t now_micros()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The id in {"status":"stored","id":N}.
std::int64_t stored_id(const http_result& r)
{
    const auto pos = r.body.find("\"id\":");
    return pos == std::string::npos ? -1 : std::stoll(r.body.substr(pos + 5));
}

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

std::size_t count_of(const std::string& text, std::string_view needle)
{
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
        ++n;
    }
    return n;
}

class Events : public ::testing::Test {
protected:
    temp_dir dir;
    test_cert cert = make_cert(dir);
    fake_key_server keys{cert};
    std::string db = dir.file("var/a.db");

    app_options options(std::string path, std::function<void(callback::app_settings&)> tweak = {})
    {
        app_options o;
        o.db = std::move(path);
        o.allowed_key_hosts = {keys.host_entry()};
        o.ca_file = cert.cert;
        o.tweak = std::move(tweak);
        return o;
    }

    http_call delivery(std::int64_t id, std::string_view type = "ticket", std::string_view action = "updated")
    {
        auto c = signed_call(make_payload(keys.url(), id, fmt::format("msg-{}-{}", type, id), action, type),
                             keys.key());
        c.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
        return c;
    }

    std::int64_t deliver(running_app& app, const http_call& call)
    {
        const auto r = send(app.http(), call);
        EXPECT_EQ(r.status, 200) << r.body << r.error;
        return stored_id(r);
    }

    command_result cli(std::vector<std::string> args, const std::string& stdin_file = {})
    {
        args.push_back("--db");
        args.push_back(db);
        return run_cwhook(args, stdin_file);
    }
};

TEST_F(Events, RawIsByteIdenticalToTheFixture)
{
    const auto body = fixture("manage-ticket-updated-invalid-utf8.json");
    running_app app(options(db, [](callback::app_settings& s) { s.verify.mode = callback::verify_mode::off; }));
    http_call call;
    call.body = body;
    call.headers.emplace_back("Content-Type", "application/json");
    const auto id = deliver(app, call);
    ASSERT_GT(id, 0);

    const auto raw = cli({"events", "show", std::to_string(id), "--raw"});
    EXPECT_EQ(raw.exit_code, 0) << raw.err;
    EXPECT_EQ(raw.out.size(), body.size());
    EXPECT_TRUE(raw.out == body) << "stdout differs from the bytes sent";

    const auto shown = cli({"events", "show", std::to_string(id)});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    EXPECT_NE(shown.out.find("\"budgetHours\": 2.00"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("\"actualHours\": 1.50"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("Caf? printer ?? jammed"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("Content-Type: application/json"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("replays: none"), std::string::npos) << shown.out;

    const auto entity = cli({"events", "show", std::to_string(id), "--entity"});
    EXPECT_EQ(entity.exit_code, 0) << entity.err;
    EXPECT_EQ(entity.out.rfind("{\n  \"id\": 57961,", 0), 0u) << entity.out;

    const auto missing = cli({"events", "show", "999"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("no event 999"), std::string::npos) << missing.err;
    EXPECT_EQ(cli({"events", "show", "abc"}).exit_code, 2);
}

TEST_F(Events, ListFiltersAndFormats)
{
    running_app app(options(db));
    deliver(app, delivery(1, "ticket", "added"));
    deliver(app, delivery(2, "ticket", "updated"));
    deliver(app, delivery(3, "contact", "updated"));
    const auto last = deliver(app, delivery(4, "ticket", "deleted"));

    const auto table = cli({"events", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    const auto rows = lines_of(table.out);
    ASSERT_EQ(rows.size(), 5u) << table.out;
    EXPECT_EQ(rows[0].rfind("ID", 0), 0u);
    EXPECT_NE(rows[0].find("DELIVERIES"), std::string::npos);
    EXPECT_EQ(rows[1].rfind(std::to_string(last) + " ", 0), 0u) << "newest first:\n" << table.out;
    EXPECT_EQ(rows[0].find("TYPE"), rows[1].find("ticket"));

    const auto tickets = cli({"events", "list", "--type", "ticket", "--jsonl"});
    ASSERT_EQ(tickets.exit_code, 0) << tickets.err;
    EXPECT_EQ(lines_of(tickets.out).size(), 3u) << tickets.out;
    EXPECT_EQ(count_of(tickets.out, "\"type\":\"ticket\""), 3u);

    const auto updated = cli({"events", "list", "--action", "updated", "--since", "1h", "--entity-id", "3", "--json"});
    ASSERT_EQ(updated.exit_code, 0) << updated.err;
    EXPECT_EQ(updated.out.front(), '[');
    EXPECT_EQ(count_of(updated.out, "\"entity_id\":3"), 1u) << updated.out;
    EXPECT_EQ(count_of(updated.out, "\"id\":"), 1u) << updated.out;

    const auto none = cli({"events", "list", "--until", "2h", "--jsonl"});
    EXPECT_EQ(none.exit_code, 0);
    EXPECT_EQ(none.out, "");

    const auto limited = cli({"events", "list", "--limit", "2", "--jsonl", "--status", "verified"});
    EXPECT_EQ(lines_of(limited.out).size(), 2u);

    const auto bad = cli({"events", "list", "--since", "last tuesday"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--since: \"last tuesday\""), std::string::npos) << bad.err;
    EXPECT_EQ(cli({"events", "list", "--status", "fine"}).exit_code, 2);

    const auto stats = cli({"events", "stats", "--json"});
    EXPECT_EQ(stats.exit_code, 0) << stats.err;
    EXPECT_NE(stats.out.find(R"("total":4)"), std::string::npos) << stats.out;
    EXPECT_NE(stats.out.find(R"("by_type":{"ticket":3,"contact":1})"), std::string::npos) << stats.out;
}

TEST_F(Events, ExportImportRoundTrip)
{
    {
        running_app app(options(db, [](callback::app_settings& s) { s.verify.mode = callback::verify_mode::off; }));
        http_call odd;
        odd.body = fixture("manage-ticket-updated-invalid-utf8.json");
        deliver(app, odd);
        for (int i = 1; i <= 5; ++i) {
            deliver(app, delivery(i, i % 2 == 0 ? "contact" : "ticket"));
        }
        deliver(app, delivery(1, "ticket"));  // a redelivery: deliveries = 2
    }
    const auto exported = cli({"events", "export"});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    ASSERT_EQ(lines_of(exported.out).size(), 6u) << exported.out;
    write_file(dir.file("events.jsonl"), exported.out);

    const std::string other = dir.file("b.db");
    const auto imported = run_cwhook({"events", "import", "--db", other}, dir.file("events.jsonl"));
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    EXPECT_NE(imported.err.find("imported 6, already present 0"), std::string::npos) << imported.err;

    const auto again = run_cwhook({"events", "export", "--db", other});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, exported.out);  // same rows, same ids, same bytes

    const auto twice = run_cwhook({"events", "import", "--db", other, dir.file("events.jsonl")});
    EXPECT_EQ(twice.exit_code, 0) << twice.err;
    EXPECT_NE(twice.err.find("imported 0, already present 6"), std::string::npos) << twice.err;

    // The array format reads back too, and filters apply to export.
    const auto array = cli({"events", "export", "--format", "json", "--type", "contact"});
    ASSERT_EQ(array.exit_code, 0) << array.err;
    EXPECT_EQ(array.out.rfind("[\n", 0), 0u);
    write_file(dir.file("contacts.json"), array.out);
    const std::string third = dir.file("c.db");
    const auto contacts = run_cwhook({"events", "import", "--db", third, dir.file("contacts.json")});
    EXPECT_NE(contacts.err.find("imported 2, already present 0"), std::string::npos) << contacts.err;
    EXPECT_EQ(integrity_check(other), "ok");

    write_file(dir.file("broken.jsonl"), lines_of(exported.out)[0] + "\n{\"received_at_us\":1}\n");
    const auto broken = run_cwhook({"events", "import", "--db", dir.file("d.db"), dir.file("broken.jsonl")});
    EXPECT_EQ(broken.exit_code, 1);
    EXPECT_NE(broken.err.find("broken.jsonl:2: missing field status"), std::string::npos) << broken.err;
}

TEST_F(Events, PruneLeavesNewerRowsAndAConsistentDatabase)
{
    {
        running_app app(options(db));
        for (int i = 1; i <= 4; ++i) {
            deliver(app, delivery(i));
        }
    }
    {
        // Older rows, as an import from another machine would bring them.
        auto edb = store::event_db::open(db, store::db_access::read_write);
        ASSERT_TRUE(edb) << edb.error();
        auto fresh = (*edb)->get(1, false);
        ASSERT_TRUE(fresh && *fresh);
        std::vector<store::stored_event> old;
        for (int i = 0; i < 25; ++i) {
            auto e = **fresh;
            e.record.dedupe_key = fmt::format("m:old-{}", i);
            e.record.received_at_us = now_micros() - (40 + i) * 24 * hour_us;
            e.last_delivery_at_us = e.record.received_at_us;
            old.push_back(e);
        }
        ASSERT_TRUE((*edb)->import(old));
        ASSERT_TRUE((*edb)->record_replay({2, now_micros(), "http://127.0.0.1:1/", 200, "", ""}));
    }
    const auto dry = cli({"events", "prune", "--older-than", "30d", "--dry-run"});
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(dry.out.rfind("would delete 25 events", 0), 0u) << dry.out;
    EXPECT_EQ(count_rows(db, "events"), 29);

    const auto pruned = cli({"events", "prune", "--older-than", "30d"});
    EXPECT_EQ(pruned.exit_code, 0) << pruned.err;
    EXPECT_EQ(pruned.out.rfind("deleted 25 events", 0), 0u) << pruned.out;
    EXPECT_EQ(count_rows(db, "events"), 4);
    EXPECT_EQ(count_rows(db, "replays"), 1);
    EXPECT_EQ(integrity_check(db), "ok");
    EXPECT_EQ(cli({"events", "prune", "--older-than", "soon"}).exit_code, 2);
}

class Replay : public Events {
protected:
    std::string target_db = dir.file("var/b.db");

    // The receiver being replayed to: a second cwhook that verifies signatures.
    std::unique_ptr<running_app> receiver()
    {
        return std::make_unique<running_app>(options(target_db));
    }
    std::string url(running_app& b) { return fmt::format("http://127.0.0.1:{}/callbacks", b.http().port()); }
};

TEST_F(Replay, ReceiverVerifiesTheOriginalSignatureAndSeesTheHeader)
{
    running_app source(options(db));
    std::vector<std::int64_t> ids;
    for (int i = 1; i <= 5; ++i) {
        ids.push_back(deliver(source, delivery(i)));
    }
    auto b = receiver();

    const auto r = cli({"events", "replay", "--type", "ticket", "--to", url(*b), "--rate", "10", "--concurrency", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("sent 5, 2xx 5, non-2xx 0, failed 0"), std::string::npos) << r.out;

    b->stop();
    const auto rows = query_events(target_db);
    ASSERT_EQ(rows.size(), 5u);
    for (const auto& row : rows) {
        EXPECT_EQ(row.status, "verified");
        EXPECT_NE(row.headers.find("X-Cwhook-Replay-Of: "), std::string::npos) << row.headers;
        EXPECT_NE(row.headers.find("Content-Type: application/json; charset=utf-8"), std::string::npos) << row.headers;
    }
    const auto first_id = std::to_string(ids.front());
    EXPECT_EQ(count_rows(target_db, "events", "headers LIKE '%X-Cwhook-Replay-Of: " + first_id + "\n%'"), 1);
    // 5 events at 10 per second: the last is sent 0.4 s after the first (less the receiver's
    // key fetch, which delays only the first row's receive time).
    auto received = store::event_db::open(target_db, store::db_access::read_only);
    ASSERT_TRUE(received) << received.error();
    const auto list = (*received)->list(store::event_filter{.limit = 0});
    ASSERT_TRUE(list && list->size() == 5u);
    const auto spread = list->front().received_at_us - list->back().received_at_us;
    EXPECT_GE(spread, 300'000) << "rate limit not respected";

    const auto shown = cli({"events", "show", first_id, "--json"});
    EXPECT_NE(shown.out.find("\"http_status\": 200"), std::string::npos) << shown.out;
}

TEST_F(Replay, FailuresAreCountedAndExitOne)
{
    running_app source(options(db));
    const auto a = deliver(source, delivery(1));
    const auto b_id = deliver(source, delivery(2));
    auto b = receiver();

    // Re-signed with a key the receiver does not have: 401 for each.
    write_file(dir.file("wrong.key"), "not-the-signing-key\n");
    const auto wrong = cli({"events", "replay", std::to_string(a), std::to_string(b_id), "--to", url(*b),
                            "--sign-key-file", dir.file("wrong.key")});
    EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
    EXPECT_NE(wrong.out.find("sent 2, 2xx 0, non-2xx 2 (401 x2), failed 0"), std::string::npos) << wrong.out;

    // Re-signed with the right key: accepted.
    write_file(dir.file("right.key"), keys.key() + "\n");
    const auto right = cli({"events", "replay", std::to_string(a), "--to", url(*b), "--sign-key-file",
                            dir.file("right.key")});
    EXPECT_EQ(right.exit_code, 0) << right.out << right.err;

    // Nobody listening: failed, and --stop-on-error sends nothing after the first failure.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor closed(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto dead = fmt::format("http://127.0.0.1:{}/callbacks", closed.local_endpoint().port());
    closed.close();
    const auto down = cli({"events", "replay", std::to_string(a), std::to_string(b_id), "--to", dead, "--timeout", "2s"});
    EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
    EXPECT_NE(down.out.find("sent 0, 2xx 0, non-2xx 0, failed 2"), std::string::npos) << down.out;
    const auto stop = cli({"events", "replay", std::to_string(a), std::to_string(b_id), "--to", dead,
                           "--stop-on-error"});
    EXPECT_EQ(stop.exit_code, 1);
    EXPECT_NE(stop.out.find("failed 1, stopped"), std::string::npos) << stop.out;

    // Every attempt is in the history: 401, 200, failed, failed.
    auto edb = store::event_db::open(db, store::db_access::read_only);
    auto e = (*edb)->get(a);
    ASSERT_TRUE(e && *e);
    ASSERT_EQ((*e)->replays.size(), 4u);
    EXPECT_EQ((*e)->replays[0].http_status, 401);
    EXPECT_EQ((*e)->replays[1].http_status, 200);
    EXPECT_EQ((*e)->replays[2].http_status, 0);
    EXPECT_FALSE((*e)->replays[2].error.empty());

    const auto dry = cli({"events", "replay", "--type", "ticket", "--to", dead, "--dry-run"});
    EXPECT_EQ(dry.exit_code, 0);
    EXPECT_EQ(dry.out.rfind("2 events would be replayed", 0), 0u) << dry.out;
    EXPECT_EQ(cli({"events", "replay", "--to", dead}).exit_code, 2);  // neither ids nor filters
    EXPECT_EQ(cli({"events", "replay", "1", "--to", "ftp://x/"}).exit_code, 2);
}

class Admin : public Events {
protected:
    http_result get(const boost::asio::ip::tcp::endpoint& ep, std::string target, std::string token = {})
    {
        http_call c;
        c.method = "GET";
        c.target = std::move(target);
        if (!token.empty()) {
            c.headers.emplace_back("Authorization", "Bearer " + token);
        }
        return send(ep, c);
    }

    static boost::asio::ip::tcp::endpoint admin_ep(running_app& app)
    {
        const auto eps = app.get().admin_endpoints();
        EXPECT_FALSE(eps.empty());
        return {boost::asio::ip::make_address("127.0.0.1"), eps.empty() ? std::uint16_t{0} : eps.front().port()};
    }
};

TEST_F(Admin, OffLoopbackWithoutATokenUsesTheGeneratedOne)
{
    running_app app(options(db, [](callback::app_settings& s) { s.admin.listen = "0.0.0.0:0"; }));
    const auto ep = admin_ep(app);
    const auto token = read_file(dir.file("var/admin-token"));
    ASSERT_EQ(token.size(), 65u);  // 64 hex digits and a newline
    EXPECT_EQ(app.get().admin_token() + "\n", token);
    EXPECT_EQ(get(ep, "/api/events").status, 401);
    EXPECT_EQ(get(ep, "/api/events", app.get().admin_token()).status, 200);
}

TEST_F(Admin, OffLoopbackRequiresTheBearerToken)
{
    const std::string token = "0123456789abcdef-admin";
    running_app app(options(db, [&](callback::app_settings& s) {
        s.admin.listen = "0.0.0.0:0";
        s.admin.token = token;
    }));
    const auto ep = admin_ep(app);
    const auto none = get(ep, "/api/events");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.headers.at("www-authenticate"), "Bearer");
    EXPECT_EQ(get(ep, "/api/events", "wrong-token").status, 401);
    EXPECT_EQ(get(ep, "/api/events", token + "x").status, 401);
    EXPECT_EQ(get(ep, "/api/rejections", token.substr(0, 5)).status, 401);
    EXPECT_EQ(app.counter("cwhook_admin_unauthorized_total"), 4u);
    const auto ok = get(ep, "/api/events", token);
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.body, "{\"events\":[],\"next_cursor\":null}\n");
    EXPECT_EQ(app.counter("cwhook_admin_unauthorized_total"), 4u);
    // A configured token is not written anywhere.
    EXPECT_FALSE(std::filesystem::exists(dir.file("var/admin-token")));
    // The callback listener is not behind the token.
    EXPECT_EQ(send(app.http(), delivery(1)).status, 200);
}

TEST_F(Admin, MetricsAreScrapedFromTheAdminListenerBehindTheToken)
{
    const std::string token = "metrics-token-0123456789";
    running_app app(options(db, [&](callback::app_settings& s) {
        s.admin.listen = "0.0.0.0:0";
        s.admin.token = token;
    }));
    ASSERT_EQ(send(app.http(), delivery(1)).status, 200);
    const auto ep = admin_ep(app);
    EXPECT_EQ(get(ep, "/metrics").status, 401);
    const auto r = get(ep, "/metrics", token);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r.body.find("cwhook_build_info{version=\"" CWHOOK_VERSION "\"} 1"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("cwhook_events_by_type_total{type=\"ticket\""), std::string::npos) << r.body;
    // The request is counted once its answer is written, which the client may see first.
    EXPECT_TRUE(eventually([&] {
        return get(ep, "/metrics", token).body.find("cwhook_http_requests_total{route=\"/callbacks\",status=\"200\"} 1") !=
               std::string::npos;
    })) << get(ep, "/metrics", token).body;
    // The callback listener does not expose it.
    http_call c;
    c.method = "GET";
    c.target = "/metrics";
    EXPECT_EQ(send(app.http(), c).status, 404);
}

TEST_F(Admin, EventsRawRejectionsAndReplayJobs)
{
    auto b = std::make_unique<running_app>(options(dir.file("var/b.db")));
    const auto b_port = b->http().port();
    running_app app(options(db, [b_port](callback::app_settings& s) {
        s.admin.replay_targets = {fmt::format("127.0.0.1:{}", b_port)};
    }));
    const auto ep = admin_ep(app);
    const auto token = app.get().admin_token();
    const auto first = deliver(app, delivery(1));
    const auto second = deliver(app, delivery(2, "contact"));
    http_call junk;
    junk.body = "{not json";
    EXPECT_EQ(send(app.http(), junk).status, 400);

    auto page = get(ep, "/api/events?limit=1", token);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_NE(page.body.find(fmt::format("\"id\":{}", second)), std::string::npos) << page.body;
    const auto cpos = page.body.find("\"next_cursor\":\"");
    ASSERT_NE(cpos, std::string::npos) << page.body;
    const auto cursor = page.body.substr(cpos + 15, page.body.find('"', cpos + 15) - cpos - 15);
    auto next = get(ep, "/api/events?limit=1&cursor=" + cursor, token);
    EXPECT_NE(next.body.find(fmt::format("\"id\":{}", first)), std::string::npos) << next.body;
    EXPECT_NE(next.body.find("\"next_cursor\":null"), std::string::npos) << next.body;
    EXPECT_EQ(count_of(get(ep, "/api/events?type=contact", token).body, "\"id\":"), 1u);
    EXPECT_EQ(get(ep, "/api/events?since=whenever", token).status, 400);
    EXPECT_EQ(get(ep, "/api/events?limit=5000", token).status, 400);

    const auto one = get(ep, fmt::format("/api/events/{}", first), token);
    ASSERT_EQ(one.status, 200);
    EXPECT_NE(one.body.find("\"budgetHours\":2.00"), std::string::npos) << one.body;
    const auto raw = get(ep, fmt::format("/api/events/{}/raw", first), token);
    ASSERT_EQ(raw.status, 200);
    EXPECT_EQ(raw.body, make_payload(keys.url(), 1, "msg-ticket-1", "updated", "ticket"));
    EXPECT_EQ(raw.headers.at("x-cwhook-content-type"), "application/json; charset=utf-8");
    EXPECT_EQ(get(ep, "/api/events/9999", token).status, 404);

    // The 400 is answered before the writer commits the rejection row.
    http_result rejections;
    EXPECT_TRUE(eventually([&] {
        rejections = get(ep, "/api/rejections", token);
        return rejections.body.find("\"reason\":\"malformed_payload\"") != std::string::npos;
    })) << rejections.status << rejections.body;

    http_call start;
    start.target = "/api/events/replay";
    start.headers.emplace_back("Authorization", "Bearer " + token);
    start.body = fmt::format(R"({{"filter":{{"type":"ticket"}},"to":"http://127.0.0.1:{}/callbacks","rate":50}})",
                             b_port);
    const auto started = send(ep, start);
    ASSERT_EQ(started.status, 202) << started.body;
    const auto jpos = started.body.find("\"job\":\"");
    ASSERT_NE(jpos, std::string::npos);
    const auto job = started.body.substr(jpos + 7, 16);
    http_result status;
    EXPECT_TRUE(eventually([&] {
        status = get(ep, "/api/replays/" + job, token);
        return status.body.find("\"done\":true") != std::string::npos;
    }));
    EXPECT_NE(status.body.find("\"total\":1,\"finished\":1,\"sent\":1,\"ok\":1"), std::string::npos) << status.body;
    EXPECT_EQ(get(ep, "/api/replays/nosuchjob", token).status, 404);
    start.body = R"({"ids":[1],"to":"gopher://x"})";
    EXPECT_EQ(send(ep, start).status, 400);
    b->stop();
    EXPECT_EQ(count_rows(dir.file("var/b.db"), "events", "headers LIKE '%X-Cwhook-Replay-Of: " +
                                                             std::to_string(first) + "\n%'"),
              1);
}

TEST_F(Events, DaemonRetentionPrunesOldRowsInBatches)
{
    {
        running_app app(options(db));
        for (int i = 1; i <= 3; ++i) {
            deliver(app, delivery(i));
        }
    }
    {
        auto edb = store::event_db::open(db, store::db_access::read_write);
        ASSERT_TRUE(edb) << edb.error();
        auto fresh = (*edb)->get(1, false);
        std::vector<store::stored_event> old;
        for (int i = 0; i < 40; ++i) {
            auto e = **fresh;
            e.record.dedupe_key = fmt::format("m:old-{}", i);
            e.record.received_at_us = now_micros() - (3 + i) * hour_us;
            old.push_back(e);
        }
        ASSERT_TRUE((*edb)->import(old));
    }
    running_app app(options(db, [](callback::app_settings& s) {
        s.storage.retention = std::chrono::hours(2);
        s.storage.retention_batch = 7;
    }));
    EXPECT_TRUE(eventually([&] { return app.counter("cwhook_events_pruned_total") == 40; }))
        << app.counter("cwhook_events_pruned_total");
    // New callbacks keep flowing meanwhile.
    EXPECT_EQ(send(app.http(), delivery(10)).status, 200);
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 4);
    EXPECT_EQ(integrity_check(db), "ok");
}

} // namespace
} // namespace cwhook::test
