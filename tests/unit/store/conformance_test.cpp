// One set of store tests, run against both backends: SQLite in a temp file and PostgreSQL in a
// database of its own on the test cluster (tests/support/pg_cluster.hpp). Whatever a caller
// can observe through event_store and event_db (dedupe, order, cursors, claims, retention,
// failures and recovery, bytes) must be the same on both.
#include "store/catch_up.hpp"
#include "store/event_db.hpp"
#include "store/event_store.hpp"

#include "store_calls.hpp"
#include "support/eventually.hpp"
#include "support/pg_cluster.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
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

TEST_P(StoreConformance, WindowCountsAreGroupedByBucket)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    constexpr std::int64_t bucket = 1000;
    // Buckets of [t0, t0 + 3000): two events in the first, one pending in the third; one event
    // before the window and one at its end are not counted.
    ASSERT_TRUE(insert(*store, make_event("a", t0)));
    ASSERT_TRUE(insert(*store, make_event("b", t0 + 999)));
    auto c = make_event("c", t0 + 2500, event_status::pending);
    c.type = "company";
    ASSERT_TRUE(insert(*store, c));
    ASSERT_TRUE(insert(*store, make_event("before", t0 - 1)));
    ASSERT_TRUE(insert(*store, make_event("after", t0 + 3000)));
    for (const std::int64_t at : {t0 + 1000, t0 + 1001, t0 + 3000}) {
        rejection_record r;
        r.received_at_us = at;
        r.http_status = 401;
        r.reason = "bad_signature";
        ASSERT_TRUE(store->submit_rejection(r));
    }
    ASSERT_TRUE(probe(*store));
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto w = db->counts_in_window(t0, t0 + 3000, bucket);
    ASSERT_TRUE(w) << w.error();
    const auto rows = [](std::vector<bucket_count> v) {
        std::vector<std::tuple<std::int64_t, std::string, std::int64_t>> out;
        for (auto& r : v) {
            out.emplace_back(r.bucket, std::move(r.key), r.count);
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    using row = std::tuple<std::int64_t, std::string, std::int64_t>;
    EXPECT_EQ(rows(w->by_type), (std::vector<row>{{0, "ticket", 2}, {2, "company", 1}}));
    EXPECT_EQ(rows(w->by_status), (std::vector<row>{{0, "verified", 2}, {2, "pending", 1}}));
    EXPECT_EQ(rows(w->by_reason), (std::vector<row>{{1, "bad_signature", 2}}));
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
    EXPECT_EQ(db->schema_version(), 4);
}

// ---- Forwarding outbox ------------------------------------------------------------------

namespace {

event_record typed_event(std::string key, std::string type, std::int64_t entity,
                         event_status status = event_status::verified)
{
    event_record ev = make_event(std::move(key), t0, status);
    ev.type = std::move(type);
    ev.entity_id = entity;
    return ev;
}

delivery_result finished(const claimed_delivery& c, delivery_state state, int status, std::int64_t next = 0)
{
    delivery_result r;
    r.id = c.id;
    r.lease_until_us = c.lease_until_us;
    r.state = state;
    r.next_attempt_at_us = next;
    r.at_us = t0;
    r.http_status = status;
    r.latency_us = 1000;
    r.error = status / 100 == 2 ? "" : fmt::format("HTTP {}", status);
    return r;
}

} // namespace

TEST_P(StoreConformance, DeliveriesAreCreatedWithTheForwardableEventOnly)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(sync_destinations(*store, {route("all"), route("companies", {"company"}, {"added"})}));
    auto ticket = insert(*store, typed_event("t1", "ticket", 1));
    auto company = insert(*store, typed_event("c1", "company", 2)); // action "updated": not for "companies"
    auto pending = insert(*store, typed_event("p1", "ticket", 3, event_status::pending));
    auto unverified = insert(*store, typed_event("u1", "ticket", 4, event_status::unverified));
    ASSERT_TRUE(ticket && company && pending && unverified);
    auto added = typed_event("c2", "company", 5);
    added.action = "added";
    auto company_added = insert(*store, added);
    ASSERT_TRUE(company_added);
    // The pending row verifies later: its deliveries come with the status change.
    ASSERT_TRUE(update_status(*store, {{pending->id, event_status::verified, "", 0, event_status::pending}}));
    store->stop();

    auto db = open_db();
    auto of = [&](std::int64_t id) {
        std::vector<std::string> names;
        for (const auto& d : *db->deliveries_of(id)) {
            names.push_back(d.destination);
            EXPECT_EQ(d.state, delivery_state::pending);
        }
        return names;
    };
    EXPECT_EQ(of(ticket->id), std::vector<std::string>{"all"});
    EXPECT_EQ(of(company->id), std::vector<std::string>{"all"});
    EXPECT_EQ(of(company_added->id), (std::vector<std::string>{"all", "companies"}));
    EXPECT_EQ(of(pending->id), std::vector<std::string>{"all"});
    EXPECT_TRUE(of(unverified->id).empty());
    // The feed holds the forwardable events in the order they became so.
    auto feed = db->feed(0, 100);
    ASSERT_TRUE(feed) << feed.error();
    std::vector<std::int64_t> ids;
    for (const auto& f : *feed) {
        ids.push_back(f.event_id);
    }
    EXPECT_EQ(ids, (std::vector<std::int64_t>{ticket->id, company->id, company_added->id, pending->id}));
    auto rest = db->feed(feed->at(1).seq, 100);
    ASSERT_TRUE(rest);
    EXPECT_EQ(rest->size(), 2u);
}

