// One set of store tests, run against both backends: SQLite in a temp file and PostgreSQL in a
// database of its own on the test cluster (tests/support/pg_cluster.hpp). Whatever a caller
// can observe through event_store and event_db (dedupe, order, cursors, claims, retention,
// failures and recovery, bytes) must be the same on both.
#include "store/event_db.hpp"
#include "store/event_store.hpp"

#include "store_calls.hpp"
#include "support/eventually.hpp"
#include "support/pg_cluster.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::string_literals;
using namespace std::chrono_literals;
using namespace cwhook;
using namespace cwhook::store;
using namespace cwhook::store::test_calls;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000;

event_record make_event(std::string key, std::int64_t at_us = t0, event_status status = event_status::verified)
{
    event_record ev;
    ev.received_at_us = at_us;
    ev.status = status;
    ev.verify_reason = status == event_status::verified ? "" : "key_fetch_failed";
    ev.dedupe_key = "m:" + key;
    ev.body_sha256 = std::string(64, 'a');
    ev.body = fmt::format(R"({{"MessageId":"{}","Action":"updated","Type":"ticket","ID":42}})", key);
    ev.method = "POST";
    ev.path = "/callbacks/manage";
    ev.client_addr = "192.0.2.10";
    ev.headers = "Content-Type: application/json\n";
    ev.content_type = "application/json";
    ev.signature = "c2lnbmF0dXJl";
    ev.message_id = key;
    ev.type = "ticket";
    ev.action = "updated";
    ev.entity_id = 42;
    ev.company_id = "training";
    ev.callback_id = 7;
    ev.key_url = "https://eu.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkey/index.rails";
    ev.next_verify_at_us = status == event_status::pending ? at_us : 0;
    return ev;
}

// The failures ingest answers with 429 (+ Retry-After), so that Manage delivers again.
bool retryable(const boost::system::error_code& ec)
{
    return ec == errc::storage_busy || ec == errc::storage_full || ec == errc::storage_unavailable ||
           ec == errc::storage_queue_full;
}

std::string backend_name(const ::testing::TestParamInfo<backend>& info)
{
    return info.param == backend::sqlite ? "sqlite" : "postgres";
}

} // namespace

class StoreConformance : public ::testing::TestWithParam<backend> {
protected:
    void SetUp() override
    {
        s_.busy_timeout = 5s;
        if (GetParam() == backend::postgres) {
            pg_ = std::make_unique<test::pg_database>();
            s_.backend = backend::postgres;
            s_.url = pg_->conninfo();
        } else {
            s_.path = dir_.file("events.db");
        }
    }

    std::unique_ptr<event_store> open_store()
    {
        auto store = event_store::open(s_);
        EXPECT_TRUE(store) << store.error();
        return store ? std::move(*store) : nullptr;
    }

    std::unique_ptr<event_db> open_db(db_access access = db_access::read_write)
    {
        auto db = event_db::open(s_, access);
        EXPECT_TRUE(db) << db.error();
        return db ? std::move(*db) : nullptr;
    }

    std::vector<std::int64_t> all_ids(event_db& db, const event_filter& f, scan_order order)
    {
        std::vector<std::int64_t> out;
        auto r = db.scan(
            f, order,
            [&out](const stored_event& e) {
                out.push_back(e.id);
                return true;
            },
            3);
        EXPECT_TRUE(r) << r.error();
        return out;
    }

    test::temp_dir dir_;
    std::unique_ptr<test::pg_database> pg_;
    settings s_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values(backend::sqlite, backend::postgres),
                         backend_name);

TEST_P(StoreConformance, BodiesComeBackByteExact)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    std::string body;
    for (int i = 0; i < 256; ++i) {
        body += static_cast<char>(i); // NUL, invalid UTF-8, everything
    }
    body += body;
    auto ev = make_event("bytes");
    ev.body = body;
    auto r = insert(*store, ev);
    ASSERT_TRUE(r) << r.error().message();
    store->stop();
    auto db = open_db();
    auto got = db->get(r->id);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->record.body, body);
    EXPECT_EQ((*got)->record.message_id, "bytes");
    EXPECT_EQ((*got)->record.entity_id, 42);
    EXPECT_EQ((*got)->record.member_id, std::nullopt);
    EXPECT_EQ((*got)->record.received_at_us, t0);
}

