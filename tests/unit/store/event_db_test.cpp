#include "store/event_db.hpp"

#include "store/detail/schema.hpp"
#include "store/event_store.hpp"
#include "store/sqlite.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

// Filters are written with designated initializers naming only the terms a case sets; the
// rest keep their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace std::string_literals;
using namespace cwhook;
using namespace cwhook::store;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1'764'302'400'000'000; // 2025-11-28T04:00:00Z
constexpr std::int64_t hour = 3'600'000'000;

// A database file in a directory of its own.
class temp_db {
public:
    std::string path() const { return dir_.file("events.db"); }

private:
    cwhook::test::temp_dir dir_;
};

stored_event make(std::int64_t n, std::int64_t at_us, std::string type = "ticket", std::string action = "updated",
                  event_status status = event_status::verified)
{
    stored_event e;
    auto& r = e.record;
    r.received_at_us = at_us;
    r.status = status;
    r.dedupe_key = fmt::format("m:{}", n);
    r.body = fmt::format(R"({{"ID":{},"Entity":"{{\"hours\":2.00}}"}})", n) + "\xff"s;
    r.body_sha256 = std::string(64, 'a');
    r.method = "POST";
    r.path = "/callbacks";
    r.client_addr = "192.0.2.1";
    r.headers = "Content-Type: application/json\n";
    r.content_type = "application/json";
    r.signature = "sig";
    r.message_id = fmt::format("{}", n);
    r.type = std::move(type);
    r.action = std::move(action);
    r.entity_id = 1000 + n % 7;
    r.company_id = n % 2 == 0 ? "Cobalt" : "Nickel";
    r.callback_id = n % 3;
    r.key_url = "https://na.myconnectwise.net/key";
    e.deliveries = 1;
    e.last_delivery_at_us = at_us;
    return e;
}

std::unique_ptr<event_db> open_rw(const std::string& path)
{
    auto db = event_db::open(path, db_access::read_write);
    EXPECT_TRUE(db) << db.error();
    return db ? std::move(*db) : nullptr;
}

// n events, one every minute from t0 back, types and actions rotating.
void fill(event_db& db, int n)
{
    static const char* types[] = {"ticket", "contact", "company"};
    static const char* actions[] = {"added", "updated", "deleted"};
    std::vector<stored_event> rows;
    for (int i = 0; i < n; ++i) {
        rows.push_back(make(i, t0 - i * 60'000'000LL, types[i % 3], actions[(i / 3) % 3],
                            i % 5 == 0 ? event_status::pending : event_status::verified));
    }
    auto r = db.import(rows);
    ASSERT_TRUE(r) << r.error();
    ASSERT_EQ(r->inserted, n);
}

std::vector<std::int64_t> ids_of(const std::vector<event_summary>& rows)
{
    std::vector<std::int64_t> out;
    for (const auto& r : rows) {
        out.push_back(r.id);
    }
    return out;
}

} // namespace

TEST(EventDb, ListIsNewestFirstAndFilters)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    fill(*db, 30);

    event_filter all;
    all.limit = 0;
    auto rows = db->list(all);
    ASSERT_TRUE(rows) << rows.error();
    ASSERT_EQ(rows->size(), 30u);
    for (std::size_t i = 1; i < rows->size(); ++i) {
        EXPECT_GT((*rows)[i - 1].received_at_us, (*rows)[i].received_at_us);
    }

    event_filter f;
    f.type = "contact";
    f.limit = 0;
    rows = db->list(f);
    ASSERT_TRUE(rows);
    EXPECT_EQ(rows->size(), 10u);
    for (const auto& r : *rows) {
        EXPECT_EQ(r.type, "contact");
    }

    f = {};
    f.limit = 0;
    f.action = "deleted";
    f.company_id = "Cobalt";
    rows = db->list(f);
    ASSERT_TRUE(rows);
    for (const auto& r : *rows) {
        EXPECT_EQ(r.action, "deleted");
        EXPECT_EQ(r.company_id.value_or(""), "Cobalt");
    }
    EXPECT_FALSE(rows->empty());

    f = {};
    f.limit = 0;
    f.status = event_status::pending;
    EXPECT_EQ(db->list(f)->size(), 6u);
    f = {};
    f.limit = 0;
    f.entity_id = 1003;
    EXPECT_EQ(db->list(f)->size(), 4u); // n = 3, 10, 17, 24
    f = {};
    f.limit = 0;
    f.callback_id = 0;
    EXPECT_EQ(db->list(f)->size(), 10u);

    // [since, until): minutes 5..9 back.
    f = {};
    f.limit = 0;
    f.since_us = t0 - 9 * 60'000'000LL;
    f.until_us = t0 - 4 * 60'000'000LL;
    rows = db->list(f);
    ASSERT_TRUE(rows);
    EXPECT_EQ(rows->size(), 5u);
    EXPECT_EQ(rows->front().received_at_us, t0 - 5 * 60'000'000LL);
    EXPECT_EQ(rows->back().received_at_us, t0 - 9 * 60'000'000LL);

    EXPECT_EQ(*db->count(event_filter{.type = "ticket", .limit = 0}), 10);
}