TEST_P(StoreConformance, UnverifiedEventsAreForwardedWhenVerificationIsOff)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(sync_destinations(*store, {route("all")}));
    store->set_forward_unverified(true);
    auto u = insert(*store, typed_event("u1", "ticket", 4, event_status::unverified));
    auto f = insert(*store, typed_event("f1", "ticket", 5, event_status::failed));
    ASSERT_TRUE(u && f);
    store->stop();
    auto db = open_db();
    EXPECT_EQ(db->deliveries_of(u->id)->size(), 1u);
    EXPECT_TRUE(db->deliveries_of(f->id)->empty());
}

TEST_P(StoreConformance, DeliveryClaimsAreExclusiveAndResultsApplyUnderTheirLease)
{
    auto a = open_store();
    auto b = open_store(); // a second instance on the same database
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(sync_destinations(*a, {route("sink")}));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(insert(*a, typed_event(fmt::format("e{}", i), "ticket", i)));
    }
    const std::int64_t lease = t0 + 60'000'000;
    auto first = claim_deliveries(*a, "sink", t0, lease, false, 3);
    ASSERT_TRUE(first);
    ASSERT_EQ(first->size(), 3u);
    EXPECT_FALSE(first->front().body.empty());
    EXPECT_EQ(first->front().type, "ticket");
    auto second = claim_deliveries(*b, "sink", t0, lease);
    ASSERT_TRUE(second);
    ASSERT_EQ(second->size(), 2u); // the rest, none of a's
    auto none = claim_deliveries(*b, "sink", t0, lease);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());

    const auto& c0 = (*first)[0];
    const auto& c1 = (*first)[1];
    const auto& c2 = (*first)[2];
    ASSERT_TRUE(deliver_results(*a, {finished(c0, delivery_state::done, 200),
                                     finished(c1, delivery_state::failing, 503, t0 + 5'000'000),
                                     finished(c2, delivery_state::dead, 500)}));
    // A result under a lease that is no longer the row's (another claim since) changes nothing.
    auto stale = finished((*second)[0], delivery_state::dead, 500);
    stale.lease_until_us = lease - 1;
    ASSERT_TRUE(deliver_results(*b, {stale}));

    auto early = claim_deliveries(*a, "sink", t0 + 4'000'000, lease + 1);
    ASSERT_TRUE(early);
    EXPECT_TRUE(early->empty()); // the failing row is due at t0 + 5 s, the others are leased
    auto retry = claim_deliveries(*a, "sink", t0 + 5'000'000, lease + 1);
    ASSERT_TRUE(retry);
    ASSERT_EQ(retry->size(), 1u);
    EXPECT_EQ(retry->front().id, c1.id);
    EXPECT_EQ(retry->front().attempts, 1);
    EXPECT_EQ(retry->front().tries, 1);
    a->stop();
    b->stop();

    auto db = open_db();
    auto done = db->delivery(c0.id);
    ASSERT_TRUE(done && *done);
    EXPECT_EQ((*done)->state, delivery_state::done);
    ASSERT_EQ((*done)->history.size(), 1u);
    EXPECT_EQ((*done)->history[0].http_status, 200);
    auto dead = db->delivery(c2.id);
    EXPECT_EQ((*dead)->state, delivery_state::dead);
    EXPECT_EQ((*dead)->last_status, 500);
    auto untouched = db->delivery((*second)[0].id);
    EXPECT_EQ((*untouched)->state, delivery_state::pending);
    EXPECT_EQ((*untouched)->history.size(), 1u); // the attempt is history even when its result was stale

    auto dead_rows =
        db->deliveries(filter_of<delivery_filter>([](delivery_filter& f) { f.state = delivery_state::dead; }));
    ASSERT_TRUE(dead_rows);
    EXPECT_EQ(dead_rows->size(), 1u);
}

