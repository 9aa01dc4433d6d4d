// What only the PostgreSQL backend has: its query plans, its connection strings.
#include "store/event_db.hpp"
#include "store/event_store.hpp"

#include "store_calls.hpp"
#include "support/eventually.hpp"
#include "support/pg_cluster.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

using namespace cwhook;
using namespace cwhook::store;
using namespace cwhook::store::test_calls;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000;

std::string plan_text(const std::vector<std::string>& lines)
{
    std::string out;
    for (const auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

} // namespace

TEST(PostgresStore, EveryFilterIsServedByAnIndex)
{
    test::pg_database pg;
    settings s;
    s.backend = backend::postgres;
    s.url = pg.conninfo();
    {
        auto db = event_db::open(s, db_access::read_write);
        ASSERT_TRUE(db) << db.error();
        // Enough rows, of enough kinds, for the planner's statistics to mean something.
        pg.cluster().psql(pg.name(), fmt::format(R"sql(
INSERT INTO events (received_at_us, status, dedupe_key, last_delivery_at_us, body_sha256, body, method, path,
                    query, client_addr, headers, content_type, signature, message_id, type, action, entity_id,
                    company_id, callback_id, key_url)
SELECT {} + g * 1000, (ARRAY['verified','pending','failed','unverified'])[1 + g % 4], 'm:' || g, {} + g * 1000,
       '', '\x00'::bytea, 'POST', '/', '', '', '', '', '', g::text,
       (ARRAY['ticket','company','contact','project','opportunity'])[1 + g % 5],
       (ARRAY['added','updated','deleted'])[1 + g % 3], g % 500, 'c' || (g % 50), g % 20, ''
FROM generate_series(1, 20000) AS g;
ANALYZE events;
)sql",
                                                 t0, t0));
    }
    // With sequential scans priced out, a plan still shows one only where no index serves. (A
    // selective filter may still sort the few rows its index found: that is cheap.)
    pg.cluster().psql("postgres", fmt::format("ALTER DATABASE \"{}\" SET enable_seqscan = off", pg.name()));
    auto opened = event_db::open(s, db_access::read_only);
    ASSERT_TRUE(opened) << opened.error();
    auto& db = *opened;
    const event_cursor cursor{t0 + 10'000'000, 10'000};
    const std::vector<std::pair<std::string, event_filter>> filters = {
        {"none", filter_of([](event_filter&) {})},
        {"type", filter_of([&](event_filter& f) { f.type = "ticket"; })},
        {"action", filter_of([&](event_filter& f) { f.action = "deleted"; })},
        {"type+action", filter_of([&](event_filter& f) {
             f.type = "ticket";
             f.action = "added";
         })},
        {"entity", filter_of([&](event_filter& f) { f.entity_id = 42; })},
        {"company", filter_of([&](event_filter& f) { f.company_id = "c7"; })},
        {"status", filter_of([&](event_filter& f) { f.status = event_status::failed; })},
        {"callback", filter_of([&](event_filter& f) { f.callback_id = 3; })},
        {"since", filter_of([&](event_filter& f) { f.since_us = t0 + 5'000'000; })},
        {"until", filter_of([&](event_filter& f) { f.until_us = t0 + 5'000'000; })},
        {"since+until", filter_of([&](event_filter& f) {
             f.since_us = t0 + 1'000'000;
             f.until_us = t0 + 2'000'000;
         })},
        {"cursor", filter_of([&](event_filter& f) { f.after = cursor; })},
        {"type+cursor", filter_of([&](event_filter& f) {
             f.type = "company";
             f.after = cursor;
         })},
        {"entity+cursor", filter_of([&](event_filter& f) {
             f.entity_id = 7;
             f.after = cursor;
         })},
        {"status+since", filter_of([&](event_filter& f) {
             f.status = event_status::pending;
             f.since_us = t0 + 5'000'000;
         })},
        {"company+type", filter_of([&](event_filter& f) {
             f.type = "contact";
             f.company_id = "c9";
         })},
    };
    for (const auto& [name, f] : filters) {
        auto plan = db->explain_list(f);
        ASSERT_TRUE(plan) << plan.error();
        const std::string text = plan_text(*plan);
        EXPECT_EQ(text.find("Seq Scan on events"), std::string::npos) << name << ":\n" << text;
        EXPECT_NE(text.find("Index"), std::string::npos) << name << ":\n" << text;
    }
}

TEST(PostgresStore, ConnectionStringsNeverShowTheirPassword)
{
    EXPECT_EQ(
        redact_url("postgresql://cwhook:s3cret@db1:5432,db2/cwhook?target_session_attrs=read-write").find("s3cret"),
        std::string::npos);
    const auto kv = redact_url("host=db1 user=cwhook password=s3cret dbname=cwhook");
    EXPECT_EQ(kv.find("s3cret"), std::string::npos) << kv;
    EXPECT_NE(kv.find("password=***"), std::string::npos) << kv;
    EXPECT_NE(kv.find("host=db1"), std::string::npos) << kv;
    EXPECT_EQ(check_url("postgresql://cwhook@db1/cwhook"), "");
    const auto bad = check_url("postgresql://cwhook:s3cret@db1/cwhook?no_such_option=1");
    EXPECT_NE(bad, "");
    EXPECT_EQ(bad.find("s3cret"), std::string::npos) << bad;
    EXPECT_NE(check_url(""), "");
    EXPECT_EQ(redact_url("postgresql://[bad"), "(unparsable connection string)");
}

TEST(PostgresStore, AnUnreachableServerIsAClearErrorAtStart)
{
    settings s;
    s.backend = backend::postgres;
    s.url = "postgresql://cwhook:s3cret@127.0.0.1:1/cwhook?connect_timeout=2";
    auto store = event_store::open(s);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().find("s3cret"), std::string::npos) << store.error();
    EXPECT_NE(store.error().find("127.0.0.1"), std::string::npos) << store.error();
}