TEST(EventDb, CursorPagesWithoutGapsOrRepeats)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    fill(*db, 25);
    // Two rows with the same time: the id breaks the tie.
    std::vector<stored_event> same{make(100, t0 - 3 * 60'000'000LL), make(101, t0 - 3 * 60'000'000LL)};
    ASSERT_TRUE(db->import(same));

    event_filter all;
    all.limit = 0;
    const auto expected = ids_of(*db->list(all));

    std::vector<std::int64_t> seen;
    event_filter page;
    page.limit = 4;
    for (int guard = 0; guard < 20; ++guard) {
        auto rows = db->list(page);
        ASSERT_TRUE(rows);
        if (rows->empty()) {
            break;
        }
        for (const auto& r : *rows) {
            seen.push_back(r.id);
        }
        page.after = event_cursor{rows->back().received_at_us, rows->back().id};
    }
    EXPECT_EQ(seen, expected);
}

TEST(EventDb, EveryFilterUsesAnIndex)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    fill(*db, 200);

    std::vector<std::pair<std::string, event_filter>> cases;
    cases.push_back({"type", event_filter{.type = "ticket"}});
    cases.push_back({"action", event_filter{.action = "added"}});
    cases.push_back({"type+action", event_filter{.type = "ticket", .action = "added"}});
    cases.push_back({"entity", event_filter{.entity_id = 1001}});
    cases.push_back({"company", event_filter{.company_id = "Cobalt"}});
    cases.push_back({"status", event_filter{.status = event_status::failed}});
    cases.push_back({"source", event_filter{.source = event_source::catch_up}});
    cases.push_back({"since", event_filter{.since_us = t0 - hour}});
    cases.push_back({"until", event_filter{.until_us = t0 - hour}});
    cases.push_back({"since+until", event_filter{.since_us = t0 - 2 * hour, .until_us = t0 - hour}});
    cases.push_back({"callback", event_filter{.callback_id = 2}});
    cases.push_back({"type+since", event_filter{.type = "ticket", .since_us = t0 - hour}});
    cases.push_back({"company+status", event_filter{.company_id = "Cobalt", .status = event_status::pending}});
    cases.push_back({"type+cursor", event_filter{.type = "ticket", .after = event_cursor{t0 - hour, 50}}});
    for (auto& [name, f] : cases) {
        auto plan = db->explain_list(f);
        ASSERT_TRUE(plan) << plan.error();
        std::string text;
        for (const auto& line : *plan) {
            text += line + "\n";
        }
        bool searched = false;
        for (const auto& line : *plan) {
            // "SCAN events" (with or without an index) walks the whole table or index.
            EXPECT_EQ(line.find("SCAN"), std::string::npos) << name << ":\n" << text;
            EXPECT_EQ(line.find("TEMP B-TREE"), std::string::npos) << name << ":\n" << text;
            searched = searched || line.find("USING INDEX") != std::string::npos ||
                       line.find("USING COVERING INDEX") != std::string::npos;
        }
        EXPECT_TRUE(searched) << name << ":\n" << text;
    }
}