TEST_P(StoreConformance, EntityOrderingHandsOutOneDeliveryPerEntityAtATime)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(sync_destinations(*store, {route("ordered")}));
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 3; ++i) {
        ids.push_back(insert(*store, typed_event(fmt::format("x{}", i), "ticket", 7))->id);
    }
    ids.push_back(insert(*store, typed_event("y", "ticket", 8))->id);
    ids.push_back(insert(*store, typed_event("z", "company", 7))->id); // another type: another entity
    const std::int64_t lease = t0 + 60'000'000;
    auto first = claim_deliveries(*store, "ordered", t0, lease, true);
    ASSERT_TRUE(first);
    std::set<std::int64_t> events;
    for (const auto& c : *first) {
        events.insert(c.event_id);
    }
    EXPECT_EQ(events, (std::set<std::int64_t>{ids[0], ids[3], ids[4]}));
    auto blocked = claim_deliveries(*store, "ordered", t0, lease, true);
    ASSERT_TRUE(blocked);
    EXPECT_TRUE(blocked->empty()); // ticket 7's next waits for its head, even while the head fails
    const auto head = *std::find_if(first->begin(), first->end(), [&](const auto& c) { return c.event_id == ids[0]; });
    ASSERT_TRUE(deliver_results(*store, {finished(head, delivery_state::failing, 500, t0)}));
    auto still = claim_deliveries(*store, "ordered", t0, lease + 1, true);
    ASSERT_TRUE(still);
    ASSERT_EQ(still->size(), 1u);
    EXPECT_EQ(still->front().event_id, ids[0]); // the failed head again, not its successor
    ASSERT_TRUE(deliver_results(*store, {finished(still->front(), delivery_state::done, 204)}));
    auto next = claim_deliveries(*store, "ordered", t0, lease + 2, true);
    ASSERT_TRUE(next);
    ASSERT_EQ(next->size(), 1u);
    EXPECT_EQ(next->front().event_id, ids[1]);
}

TEST_P(StoreConformance, PausedAndRemovedDestinationsKeepTheirRows)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(sync_destinations(*store, {route("a"), route("b")}));
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(insert(*store, typed_event(fmt::format("k{}", i), "ticket", i)));
    }
    {
        auto db = open_db();
        auto paused = db->set_destination_paused("a", true, "operator", t0);
        ASSERT_TRUE(paused && *paused);
        EXPECT_FALSE(*db->set_destination_paused("nope", true, "operator", t0));
    }
    auto none = claim_deliveries(*store, "a", t0, t0 + 1);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    {
        auto db = open_db();
        ASSERT_TRUE(db->set_destination_paused("a", false, "", t0));
    }
    auto some = claim_deliveries(*store, "a", t0, t0 + 1, false, 1);
    ASSERT_TRUE(some);
    EXPECT_EQ(some->size(), 1u);
    ASSERT_TRUE(deliver_results(*store, {finished(some->front(), delivery_state::dead, 500)}));

    // b leaves the configuration: its undelivered rows are cancelled, never dropped.
    auto sync = sync_destinations(*store, {route("a")});
    ASSERT_TRUE(sync);
    EXPECT_EQ(sync->cancelled, 3);
    auto later = insert(*store, typed_event("k9", "ticket", 9));
    ASSERT_TRUE(later);
    store->stop();

    auto db = open_db();
    EXPECT_EQ(db->deliveries_of(later->id)->size(), 1u); // a only
    auto states = db->destinations();
    ASSERT_TRUE(states);
    ASSERT_EQ(states->size(), 2u);
    EXPECT_TRUE((*states)[0].configured);
    EXPECT_EQ((*states)[0].pending, 3);
    EXPECT_EQ((*states)[0].dead, 1);
    ASSERT_TRUE((*states)[0].oldest_due_created_at_us);
    EXPECT_FALSE((*states)[1].configured);
    EXPECT_EQ((*states)[1].cancelled, 3);

    // Retry: a dry run counts, then the rows are pending again with a fresh schedule.
    const auto b_rows = filter_of<delivery_filter>([](delivery_filter& f) { f.destination = "b"; });
    auto count = db->retry_deliveries({}, b_rows, true);
    ASSERT_TRUE(count);
    EXPECT_EQ(*count, 3);
    EXPECT_EQ(
        db->deliveries(filter_of<delivery_filter>([](delivery_filter& f) { f.state = delivery_state::cancelled; }))
            ->size(),
        3u);
    const std::int64_t dead_id = some->front().id;
    auto one = db->retry_deliveries(std::span(&dead_id, 1), {}, false);
    ASSERT_TRUE(one);
    EXPECT_EQ(*one, 1);
    auto row = db->delivery(dead_id);
    EXPECT_EQ((*row)->state, delivery_state::pending);
    EXPECT_EQ((*row)->tries, 0);
    EXPECT_EQ((*row)->attempts, 1);
    EXPECT_EQ(*db->retry_deliveries(std::span(&dead_id, 1), {}, false), 0); // already pending
}