TEST_P(StoreConformance, OddRequestBytesNeverSinkTheirBatch)
{
    // A raw header byte that is not UTF-8, or a NUL: PostgreSQL text refuses both. The row is
    // still stored, and so are the others committed with it.
    auto store = open_store();
    ASSERT_TRUE(store);
    std::vector<awaiter<result<insert_outcome>>> done(3);
    auto odd = make_event("odd");
    odd.headers = "X-Odd: \xff\xfe\x00!\n"s;
    odd.path = "/callbacks/\xc3(";
    ASSERT_TRUE(store->submit_event(make_event("before"), done[0].callback()));
    ASSERT_TRUE(store->submit_event(odd, done[1].callback()));
    ASSERT_TRUE(store->submit_event(make_event("after"), done[2].callback()));
    for (auto& d : done) {
        auto r = d.get();
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_FALSE(r->duplicate);
    }
    store->stop();
    auto db = open_db();
    EXPECT_EQ(*db->count(all_rows()), 3);
}

TEST_P(StoreConformance, RedeliveryIsCountedNotStoredTwice)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    auto first = insert(*store, make_event("k1"));
    ASSERT_TRUE(first);
    EXPECT_FALSE(first->duplicate);
    EXPECT_EQ(first->deliveries, 1);
    auto second = insert(*store, make_event("k1", t0 + 5));
    ASSERT_TRUE(second);
    EXPECT_TRUE(second->duplicate);
    EXPECT_EQ(second->id, first->id);
    EXPECT_EQ(second->deliveries, 2);
    store->stop();
    auto db = open_db();
    auto row = db->get(first->id);
    ASSERT_TRUE(row && *row);
    EXPECT_EQ((*row)->deliveries, 2);
    EXPECT_EQ((*row)->last_delivery_at_us, t0 + 5);
    EXPECT_EQ(*db->count(all_rows()), 1);
}

TEST_P(StoreConformance, OneBatchHoldingTheSameKeyStoresOneRow)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    std::vector<awaiter<result<insert_outcome>>> done(20);
    for (std::size_t i = 0; i < done.size(); ++i) {
        ASSERT_TRUE(store->submit_event(make_event(i % 2 == 0 ? "same" : fmt::format("k{}", i)), done[i].callback()));
    }
    int stored_same = 0;
    int duplicate_same = 0;
    std::int64_t max_deliveries = 0;
    for (std::size_t i = 0; i < done.size(); ++i) {
        auto r = done[i].get();
        ASSERT_TRUE(r) << r.error().message();
        if (i % 2 == 0) {
            (r->duplicate ? duplicate_same : stored_same) += 1;
            max_deliveries = std::max(max_deliveries, r->deliveries);
        } else {
            EXPECT_FALSE(r->duplicate);
        }
    }
    EXPECT_EQ(stored_same, 1);
    EXPECT_EQ(duplicate_same, 9);
    EXPECT_EQ(max_deliveries, 10);
    store->stop();
    EXPECT_EQ(*open_db()->count(all_rows()), 11);
}