TEST(EventDb, GetReturnsTheWholeRowAndReplayHistory)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    fill(*db, 3);
    auto first = db->list(event_filter{.limit = 1});
    ASSERT_TRUE(first);
    const auto id = first->front().id;
    ASSERT_TRUE(db->record_replay({id, t0 + 5, "http://127.0.0.1:9/x", 200, "", ""}));
    ASSERT_TRUE(db->record_replay({id, t0 + 9, "http://127.0.0.1:9/x", 0, "connect: refused", "job1"}));
    auto e = db->get(id);
    ASSERT_TRUE(e) << e.error();
    ASSERT_TRUE(*e);
    EXPECT_EQ((*e)->record.body, make(0, 0).record.body);
    EXPECT_EQ((*e)->record.type, "ticket");
    ASSERT_EQ((*e)->replays.size(), 2u);
    EXPECT_EQ((*e)->replays[0].http_status, 200);
    EXPECT_EQ((*e)->replays[1].error, "connect: refused");
    EXPECT_EQ((*e)->replays[1].job, "job1");
    auto missing = db->get(999'999);
    ASSERT_TRUE(missing);
    EXPECT_FALSE(*missing);
}

TEST(EventDb, ImportSkipsDuplicatesAndKeepsBytes)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    std::vector<stored_event> rows{make(1, t0), make(2, t0 + 1)};
    auto r = db->import(rows);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->inserted, 2);
    r = db->import(rows);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->inserted, 0);
    EXPECT_EQ(r->duplicates, 2);
    auto back = db->list(event_filter{.limit = 0}, scan_order::oldest_first);
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*db->get(back->front().id))->record.body, rows[0].record.body);
}

TEST(EventDb, ScanPagesThroughEverythingInOrder)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    fill(*db, 23);
    std::vector<std::int64_t> times;
    auto r = db->scan(
        event_filter{.limit = 0}, scan_order::oldest_first,
        [&](const stored_event& e) {
            times.push_back(e.record.received_at_us);
            return true;
        },
        5);
    ASSERT_TRUE(r) << r.error();
    ASSERT_EQ(times.size(), 23u);
    EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));

    std::size_t n = 0;
    ASSERT_TRUE(db->scan(
        event_filter{.limit = 7}, scan_order::newest_first,
        [&](const stored_event&) {
            ++n;
            return true;
        },
        3));
    EXPECT_EQ(n, 7u);
}

TEST(EventDb, PruneKeepsNewerRowsPendingAndConsistency)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    fill(*db, 120); // two hours, one a minute; every fifth pending
    auto oldest = db->list(event_filter{.limit = 1}, scan_order::oldest_first);
    ASSERT_TRUE(db->record_replay({oldest->front().id, t0, "http://x/", 200, "", ""}));

    const std::int64_t cutoff = t0 - hour; // rows 61..119 are older
    auto would = db->count_older(cutoff, std::nullopt);
    ASSERT_TRUE(would);
    auto n = db->prune(cutoff, std::nullopt, 7);
    ASSERT_TRUE(n) << n.error();
    EXPECT_EQ(*n, *would);
    EXPECT_EQ(*n, 59 - 11); // the 11 pending ones among 61..119 stay

    auto left = db->list(event_filter{.limit = 0});
    for (const auto& r : *left) {
        EXPECT_TRUE(r.received_at_us >= cutoff || r.status == event_status::pending) << r.id;
    }
    EXPECT_EQ(left->size(), 120u - static_cast<std::size_t>(*n));

    auto pending = db->prune(cutoff, event_status::pending);
    ASSERT_TRUE(pending);
    EXPECT_EQ(*pending, 11);

    auto problems = db->check();
    ASSERT_TRUE(problems) << problems.error();
    EXPECT_EQ(*problems, std::vector<std::string>{"ok"});
}