TEST_P(StoreConformance, RetentionKeepsEventsStillOwedToADestination)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(sync_destinations(*store, {route("sink")}));
    auto owed = insert(*store, typed_event("owed", "ticket", 1));
    auto delivered = insert(*store, typed_event("delivered", "ticket", 2));
    ASSERT_TRUE(owed && delivered);
    auto claimed = claim_deliveries(*store, "sink", t0, t0 + 1);
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->size(), 2u);
    for (const auto& c : *claimed) {
        if (c.event_id == delivered->id) {
            ASSERT_TRUE(deliver_results(*store, {finished(c, delivery_state::done, 200)}));
        }
    }
    auto pruned = prune(*store, t0 + 1'000'000, 100);
    ASSERT_TRUE(pruned);
    EXPECT_EQ(pruned->deleted, 1);
    store->stop();
    auto db = open_db();
    EXPECT_TRUE(*db->get(owed->id));
    EXPECT_FALSE(*db->get(delivered->id));
    EXPECT_EQ(*db->prune(t0 + 1'000'000, std::nullopt, 10), 0);
}

TEST_P(StoreConformance, TheFeedNeverSkipsAnEventCommittedWhileItIsRead)
{
    auto a = open_store();
    auto b = open_store();
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(sync_destinations(*a, {}));
    constexpr int per_writer = 150;
    std::atomic<bool> writing{true};
    std::set<std::int64_t> seen;
    std::thread reader([&] {
        auto db = open_db(db_access::read_only);
        std::int64_t cursor = 0;
        std::int64_t last_seq = 0;
        for (;;) {
            const bool last_round = !writing.load();
            auto page = db->feed(cursor, 7);
            ASSERT_TRUE(page) << page.error();
            for (const auto& f : *page) {
                EXPECT_GT(f.seq, last_seq);
                last_seq = f.seq;
                EXPECT_TRUE(seen.insert(f.event_id).second) << "seen twice: " << f.event_id;
                cursor = f.seq;
            }
            if (last_round && page->empty()) {
                return;
            }
        }
    });
    std::set<std::int64_t> stored;
    std::mutex stored_mutex;
    auto write = [&](event_store& store, std::string prefix) {
        std::vector<std::future<result<insert_outcome>>> pending;
        for (int i = 0; i < per_writer; ++i) {
            auto p = std::make_shared<std::promise<result<insert_outcome>>>();
            pending.push_back(p->get_future());
            ASSERT_TRUE(store.submit_event(typed_event(fmt::format("{}{}", prefix, i), "ticket", i),
                                           [p](result<insert_outcome> r) { p->set_value(std::move(r)); }));
        }
        for (auto& f : pending) {
            auto r = f.get();
            ASSERT_TRUE(r);
            std::lock_guard lock(stored_mutex);
            stored.insert(r->id);
        }
    };
    std::thread wa([&] { write(*a, "a"); });
    std::thread wb([&] { write(*b, "b"); });
    wa.join();
    wb.join();
    writing = false;
    reader.join();
    EXPECT_EQ(stored.size(), 2u * per_writer);
    EXPECT_EQ(seen, stored);
}

TEST_P(StoreConformance, TheFeedEndIsTheLastPositionGivenAndOutlivesRetention)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    EXPECT_EQ(*db->feed_end(), 0);
    ASSERT_TRUE(insert(*store, typed_event("e1", "ticket", 1)));
    ASSERT_TRUE(insert(*store, typed_event("e2", "ticket", 2)));
    auto pending = make_event("e3", t0, event_status::pending); // not forwardable: no position
    ASSERT_TRUE(insert(*store, pending));
    EXPECT_EQ(*db->feed_end(), 2);
    EXPECT_TRUE(db->feed(2, 10)->empty());

    // Retention deletes the positioned rows; the end stays where it was.
    auto pruned = prune(*store, t0 + 1'000'000, 100);
    ASSERT_TRUE(pruned);
    EXPECT_EQ(*db->feed_end(), 2);
    auto later = insert(*store, typed_event("e4", "ticket", 4));
    ASSERT_TRUE(later);
    auto after_end = db->feed(2, 10);
    ASSERT_TRUE(after_end);
    ASSERT_EQ(after_end->size(), 1u);
    EXPECT_EQ(after_end->front().seq, 3);
    EXPECT_EQ(after_end->front().event_id, later->id);
    EXPECT_EQ(*db->feed_end(), 3);
}

// ---- Catch-up ---------------------------------------------------------------------------