TEST_P(StoreConformance, TwoWritersRacingOnTheSameKeysStoreEachOnce)
{
    // Two instances sharing one database: each delivery of a MessageId is either the one
    // stored or a duplicate, never both stored, never lost.
    auto a = open_store();
    auto b = open_store();
    ASSERT_TRUE(a && b);
    constexpr int keys = 100;
    std::vector<awaiter<result<insert_outcome>>> from_a(keys);
    std::vector<awaiter<result<insert_outcome>>> from_b(keys);
    std::thread ta([&] {
        for (int i = 0; i < keys; ++i) {
            EXPECT_TRUE(a->submit_event(make_event(fmt::format("race{}", i)), from_a[i].callback()));
        }
    });
    std::thread tb([&] {
        for (int i = keys - 1; i >= 0; --i) { // the other order: lock order must not matter
            EXPECT_TRUE(b->submit_event(make_event(fmt::format("race{}", i)), from_b[i].callback()));
        }
    });
    ta.join();
    tb.join();
    int stored = 0;
    int duplicates = 0;
    int retry = 0;
    for (int i = 0; i < keys; ++i) {
        for (auto* d : {&from_a[i], &from_b[i]}) {
            auto r = d->get();
            if (!r) {
                EXPECT_TRUE(retryable(r.error())) << r.error().message();
                ++retry; // Manage would deliver it again
                continue;
            }
            (r->duplicate ? duplicates : stored) += 1;
        }
    }
    EXPECT_EQ(stored, keys);
    EXPECT_EQ(duplicates + retry, keys);
    a->stop();
    b->stop();
    auto db = open_db();
    EXPECT_EQ(*db->count(all_rows()), keys);
    auto stats = db->list(all_rows());
    ASSERT_TRUE(stats);
    std::int64_t deliveries = 0;
    for (const auto& e : *stats) {
        deliveries += e.deliveries;
    }
    EXPECT_EQ(deliveries, 2 * keys - retry);
}

TEST_P(StoreConformance, VerifiedRedeliveryTakesOverAPendingRowWithItsOwnBytes)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    auto forged = make_event("up", t0, event_status::pending);
    forged.body = "forged bytes";
    auto first = insert(*store, forged);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, event_status::pending);
    auto genuine = make_event("up", t0 + 10);
    genuine.body = "genuine bytes";
    auto second = insert(*store, genuine);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->id, first->id);
    EXPECT_FALSE(second->duplicate);
    EXPECT_EQ(second->upgraded_from, event_status::pending);
    EXPECT_EQ(second->status, event_status::verified);
    store->stop();
    auto row = open_db()->get(first->id);
    ASSERT_TRUE(row && *row);
    EXPECT_EQ((*row)->record.body, "genuine bytes");
    EXPECT_EQ((*row)->record.status, event_status::verified);
    EXPECT_EQ((*row)->record.received_at_us, t0); // identity fields stay
}

TEST_P(StoreConformance, CursorsPageWithoutGapsOrRepeatsInBothOrders)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    for (int i = 0; i < 23; ++i) {
        // Pairs share a timestamp: the id breaks the tie.
        ASSERT_TRUE(insert(*store, make_event(fmt::format("p{}", i), t0 + (i / 2) * 1000)));
    }
    store->stop();
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto everything = db->list(all_rows());
    ASSERT_TRUE(everything);
    ASSERT_EQ(everything->size(), 23u);
    for (std::size_t i = 1; i < everything->size(); ++i) {
        const auto& a = (*everything)[i - 1];
        const auto& b = (*everything)[i];
        EXPECT_TRUE(std::pair(a.received_at_us, a.id) > std::pair(b.received_at_us, b.id));
    }
    std::vector<std::int64_t> paged;
    event_filter f;
    f.limit = 5;
    for (;;) {
        auto page = db->list(f);
        ASSERT_TRUE(page);
        for (const auto& e : *page) {
            paged.push_back(e.id);
        }
        if (page->size() < f.limit) {
            break;
        }
        f.after = event_cursor{page->back().received_at_us, page->back().id};
    }
    std::vector<std::int64_t> expected;
    for (const auto& e : *everything) {
        expected.push_back(e.id);
    }
    EXPECT_EQ(paged, expected);
    EXPECT_EQ(all_ids(*db, all_rows(), scan_order::newest_first), expected);
    std::reverse(expected.begin(), expected.end());
    EXPECT_EQ(all_ids(*db, all_rows(), scan_order::oldest_first), expected);
    auto ids = db->ids(all_rows(), scan_order::oldest_first);
    ASSERT_TRUE(ids);
    EXPECT_EQ(*ids, expected);
    EXPECT_EQ(all_ids(*db, filter_of([&](event_filter& f) { f.limit = 7; }), scan_order::oldest_first).size(), 7u);
}