TEST(EventDb, StatsCountByTypeActionStatusDay)
{
    temp_db t;
    auto db = open_rw(t.path());
    ASSERT_TRUE(db);
    std::vector<stored_event> rows{make(1, t0), make(2, t0 - 5 * hour, "contact"),
                                   make(3, t0 - 25 * hour, "ticket", "added", event_status::failed)};
    ASSERT_TRUE(db->import(rows));
    auto s = db->stats(std::nullopt);
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->total, 3);
    ASSERT_EQ(s->by_type.size(), 2u);
    EXPECT_EQ(s->by_type[0].key, "ticket");
    EXPECT_EQ(s->by_type[0].count, 2);
    ASSERT_EQ(s->by_day.size(), 2u);
    EXPECT_EQ(s->by_day[0].key, "2025-11-27"); // 23:00 and 03:00
    EXPECT_EQ(s->by_day[0].count, 2);
    EXPECT_EQ(s->by_day[1].key, "2025-11-28");
    EXPECT_EQ(s->by_day[1].count, 1);
    auto recent = db->stats(t0 - 6 * hour);
    EXPECT_EQ(recent->total, 2);
}

TEST(EventDb, MigratesAVersion1DatabaseInPlace)
{
    temp_db t;
    {
        // A version-1 file: today's schema minus what versions 2, 3 and 4 added (but v4's
        // wider status CHECK, which no v1 row can tell).
        auto db = open_rw(t.path());
        ASSERT_TRUE(db);
        fill(*db, 10);
    }
    {
        auto raw = sqlite::database::open(t.path(), SQLITE_OPEN_READWRITE);
        ASSERT_TRUE(raw);
        ASSERT_TRUE(raw->exec("DROP TABLE heartbeats; DROP TABLE catch_up_runs; DROP TABLE catch_up_watermarks; "
                              "DROP INDEX events_synth; DROP INDEX events_source; ALTER TABLE events DROP COLUMN "
                              "entity_updated_at_us; ALTER TABLE events DROP COLUMN twin_of; ALTER TABLE events DROP "
                              "COLUMN source;"));
        ASSERT_TRUE(raw->exec("DROP TABLE delivery_attempts; DROP TABLE deliveries; DROP TABLE destinations; "
                              "DROP TABLE counters; DROP INDEX events_feed; ALTER TABLE events DROP COLUMN feed_seq;"));
        ASSERT_TRUE(raw->exec("DROP TABLE replays; DROP INDEX events_type; DROP INDEX events_action; "
                              "DROP INDEX rejections_reason; PRAGMA user_version = 1;"));
    }
    {
        auto ro = event_db::open(t.path(), db_access::read_only);
        ASSERT_TRUE(ro) << ro.error();
        EXPECT_EQ((*ro)->schema_version(), 1);
        EXPECT_EQ((*ro)->list(event_filter{.type = "ticket", .limit = 0})->size(), 4u); // still readable
    }
    settings s;
    s.path = t.path();
    auto st = event_store::open(s);
    ASSERT_TRUE(st) << st.error();
    (*st)->stop();
    auto db = event_db::open(t.path(), db_access::read_only);
    ASSERT_TRUE(db);
    EXPECT_EQ((*db)->schema_version(), 4);
    EXPECT_EQ((*db)->list(event_filter{.limit = 0})->size(), 10u);
    auto plan = (*db)->explain_list(event_filter{.type = "ticket"});
    ASSERT_TRUE(plan);
    EXPECT_NE(plan->front().find("events_type"), std::string::npos) << plan->front();
    auto problems = (*db)->check();
    EXPECT_EQ(*problems, std::vector<std::string>{"ok"});
}