namespace {

synthesized_event synthesized(std::int64_t entity, std::int64_t last_updated_us, std::int64_t newest_seen_id = 0,
                              std::string action = "updated")
{
    synthesized_event e;
    e.company = "training";
    e.type = "ticket";
    e.action = std::move(action);
    e.entity_id = entity;
    e.last_updated_us = last_updated_us;
    e.body = fmt::format(R"({{"Action":"{}","Type":"ticket","ID":{},"Entity":"{{\"_info\":{{\"lastUpdated\":{}}}}}"}})",
                         e.action, entity, last_updated_us);
    e.body_sha256 = std::string(64, 'b');
    e.newest_seen_id = newest_seen_id;
    return e;
}

// A callback of ticket `entity` whose Entity was last updated at `last_updated_us`.
event_record callback_of(std::string key, std::int64_t entity, std::int64_t last_updated_us)
{
    event_record ev = make_event(std::move(key));
    ev.entity_id = entity;
    ev.body = fmt::format(R"({{"Type":"ticket","ID":{},"lastUpdated":{}}})", entity, last_updated_us);
    return ev;
}

// The event ids of the feed's first ten positions, in order.
std::vector<std::int64_t> fed_ids(event_db& db)
{
    std::vector<std::int64_t> fed;
    auto feed = db.feed(0, 10);
    EXPECT_TRUE(feed) << feed.error();
    if (feed) {
        for (const auto& p : *feed) {
            fed.push_back(p.event_id);
        }
    }
    return fed;
}

// What the application reads from a body; here the test bodies' "lastUpdated":N.
std::optional<std::int64_t> read_last_updated(std::string_view body)
{
    constexpr std::string_view key = R"("lastUpdated":)";
    const auto at = body.find(key);
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    std::int64_t v = 0;
    for (std::size_t i = at + key.size(); i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i) {
        v = v * 10 + (body[i] - '0');
    }
    return v;
}

} // namespace

TEST_P(StoreConformance, SynthesizedEventsAreStoredOnceAndForwardedLikeVerifiedOnes)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(sync_destinations(*store, {route("all")}));
    auto first = synthesize(*store, {synthesized(42, 1000), synthesized(43, 1000)});
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(*first, (std::vector{synthesis_outcome::synthesized, synthesis_outcome::synthesized}));
    // An overlapping run finds the same record at the same lastUpdated.
    auto again = synthesize(*store, {synthesized(42, 1000)});
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, std::vector{synthesis_outcome::already});

    auto claimed = claim_deliveries(*store, "all", t0, t0 + 1);
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->size(), 2u);
    EXPECT_EQ(claimed->front().status, event_status::synthesized);
    EXPECT_EQ(claimed->front().source, event_source::catch_up);
    store->stop();

    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    EXPECT_EQ(*db->feed_end(), 2);
    auto rows = db->list(filter_of([](event_filter& f) {
        f.source = event_source::catch_up;
        f.limit = 0;
    }));
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 2u);
    auto row = db->get(claimed->front().event_id);
    ASSERT_TRUE(row && *row);
    const event_record& r = (*row)->record;
    EXPECT_EQ(r.status, event_status::synthesized);
    EXPECT_EQ(r.source, event_source::catch_up);
    EXPECT_EQ(r.dedupe_key, "s:training:ticket:42:1000");
    EXPECT_EQ(r.entity_updated_at_us, 1000);
    EXPECT_EQ(r.verify_reason, "catch_up");
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.company_id, "training");
    EXPECT_EQ(r.body, synthesized(42, 1000).body);
    EXPECT_EQ(r.twin_of, std::nullopt);
    EXPECT_EQ(db->deliveries_of(claimed->front().event_id)->size(), 1u);
    EXPECT_EQ(*db->count(filter_of([](event_filter& f) { f.status = event_status::synthesized; })), 2);
}

TEST_P(StoreConformance, ACallbackThatRacedTheRunMakesItsRecordSeen)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    auto cb = insert(*store, callback_of("c1", 42, 500));
    ASSERT_TRUE(cb);
    // The engine looked before the callback was committed: it saw nothing newer than id 0.
    auto raced = synthesize(*store, {synthesized(42, 900, 0)});
    ASSERT_TRUE(raced);
    EXPECT_EQ(*raced, std::vector{synthesis_outcome::seen});
    // It saw the callback and still found the record newer.
    auto newer = synthesize(*store, {synthesized(42, 900, cb->id)});
    ASSERT_TRUE(newer);
    EXPECT_EQ(*newer, std::vector{synthesis_outcome::synthesized});
    // A failed row (a forgery's claim) is nothing seen.
    auto forged = insert(*store, make_event("forged", t0, event_status::failed));
    ASSERT_TRUE(forged);
    auto past_forgery = synthesize(*store, {synthesized(42, 950, forged->id - 1)});
    ASSERT_TRUE(past_forgery);
    EXPECT_EQ(*past_forgery, std::vector{synthesis_outcome::synthesized});
}