TEST_P(StoreConformance, EveryFilterSelectsTheSameRows)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    const char* types[] = {"ticket", "company", "contact"};
    const char* actions[] = {"added", "updated", "deleted"};
    for (int i = 0; i < 30; ++i) {
        auto ev = make_event(fmt::format("f{}", i), t0 + i * 1000,
                             i % 5 == 0 ? event_status::pending : event_status::verified);
        ev.type = types[i % 3];
        ev.action = actions[(i / 3) % 3];
        ev.entity_id = i % 4;
        ev.company_id = i % 2 == 0 ? std::optional<std::string>("training") : std::nullopt;
        ev.callback_id = i % 6;
        ASSERT_TRUE(insert(*store, ev));
    }
    store->stop();
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    const auto count_of = [&](event_filter f) {
        f.limit = 0;
        auto n = db->count(f);
        EXPECT_TRUE(n) << n.error();
        auto rows = db->list(f);
        EXPECT_TRUE(rows);
        EXPECT_EQ(static_cast<std::int64_t>(rows->size()), *n);
        return *n;
    };
    EXPECT_EQ(count_of(all_rows()), 30);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) { f.type = "company"; })), 10);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) { f.action = "deleted"; })), 9);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) {
                  f.type = "ticket";
                  f.action = "added";
              })),
              4);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) { f.entity_id = 3; })), 7);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) { f.company_id = "training"; })), 15);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) { f.status = event_status::pending; })), 6);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) {
                  f.since_us = t0 + 10'000;
                  f.until_us = t0 + 20'000;
              })),
              10);
    EXPECT_EQ(count_of(filter_of([&](event_filter& f) { f.callback_id = 5; })), 5);
    auto capped = db->count(filter_of([&](event_filter& f) { f.limit = 4; }));
    ASSERT_TRUE(capped);
    EXPECT_EQ(*capped, 4);
    auto stats = db->stats(std::nullopt);
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->total, 30);
    ASSERT_EQ(stats->by_type.size(), 3u);
    EXPECT_EQ(stats->by_type[0].count, 10);
    ASSERT_EQ(stats->by_day.size(), 1u);
    EXPECT_EQ(stats->by_day[0].key, "2023-11-14");
}

TEST_P(StoreConformance, PendingClaimsAreExclusiveUntilTheLeaseEnds)
{
    s_.claim_lease = 60s;
    auto a = open_store();
    auto b = open_store(); // a second instance on the same database
    ASSERT_TRUE(a && b);
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(insert(*a, make_event(fmt::format("due{}", i), t0 + i, event_status::pending)));
    }
    ASSERT_TRUE(insert(*a, make_event("later", t0 + 10, event_status::pending))); // due at t0 + 10
    const std::int64_t now = t0 + 5;
    auto first = claim_due(*a, now, 3);
    ASSERT_TRUE(first);
    ASSERT_EQ(first->size(), 3u);
    EXPECT_EQ((*first)[0].received_at_us, t0); // oldest first
    EXPECT_EQ((*first)[2].received_at_us, t0 + 2);
    auto second = claim_due(*b, now, 10);
    ASSERT_TRUE(second);
    ASSERT_EQ(second->size(), 2u); // the other two due rows, none of a's
    std::set<std::int64_t> ids;
    for (const auto& v : {*first, *second}) {
        for (const auto& p : v) {
            EXPECT_TRUE(ids.insert(p.id).second) << "claimed twice: " << p.id;
            EXPECT_FALSE(p.body.empty());
        }
    }
    auto none = claim_due(*b, now, 10);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    // The lease ends: unsettled claims come back (a claimer that died lets go of its rows).
    auto again = claim_due(*b, now + 60'000'000, 10);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->size(), 6u);
}

TEST_P(StoreConformance, StatusUpdatesApplyOnlyFromTheExpectedStatus)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    auto p = insert(*store, make_event("s1", t0, event_status::pending));
    ASSERT_TRUE(p);
    ASSERT_TRUE(update_status(*store, {{p->id, event_status::verified, "", 0, event_status::pending}}));
    // A second decision that started from "pending" no longer applies.
    ASSERT_TRUE(update_status(*store, {{p->id, event_status::failed, "bad_signature", 0, event_status::pending}}));
    auto c = count_unsettled(*store);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->pending, 0);
    EXPECT_EQ(c->failed, 0);
    store->stop();
    auto db = open_db();
    auto row = db->get(p->id);
    ASSERT_TRUE(row && *row);
    EXPECT_EQ((*row)->record.status, event_status::verified);
    EXPECT_EQ((*row)->verify_attempts, 1);
    auto settled = db->settle({p->id, event_status::failed, "x", 0, event_status::pending});
    ASSERT_TRUE(settled);
    EXPECT_FALSE(*settled);
}