TEST(EventDb, MigratesAVersion3DatabaseKeepingEveryRowAndReference)
{
    temp_db t;
    {
        // A version-3 file exactly as cwhook 3 made it, with events, their deliveries and
        // attempts, and replays: rows that reference events (ON DELETE CASCADE).
        auto raw = sqlite::database::open(t.path(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        ASSERT_TRUE(raw);
        for (std::int64_t v = 0; v < 3; ++v) {
            const std::string sql(detail::sqlite_migration(v));
            ASSERT_TRUE(raw->exec(sql.c_str())) << v;
        }
        ASSERT_TRUE(raw->exec(R"sql(
PRAGMA user_version = 3;
INSERT INTO events (id, received_at_us, status, verify_reason, dedupe_key, deliveries, last_delivery_at_us,
    verify_attempts, next_verify_at_us, body_sha256, body, method, path, query, client_addr, headers, content_type,
    signature, message_id, type, action, entity_id, company_id, callback_id, key_url, feed_seq)
VALUES
 (1, 100, 'verified', '', 'm:1', 2, 150, 0, 0, 'aa', X'7B7DFF', 'POST', '/cb', '', '192.0.2.1', 'H: v', 'application/json',
  's', '1', 'ticket', 'added', 42, 'Cobalt', 7, 'k', 1),
 (2, 200, 'pending', 'key_fetch_failed', 'm:2', 1, 200, 1, 900, 'bb', X'00', 'POST', '/cb', 'a=1', '192.0.2.1', '', '',
  '', NULL, 'contact', 'updated', NULL, NULL, NULL, 'k', NULL),
 (3, 300, 'failed', 'bad_signature', 'b:3', 1, 300, 0, 0, 'cc', X'01', 'POST', '/cb', '', '192.0.2.2', '', '', '',
  NULL, 'ticket', 'deleted', 43, 'Nickel', 8, 'k', NULL);
UPDATE counters SET value = 1 WHERE name = 'feed';
INSERT INTO destinations (name) VALUES ('crm');
INSERT INTO deliveries (id, event_id, destination, state, ordering_key, created_at_us, next_attempt_at_us, attempts)
VALUES (1, 1, 'crm', 'failing', 'ticket:42', 150, 999, 1);
INSERT INTO delivery_attempts (delivery_id, at_us, http_status, latency_us, error) VALUES (1, 160, 503, 10, 'HTTP 503');
INSERT INTO replays (event_id, at_us, target, http_status) VALUES (1, 400, 'http://127.0.0.1:1/', 200),
    (3, 500, 'http://127.0.0.1:1/', 0);
)sql"));
    }
    settings s;
    s.path = t.path();
    auto st = event_store::open(s);
    ASSERT_TRUE(st) << st.error();
    (*st)->stop();

    auto raw = sqlite::database::open(t.path(), SQLITE_OPEN_READWRITE);
    ASSERT_TRUE(raw);
    EXPECT_EQ(*raw->query_int64("PRAGMA user_version"), 4);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM events"), 3);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM deliveries"), 1);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM delivery_attempts"), 1);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM replays"), 2);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM events WHERE source = 'callback' AND twin_of IS NULL AND "
                                "entity_updated_at_us IS NULL"),
              3);
    EXPECT_EQ(*raw->query_int64("SELECT feed_seq FROM events WHERE id = 1"), 1);
    EXPECT_EQ(*raw->query_text("SELECT hex(body) FROM events WHERE id = 1"), "7B7DFF");
    EXPECT_EQ(*raw->query_text("SELECT typeof(body) FROM events WHERE id = 1"), "blob");
    // Every index of v1-v4 is there, the partial ones too.
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' "
                                "AND name LIKE 'events_%'"),
              12);
    EXPECT_EQ(*raw->query_text("SELECT sql FROM sqlite_schema WHERE name = 'events_due_pending'"),
              "CREATE INDEX events_due_pending  ON events (status, next_verify_at_us) WHERE status = 'pending'");
    // The references still point at events: they hold, and deleting an event still cascades.
    EXPECT_EQ(*raw->query_text("PRAGMA integrity_check"), "ok");
    ASSERT_TRUE(raw->exec("PRAGMA foreign_keys = ON"));
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM pragma_foreign_key_check"), 0);
    ASSERT_TRUE(raw->exec("DELETE FROM events WHERE id = 1"));
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM deliveries"), 0);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM delivery_attempts"), 0);
    EXPECT_EQ(*raw->query_int64("SELECT count(*) FROM replays"), 1);
    // The new status is accepted, an unknown one still refused.
    EXPECT_TRUE(raw->exec("UPDATE events SET status = 'synthesized', source = 'catch_up' WHERE id = 3"));
    EXPECT_FALSE(raw->exec("UPDATE events SET status = 'bogus' WHERE id = 3"));
    EXPECT_FALSE(raw->exec("UPDATE events SET source = 'bogus' WHERE id = 3"));

    auto db = event_db::open(t.path(), db_access::read_only);
    ASSERT_TRUE(db) << db.error();
    auto pending = (*db)->get(2);
    ASSERT_TRUE(pending && *pending);
    EXPECT_EQ((*pending)->record.status, event_status::pending);
    EXPECT_EQ((*pending)->record.verify_reason, "key_fetch_failed");
    EXPECT_EQ((*pending)->record.query, "a=1");
    EXPECT_EQ((*pending)->replays.size(), 0u);
    auto problems = (*db)->check();
    ASSERT_TRUE(problems) << problems.error();
    EXPECT_EQ(*problems, std::vector<std::string>{"ok"});
}