TEST_P(StoreConformance, WatermarksMoveOnlyForwardWithTheirEvents)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    const auto advance = [](std::int64_t us, std::int64_t at) {
        return std::optional<watermark>(watermark{"training", "ticket", us, at});
    };
    ASSERT_TRUE(synthesize(*store, {synthesized(1, 100)}, advance(100, t0)));
    ASSERT_TRUE(synthesize(*store, {}, advance(50, t0 + 1)));
    auto marks = read_watermarks(*store);
    ASSERT_TRUE(marks);
    ASSERT_EQ(marks->size(), 1u);
    EXPECT_EQ(marks->front().last_updated_us, 100); // never back
    EXPECT_EQ(marks->front().updated_at_us, t0 + 1);
    ASSERT_TRUE(synthesize(*store, {}, advance(200, t0 + 2)));
    ASSERT_TRUE(synthesize(*store, {}, watermark{"training", "contact", 7, t0}));
    store->stop();
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto all = db->watermarks();
    ASSERT_TRUE(all) << all.error();
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].type, "contact");
    EXPECT_EQ((*all)[0].last_updated_us, 7);
    EXPECT_EQ((*all)[1].type, "ticket");
    EXPECT_EQ((*all)[1].last_updated_us, 200);
}

TEST_P(StoreConformance, ACallbackTwinningASynthesizedEventIsKeptButNotForwarded)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    std::atomic<int> reads{0};
    store->set_entity_updated_reader([&reads](std::string_view body) {
        ++reads;
        return read_last_updated(body);
    });
    ASSERT_TRUE(sync_destinations(*store, {route("all")}));
    auto synth = synthesize(*store, {synthesized(42, 1000)});
    ASSERT_TRUE(synth);
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto synth_row = db->list(filter_of([](event_filter& f) { f.source = event_source::catch_up; }));
    ASSERT_EQ(synth_row->size(), 1u);
    const std::int64_t synth_id = synth_row->front().id;

    // Manage's late callback of the same change: a twin.
    auto twin = insert(*store, callback_of("late", 42, 1000));
    ASSERT_TRUE(twin);
    EXPECT_EQ(twin->status, event_status::verified);
    EXPECT_FALSE(twin->duplicate);
    // A callback of another entity: no synthesized row, its body is never read.
    auto other = insert(*store, callback_of("other", 7, 1000));
    ASSERT_TRUE(other);
    EXPECT_EQ(reads.load(), 1);
    // A newer change of the same entity: forwarded as usual.
    auto newer = insert(*store, callback_of("newer", 42, 2000));
    ASSERT_TRUE(newer);
    EXPECT_EQ(reads.load(), 2);

    auto t = db->get(twin->id);
    ASSERT_TRUE(t && *t);
    EXPECT_EQ((*t)->record.twin_of, synth_id);
    EXPECT_EQ((*t)->record.entity_updated_at_us, 1000);
    EXPECT_EQ((*t)->record.source, event_source::callback);
    EXPECT_TRUE(db->deliveries_of(twin->id)->empty());
    auto n = db->get(newer->id);
    EXPECT_EQ((*n)->record.twin_of, std::nullopt);
    EXPECT_EQ(db->deliveries_of(newer->id)->size(), 1u);
    EXPECT_EQ(db->deliveries_of(other->id)->size(), 1u);
    // The feed: the synthesized event, the other entity's and the newer callback; no twin.
    EXPECT_EQ(fed_ids(*db), (std::vector<std::int64_t>{synth_id, other->id, newer->id}));
    auto listed = db->list(filter_of([&](event_filter& f) { f.entity_id = 42; }));
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 3u);
    const auto row = std::find_if(listed->begin(), listed->end(), [&](const auto& s) { return s.id == twin->id; });
    ASSERT_NE(row, listed->end());
    EXPECT_EQ(row->twin_of, synth_id);
}