TEST_P(StoreConformance, RetentionDeletesTheOldestSettledRowsNeverPending)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    for (int i = 0; i < 10; ++i) {
        const auto status = i < 2 ? event_status::pending : i < 4 ? event_status::failed : event_status::verified;
        ASSERT_TRUE(insert(*store, make_event(fmt::format("r{}", i), t0 + i, status)));
    }
    auto first = prune(*store, t0 + 8, 3);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->deleted, 3);
    EXPECT_EQ(first->failed, 2);
    auto rest = prune(*store, t0 + 8, 100);
    ASSERT_TRUE(rest);
    EXPECT_EQ(rest->deleted, 3); // r5..r7; r8, r9 are newer, r0, r1 pending
    store->stop();
    auto db = open_db();
    EXPECT_EQ(*db->count(all_rows()), 4);
    EXPECT_EQ(*db->count(filter_of([&](event_filter& f) {
        f.status = event_status::pending;
        f.limit = 0;
    })),
              2);
    EXPECT_EQ(*db->count_older(t0 + 100, std::nullopt), 2);
    auto pruned = db->prune(t0 + 100, std::nullopt, 1);
    ASSERT_TRUE(pruned);
    EXPECT_EQ(*pruned, 2);
    EXPECT_EQ(*db->count(all_rows()), 2);
}

TEST_P(StoreConformance, RejectionsAreBoundedAndNewestFirst)
{
    s_.max_rejections = 5;
    auto store = open_store();
    ASSERT_TRUE(store);
    for (int i = 0; i < 8; ++i) {
        rejection_record r;
        r.received_at_us = t0 + i;
        r.http_status = 401;
        r.reason = i % 2 == 0 ? "bad_signature" : "company_not_allowed";
        r.detail = fmt::format("n{}", i);
        r.body_head = "x\0\xff"s;
        ASSERT_TRUE(store->submit_rejection(r));
    }
    ASSERT_TRUE(probe(*store)); // runs after the rejections
    store->stop();
    auto db = open_db();
    auto rows = db->rejections(filter_of<rejection_filter>([](rejection_filter& f) { f.limit = 0; }));
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 5u);
    EXPECT_EQ(rows->front().record.detail, "n7");
    EXPECT_EQ(rows->back().record.detail, "n3");
    EXPECT_EQ(rows->front().record.body_head, "x\0\xff"s);
    auto odd = db->rejections(filter_of<rejection_filter>([](rejection_filter& f) {
        f.reason = "company_not_allowed";
        f.limit = 0;
    }));
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->size(), 3u);
    auto one = db->rejection(rows->front().id);
    ASSERT_TRUE(one && *one);
    EXPECT_EQ((*one)->record.detail, "n7");
}

TEST_P(StoreConformance, ImportKeepsRowsAsGivenAndSkipsKnownKeys)
{
    auto db = open_db();
    ASSERT_TRUE(db);
    stored_event e;
    e.record = make_event("imp", t0 + 1, event_status::failed);
    e.record.body = "\x01\x02\x00\xff"s;
    e.deliveries = 3;
    e.last_delivery_at_us = t0 + 9;
    e.verify_attempts = 2;
    std::vector<stored_event> rows{e, e};
    auto r = db->import(rows);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->inserted, 1);
    EXPECT_EQ(r->duplicates, 1);
    auto listed = db->list(all_rows());
    ASSERT_TRUE(listed && listed->size() == 1);
    auto got = db->get(listed->front().id);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->record.body, e.record.body);
    EXPECT_EQ((*got)->deliveries, 3);
    EXPECT_EQ((*got)->last_delivery_at_us, t0 + 9);
    EXPECT_EQ((*got)->verify_attempts, 2);
    EXPECT_EQ((*got)->record.status, event_status::failed);
    ASSERT_TRUE(db->record_replay({listed->front().id, t0 + 20, "http://127.0.0.1:9/x", 200, "", "job1"}));
    got = db->get(listed->front().id);
    ASSERT_TRUE(got && *got);
    ASSERT_EQ((*got)->replays.size(), 1u);
    EXPECT_EQ((*got)->replays[0].job, "job1");
    auto check = db->check();
    ASSERT_TRUE(check);
    EXPECT_EQ(*check, std::vector<std::string>{"ok"});
}