TEST(PostgresStore, AReadOnlyServerIsRefusedWithARetryableErrorUntilItIsWritable)
{
    // What a failover looks like while the old primary (or a standby) still answers: every
    // new session is read-only.
    test::pg_database pg;
    settings s;
    s.backend = backend::postgres;
    s.url = pg.conninfo();
    auto opened = event_store::open(s);
    ASSERT_TRUE(opened) << opened.error();
    auto& store = **opened;
    const auto insert = [&store](const std::string& key) {
        event_record ev;
        ev.received_at_us = t0;
        ev.status = event_status::verified;
        ev.dedupe_key = "m:" + key;
        ev.body = "{}";
        ev.type = "ticket";
        ev.action = "added";
        return test_calls::insert(store, ev);
    };
    ASSERT_TRUE(insert("before"));
    pg.cluster().psql("postgres",
                      fmt::format("ALTER DATABASE \"{}\" SET default_transaction_read_only = on", pg.name()));
    pg.cluster().psql(
        "postgres",
        fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'", pg.name()));
    auto refused = insert("during");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), errc::storage_unavailable) << refused.error().message();
    pg.cluster().psql("postgres", fmt::format("ALTER DATABASE \"{}\" RESET default_transaction_read_only", pg.name()));
    result<insert_outcome> after;
    ASSERT_TRUE(test::eventually(
        [&] {
            after = insert("during");
            return static_cast<bool>(after);
        },
        std::chrono::seconds(30)));
    EXPECT_FALSE(after->duplicate);
}

TEST(PostgresStore, ALockHeldElsewhereIsARetryableRefusalNotAnEndlessWait)
{
    // An operator's transaction holds the events table: deliveries must get an answer Manage
    // retries (429) before Manage's own 5 s timeout, which it never retries.
    test::pg_database pg;
    settings s;
    s.backend = backend::postgres;
    s.url = pg.conninfo();
    auto opened = event_store::open(s);
    ASSERT_TRUE(opened) << opened.error();
    auto& store = **opened;
    event_record ev;
    ev.received_at_us = t0;
    ev.status = event_status::verified;
    ev.dedupe_key = "m:locked";
    ev.body = "{}";
    ev.type = "ticket";
    ev.action = "added";
    std::thread holder([&pg] { pg.psql("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;"); });
    ASSERT_TRUE(test::eventually([&pg] {
        return pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                       "WHERE c.relname = 'events' AND l.mode = 'ExclusiveLock' AND l.granted") == "1";
    }));
    const auto started = std::chrono::steady_clock::now();
    auto refused = test_calls::insert(store, ev);
    const auto waited = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), errc::storage_busy) << refused.error().message();
    EXPECT_LT(waited, std::chrono::seconds(5));
    holder.join();
    auto after = test_calls::insert(store, ev);
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_FALSE(after->duplicate);
}