// Manage's callback of a change catch-up already synthesized arrives while the key server is
// down: stored pending, then settled verified by the re-verifier. It is a twin then too.
TEST_P(StoreConformance, APendingCallbackSettledVerifiedLaterIsLinkedToItsTwin)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    store->set_entity_updated_reader(read_last_updated);
    ASSERT_TRUE(sync_destinations(*store, {route("all")}));
    ASSERT_TRUE(synthesize(*store, {synthesized(42, 1000)}));
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto synth_row = db->list(filter_of([](event_filter& f) { f.source = event_source::catch_up; }));
    ASSERT_EQ(synth_row->size(), 1u);
    const std::int64_t synth_id = synth_row->front().id;

    auto late = callback_of("late", 42, 1000);
    late.status = event_status::pending;
    auto newer = callback_of("newer", 42, 2000);
    newer.status = event_status::pending;
    auto stored_late = insert(*store, late);
    auto stored_newer = insert(*store, newer);
    ASSERT_TRUE(stored_late && stored_newer);
    EXPECT_TRUE(db->deliveries_of(stored_late->id)->empty());
    ASSERT_TRUE(update_status(*store, {{stored_late->id, event_status::verified, "", 0, event_status::pending},
                                       {stored_newer->id, event_status::verified, "", 0, event_status::pending}}));

    auto t = db->get(stored_late->id);
    ASSERT_TRUE(t && *t);
    EXPECT_EQ((*t)->record.status, event_status::verified);
    EXPECT_EQ((*t)->record.twin_of, synth_id);
    EXPECT_EQ((*t)->record.entity_updated_at_us, 1000);
    EXPECT_TRUE(db->deliveries_of(stored_late->id)->empty());
    auto n = db->get(stored_newer->id);
    ASSERT_TRUE(n && *n);
    EXPECT_EQ((*n)->record.twin_of, std::nullopt);
    EXPECT_EQ(db->deliveries_of(stored_newer->id)->size(), 1u);
    EXPECT_EQ(fed_ids(*db), (std::vector<std::int64_t>{synth_id, stored_newer->id}));
}

TEST_P(StoreConformance, NewestEventsAndKnownEntitiesSkipFailedRows)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    auto e1 = insert(*store, callback_of("a1", 1, 10));
    auto e1b = insert(*store, callback_of("a2", 1, 20));
    auto e2 = callback_of("b1", 2, 10);
    ASSERT_TRUE(insert(*store, e2));
    e2.dedupe_key = "m:b2";
    e2.action = "deleted";
    auto e2_deleted = insert(*store, e2);
    auto e3 = callback_of("c1", 3, 10);
    e3.status = event_status::failed;
    ASSERT_TRUE(insert(*store, e3));
    auto forged = callback_of("a3", 1, 30);
    forged.status = event_status::failed;
    forged.action = "deleted";
    ASSERT_TRUE(insert(*store, forged));
    auto contact = callback_of("k1", 4, 10);
    contact.type = "contact";
    ASSERT_TRUE(insert(*store, contact));
    ASSERT_TRUE(e1 && e1b && e2_deleted);
    ASSERT_TRUE(synthesize(*store, {synthesized(5, 77)}));

    auto newest = newest_events(*store, "ticket", {1, 2, 3, 4, 5, 6});
    ASSERT_TRUE(newest) << newest.error().message();
    ASSERT_EQ(newest->size(), 3u);
    EXPECT_EQ((*newest)[0].entity_id, 1);
    EXPECT_EQ((*newest)[0].id, e1b->id);
    EXPECT_EQ((*newest)[0].body, callback_of("a2", 1, 20).body);
    EXPECT_FALSE((*newest)[0].synthesized);
    EXPECT_EQ((*newest)[0].received_at_us, t0);
    EXPECT_EQ((*newest)[1].id, e2_deleted->id);
    EXPECT_EQ((*newest)[2].entity_id, 5);
    EXPECT_TRUE((*newest)[2].synthesized);
    EXPECT_EQ((*newest)[2].entity_updated_at_us, 77);

    auto known = known_entities(*store, "ticket");
    ASSERT_TRUE(known) << known.error().message();
    EXPECT_EQ(*known, (std::vector<std::int64_t>{1, 5}));
    EXPECT_EQ(*known_entities(*store, "contact"), std::vector<std::int64_t>{4});
}

namespace {

// true: taken; false: another holder's; nullopt: the call failed.
std::optional<bool> taken(const result<bool>& r)
{
    return r ? std::optional<bool>(*r) : std::nullopt;
}

} // namespace

TEST_P(StoreConformance, ACatchUpLeaseHasOneHolderUntilItEnds)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "a", t0, t0 + 100)), true);
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "b", t0 + 50, t0 + 150)), false);
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "a", t0 + 60, t0 + 200)), true); // renewed
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "contact", "b", t0 + 60, t0 + 200)), true);
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "b", t0 + 199, t0 + 300)), false);
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "b", t0 + 200, t0 + 300)), true); // expired
    ASSERT_TRUE(release_catch_up(*store, "training", "ticket", "a")); // not a's any more: nothing
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "a", t0 + 210, t0 + 400)), false);
    ASSERT_TRUE(release_catch_up(*store, "training", "ticket", "b"));
    EXPECT_EQ(taken(claim_catch_up(*store, "training", "ticket", "a", t0 + 220, t0 + 400)), true);
    // A claim creates the watermark row at 0.
    auto marks = read_watermarks(*store);
    ASSERT_TRUE(marks);
    ASSERT_EQ(marks->size(), 2u);
    EXPECT_EQ(marks->back().type, "ticket");
    EXPECT_EQ(marks->back().last_updated_us, 0);

    if (GetParam() == backend::postgres) {
        // Two instances claiming at once: exactly one wins.
        auto other = open_store();
        ASSERT_TRUE(other);
        for (int round = 0; round < 5; ++round) {
            const std::string type = fmt::format("race{}", round);
            auto a = std::async(std::launch::async,
                                [&] { return claim_catch_up(*store, "training", type, "a", t0, t0 + 100); });
            auto b = std::async(std::launch::async,
                                [&] { return claim_catch_up(*other, "training", type, "b", t0, t0 + 100); });
            auto ra = a.get();
            auto rb = b.get();
            ASSERT_TRUE(ra && rb);
            EXPECT_NE(*ra, *rb) << type;
        }
    }
}