TEST_P(StoreConformance, AnOutageFailsWithARetryableErrorAndHealsByItself)
{
    if (GetParam() == backend::sqlite) {
        s_.max_page_count = 64; // a small disk: 256 KiB
    }
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(insert(*store, make_event("before-outage")));

    std::function<void()> end_outage;
    bool probe_fails = true;
    if (GetParam() == backend::sqlite) {
        // The disk fills up; deleting rows (an operator's prune) makes room again.
        int filler = 0;
        result<insert_outcome> r;
        do {
            auto big = make_event(fmt::format("filler{}", filler++), t0, event_status::failed);
            big.body.assign(16 * 1024, 'x');
            r = insert(*store, big);
        } while (r && filler < 1000);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), errc::storage_full);
        probe_fails = false; // the write lock can still be taken: /readyz cannot see a full disk
        end_outage = [this] {
            auto db = open_db();
            ASSERT_TRUE(db && db->prune(t0 + 1, event_status::failed, 100));
        };
    } else {
        // The server refuses this database's sessions and drops the writer's: what a restart
        // or a failover looks like from the writer.
        auto& cluster = pg_->cluster();
        cluster.psql("postgres", fmt::format("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false", pg_->name()));
        cluster.psql(
            "postgres",
            fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'", pg_->name()));
        end_outage = [&cluster, name = pg_->name()] {
            cluster.psql("postgres", fmt::format("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true", name));
        };
    }
    auto outage_event = make_event("during-outage");
    outage_event.body.assign(16 * 1024, 'y'); // as large as the rows that filled the disk
    auto during = insert(*store, outage_event);
    ASSERT_FALSE(during);
    EXPECT_TRUE(retryable(during.error())) << during.error().message();
    if (probe_fails) {
        auto ready = probe(*store);
        ASSERT_FALSE(ready);
        EXPECT_EQ(ready.error(), errc::storage_unavailable);
    }

    end_outage();
    // Heals by itself: the next jobs go through (PostgreSQL: after at most one backoff step).
    result<insert_outcome> after;
    ASSERT_TRUE(test::eventually(
        [&] {
            after = insert(*store, outage_event);
            return static_cast<bool>(after);
        },
        30s));
    EXPECT_FALSE(after->duplicate); // the refused delivery was never stored
    store->stop();
    EXPECT_EQ(*open_db()->count(all_rows()), 2);
}

TEST_P(StoreConformance, ANewerSchemaIsRefused)
{
    {
        auto store = open_store();
        ASSERT_TRUE(store);
    }
    if (GetParam() == backend::sqlite) {
        ASSERT_EQ(std::system(fmt::format("sqlite3 '{}' 'PRAGMA user_version = 99'", s_.path).c_str()), 0);
    } else {
        pg_->cluster().psql(pg_->name(), "UPDATE cwhook_schema SET version = 99");
    }
    auto store = event_store::open(s_);
    ASSERT_FALSE(store);
    EXPECT_NE(store.error().find("newer than this cwhook supports"), std::string::npos) << store.error();
    auto db = event_db::open(s_, db_access::read_only);
    ASSERT_FALSE(db);
    EXPECT_NE(db.error().find("newer"), std::string::npos) << db.error();
}

TEST_P(StoreConformance, InstancesStartingAtOnceMigrateOnce)
{
    std::vector<std::thread> threads;
    std::vector<std::string> errors(4);
    for (std::size_t i = 0; i < errors.size(); ++i) {
        threads.emplace_back([this, i, &errors] {
            auto store = event_store::open(s_);
            if (!store) {
                errors[i] = store.error();
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (const auto& e : errors) {
        EXPECT_EQ(e, "");
    }
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    EXPECT_EQ(db->schema_version(), 2);
}