TEST(EventDb, ReadOnlyRefusesMissingFileAndWrites)
{
    temp_db t;
    EXPECT_FALSE(event_db::open(t.path(), db_access::read_only));
    {
        auto db = open_rw(t.path());
        fill(*db, 2);
    }
    auto ro = event_db::open(t.path(), db_access::read_only);
    ASSERT_TRUE(ro);
    EXPECT_FALSE((*ro)->prune(t0 + hour, std::nullopt));
    EXPECT_EQ((*ro)->list(event_filter{.limit = 0})->size(), 2u);
}

TEST(EventDb, ReadWriteCreatesAPrivateFolderAndFile)
{
    temp_db t;
    const auto old_umask = ::umask(0);
    const auto path = fs::path(t.path()).parent_path() / "made" / "events.db";
    {
        auto db = open_rw(path.string());
        ASSERT_TRUE(db);
        fill(*db, 1);
        struct stat st {};
        for (const auto& [p, want] :
             std::initializer_list<std::pair<fs::path, unsigned>>{{path.parent_path(), 0700u},
                                                                  {path, 0600u},
                                                                  {path.string() + "-wal", 0600u},
                                                                  {path.string() + "-shm", 0600u}}) {
            ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
            EXPECT_EQ(st.st_mode & 07777, want) << p;
        }
    }
    ::umask(old_umask);
}

TEST(EventDb, Rejections)
{
    temp_db t;
    settings s;
    s.path = t.path();
    auto st = event_store::open(s);
    ASSERT_TRUE(st);
    for (int i = 0; i < 3; ++i) {
        rejection_record r;
        r.received_at_us = t0 + i;
        r.http_status = 401;
        r.reason = i == 1 ? "malformed_payload" : "bad_signature";
        r.body_head = "x\xff";
        r.body_size = 2;
        ASSERT_TRUE((*st)->submit_rejection(r));
    }
    (*st)->stop();
    auto db = event_db::open(t.path(), db_access::read_only);
    ASSERT_TRUE(db);
    auto all = (*db)->rejections(rejection_filter{});
    ASSERT_TRUE(all) << all.error();
    ASSERT_EQ(all->size(), 3u);
    EXPECT_GT((*all)[0].id, (*all)[1].id);
    auto bad = (*db)->rejections(rejection_filter{.reason = "bad_signature"});
    EXPECT_EQ(bad->size(), 2u);
    auto one = (*db)->rejection((*all)[0].id);
    ASSERT_TRUE(one && *one);
    EXPECT_EQ((*one)->record.body_head, "x\xff");
}

TEST(EventStoreRetention, PruneRunsInTheWriter)
{
    temp_db t;
    {
        auto db = open_rw(t.path());
        fill(*db, 120);
    }
    settings s;
    s.path = t.path();
    auto st = event_store::open(s);
    ASSERT_TRUE(st);
    std::int64_t total = 0;
    for (;;) {
        std::promise<result<prune_outcome>> p;
        auto f = p.get_future();
        ASSERT_TRUE((*st)->submit_prune(t0 - hour, 10, [&p](result<prune_outcome> r) { p.set_value(r); }));
        auto r = f.get();
        ASSERT_TRUE(r);
        total += r->deleted;
        if (r->deleted < 10) {
            break;
        }
    }
    (*st)->stop();
    EXPECT_EQ(total, 59 - 11);
    auto db = event_db::open(t.path(), db_access::read_only);
    EXPECT_EQ(*(*db)->count(event_filter{.limit = 0}), 120 - total);
    EXPECT_EQ(*(*db)->check(), std::vector<std::string>{"ok"});
}