TEST_P(StoreConformance, CatchUpRunsAreRecordedAndListedNewestFirst)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    catch_up_run run;
    run.company = "training";
    run.type = "ticket";
    run.trigger = "start";
    run.started_at_us = t0;
    run.watermark_before_us = 5;
    auto id = record_run(*store, run);
    ASSERT_TRUE(id) << id.error().message();
    EXPECT_GT(*id, 0);
    run.id = *id;
    run.finished_at_us = t0 + 10;
    run.examined = 12;
    run.synthesized = 3;
    run.seen = 9;
    run.deleted = 1;
    run.watermark_after_us = 50;
    run.error = "";
    run.dry_run = true;
    auto updated = record_run(*store, run);
    ASSERT_TRUE(updated);
    EXPECT_EQ(*updated, *id);
    catch_up_run contact;
    contact.company = "training";
    contact.type = "contact";
    contact.trigger = "interval";
    contact.started_at_us = t0 + 5;
    contact.error = "HTTP 503";
    auto contact_id = record_run(*store, contact);
    ASSERT_TRUE(contact_id);
    EXPECT_NE(*contact_id, *id);
    store->stop();

    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto all = db->catch_up_runs(std::nullopt, 0);
    ASSERT_TRUE(all) << all.error();
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].type, "contact");
    EXPECT_EQ((*all)[0].error, "HTTP 503");
    EXPECT_EQ((*all)[0].finished_at_us, 0);
    const catch_up_run& t = (*all)[1];
    EXPECT_EQ(t.id, *id);
    EXPECT_EQ(t.trigger, "start");
    EXPECT_EQ(t.finished_at_us, t0 + 10);
    EXPECT_EQ(t.examined, 12);
    EXPECT_EQ(t.synthesized, 3);
    EXPECT_EQ(t.seen, 9);
    EXPECT_EQ(t.deleted, 1);
    EXPECT_EQ(t.watermark_before_us, 5);
    EXPECT_EQ(t.watermark_after_us, 50);
    EXPECT_TRUE(t.dry_run);
    auto tickets = db->catch_up_runs(std::string("ticket"), 10);
    ASSERT_TRUE(tickets);
    ASSERT_EQ(tickets->size(), 1u);
    EXPECT_EQ(tickets->front().id, *id);
    EXPECT_EQ(db->catch_up_runs(std::nullopt, 1)->size(), 1u);
}

TEST_P(StoreConformance, HeartbeatsTellACleanStopFromACrash)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(beat(*store, "host-a", t0));
    ASSERT_TRUE(beat(*store, "host-b", t0));
    ASSERT_TRUE(beat(*store, "host-a", t0 + 10, true));
    auto beats = read_heartbeats(*store);
    ASSERT_TRUE(beats) << beats.error().message();
    ASSERT_EQ(beats->size(), 2u);
    EXPECT_EQ((*beats)[0].instance, "host-a");
    EXPECT_EQ((*beats)[0].beat_at_us, t0 + 10);
    EXPECT_EQ((*beats)[0].clean_stop_at_us, t0 + 10);
    EXPECT_EQ((*beats)[1].clean_stop_at_us, 0);
    // Started again: the clean stop is forgotten.
    ASSERT_TRUE(beat(*store, "host-a", t0 + 20));
    store->stop();
    auto db = open_db(db_access::read_only);
    ASSERT_TRUE(db);
    auto again = db->heartbeats();
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ((*again)[0].beat_at_us, t0 + 20);
    EXPECT_EQ((*again)[0].clean_stop_at_us, 0);
}

TEST_P(StoreConformance, RetentionDeletesSynthesizedRowsLikeVerifiedOnes)
{
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(synthesize(*store, {synthesized(1, 10), synthesized(2, 10)}));
    ASSERT_TRUE(insert(*store, make_event("old")));
    const std::int64_t later = std::numeric_limits<std::int64_t>::max() / 2; // after the rows' received time (now)
    auto pruned = prune(*store, later, 100);
    ASSERT_TRUE(pruned) << pruned.error().message();
    EXPECT_EQ(pruned->deleted, 3);
    store->stop();
    EXPECT_EQ(*open_db()->count(all_rows()), 0);
}
