#include "store/event_store.hpp"

#include "store/sqlite.hpp"
#include "store_calls.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace std::string_literals;
using namespace cwhook;
using namespace cwhook::store;
using namespace cwhook::store::test_calls;
namespace fs = std::filesystem;

namespace {

event_record make_event(std::string dedupe_key, event_status status = event_status::verified)
{
    event_record ev;
    ev.received_at_us = 1'700'000'000'000'000;
    ev.status = status;
    ev.verify_reason = status == event_status::verified ? "" : "key_fetch_failed";
    ev.dedupe_key = std::move(dedupe_key);
    ev.body_sha256 = std::string(64, 'a');
    ev.body = R"({"MessageId":"m1","Action":"updated","Type":"ticket","ID":42})";
    ev.method = "POST";
    ev.path = "/callbacks/manage";
    ev.query = "";
    ev.client_addr = "192.0.2.10";
    ev.headers = "Content-Type: application/json\nAuthorization: [redacted]\n";
    ev.content_type = "application/json";
    ev.signature = "c2lnbmF0dXJl";
    ev.message_id = "m1";
    ev.type = "ticket";
    ev.action = "updated";
    ev.entity_id = 42;
    ev.company_id = "training";
    ev.member_id = "admin1";
    ev.from_url = "https://eu.myconnectwise.net";
    ev.product_instance_id = "pi";
    ev.partner_id = "partner";
    ev.callback_id = 7;
    ev.key_url = "https://eu.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkeys/1";
    ev.next_verify_at_us = status == event_status::pending ? ev.received_at_us + 1'000'000 : 0;
    return ev;
}

rejection_record make_rejection(std::int64_t n)
{
    rejection_record r;
    r.received_at_us = 1'700'000'000'000'000 + n;
    r.http_status = 401;
    r.reason = "bad_signature";
    r.detail = fmt::format("attempt {}", n);
    r.client_addr = "192.0.2.66";
    r.path = "/callbacks/manage";
    r.key_url = "https://eu.myconnectwise.net/key";
    r.body_sha256 = std::string(64, 'b');
    r.body_size = 3;
    r.body_head = "x\0\xff"s;
    return r;
}

std::unique_ptr<event_store> open_store(const settings& s)
{
    auto store = event_store::open(s);
    EXPECT_TRUE(store) << store.error();
    return store ? std::move(*store) : nullptr;
}

sqlite::database open_raw(const std::string& path)
{
    auto db = sqlite::database::open(path, SQLITE_OPEN_READWRITE);
    EXPECT_TRUE(db) << db.error().message;
    return db ? std::move(*db) : sqlite::database();
}

std::int64_t query_int64(sqlite::database& db, const std::string& sql)
{
    auto v = db.query_int64(sql.c_str());
    EXPECT_TRUE(v) << sql << ": " << v.error().message;
    return v ? *v : -1;
}

std::string query_text(sqlite::database& db, const std::string& sql)
{
    auto v = db.query_text(sql.c_str());
    EXPECT_TRUE(v) << sql << ": " << v.error().message;
    return v ? *v : std::string();
}

// Parks the writer thread inside a probe callback until release(): the one way to hold it
// still without guessing at timing. Captures are by value so nothing dangles on the writer.
class writer_blocker {
public:
    explicit writer_blocker(event_store& store)
    {
        auto entered = std::make_shared<std::promise<void>>();
        auto entered_future = entered->get_future();
        std::shared_future<void> go = release_.get_future().share();
        EXPECT_TRUE(store.probe([entered, go](result<void>) {
            entered->set_value();
            go.wait();
        }));
        entered_future.wait();
    }
    writer_blocker(const writer_blocker&) = delete;
    writer_blocker& operator=(const writer_blocker&) = delete;
    ~writer_blocker() { release(); }

    void release()
    {
        if (!released_) {
            released_ = true;
            release_.set_value();
        }
    }

private:
    std::promise<void> release_;
    bool released_ = false;
};

} // namespace

class EventStore : public ::testing::Test {
protected:
    settings file_settings() const
    {
        settings s;
        s.path = (dir_ / "var" / "cwhook.db").string();
        return s;
    }

    static settings memory_settings()
    {
        settings s;
        s.path = ":memory:";
        return s;
    }

    cwhook::test::temp_dir tmp_;
    fs::path dir_ = tmp_.path();
};

TEST_F(EventStore, OpenCreatesFolderAndTheCurrentSchema)
{
    const auto s = file_settings();
    open_store(s)->stop();

    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "PRAGMA user_version"), 4);
    EXPECT_EQ(query_text(db, "PRAGMA journal_mode"), "wal");
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                              "('events', 'rejections', 'replays', 'counters', 'destinations', 'deliveries', "
                              "'delivery_attempts', 'catch_up_watermarks', 'catch_up_runs', 'heartbeats')"),
              10);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = "
                              "'events' AND name LIKE 'events_%'"),
              12);
}

// Restores the umask of the test process when the test ends.
class umask_guard {
public:
    explicit umask_guard(mode_t m) : old_(::umask(m)) {}
    ~umask_guard() { ::umask(old_); }
    umask_guard(const umask_guard&) = delete;
    umask_guard& operator=(const umask_guard&) = delete;

private:
    mode_t old_;
};

unsigned mode_of(const fs::path& p)
{
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

TEST_F(EventStore, DatabaseFolderAndFilesArePrivateWhateverTheUmask)
{
    const umask_guard open_umask(0);
    auto s = file_settings();
    s.path = (dir_ / "new" / "var" / "cwhook.db").string();
    auto store = open_store(s);
    ASSERT_TRUE(insert(*store, make_event("m:mode"))); // the WAL and its index exist now
    EXPECT_EQ(mode_of(dir_ / "new"), 0700u);
    EXPECT_EQ(mode_of(dir_ / "new" / "var"), 0700u);
    EXPECT_EQ(mode_of(s.path), 0600u);
    EXPECT_EQ(mode_of(s.path + "-wal"), 0600u);
    EXPECT_EQ(mode_of(s.path + "-shm"), 0600u);
    store->stop();
    EXPECT_EQ(mode_of(s.path), 0600u);
}

TEST_F(EventStore, ExistingFolderKeepsItsMode)
{
    const umask_guard open_umask(0);
    fs::create_directories(dir_ / "shared");
    fs::permissions(dir_ / "shared", fs::perms(0750));
    auto s = file_settings();
    s.path = (dir_ / "shared" / "cwhook.db").string();
    open_store(s)->stop();
    EXPECT_EQ(mode_of(dir_ / "shared"), 0750u); // the operator's (e.g. StateDirectory=)
    EXPECT_EQ(mode_of(s.path), 0600u);
}

TEST_F(EventStore, StatusValuesAreChecked)
{
    const auto s = file_settings();
    open_store(s)->stop();

    auto db = open_raw(s.path);
    auto r = db.exec("INSERT INTO events (received_at_us, status, dedupe_key, last_delivery_at_us, body_sha256, body, "
                     "method, path, query, client_addr, headers, content_type, signature, type, action, key_url) "
                     "VALUES (0, 'bogus', 'k', 0, '', x'', '', '', '', '', '', '', '', '', '', '')");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, SQLITE_CONSTRAINT_CHECK);
}

TEST_F(EventStore, ReopenKeepsRows)
{
    const auto s = file_settings();
    std::int64_t id = 0;
    {
        auto store = open_store(s);
        auto r = insert(*store, make_event("m:keep"));
        ASSERT_TRUE(r);
        id = r->id;
    }
    auto store = open_store(s);
    auto again = insert(*store, make_event("m:keep"));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, id);
    EXPECT_TRUE(again->duplicate);
}

TEST_F(EventStore, PendingAtOpenCountsPendingRows)
{
    const auto s = file_settings();
    {
        auto store = open_store(s);
        ASSERT_TRUE(insert(*store, make_event("m:1", event_status::pending)));
        ASSERT_TRUE(insert(*store, make_event("m:2", event_status::verified)));
        ASSERT_TRUE(insert(*store, make_event("m:3", event_status::pending)));
        EXPECT_EQ(store->unsettled_at_open().pending, 0);
    }
    EXPECT_EQ(open_store(s)->unsettled_at_open().pending, 2);
}

TEST_F(EventStore, NewerSchemaVersionIsRefused)
{
    const auto s = file_settings();
    fs::create_directories(fs::path(s.path).parent_path());
    {
        auto db = sqlite::database::open(s.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        ASSERT_TRUE(db);
        ASSERT_TRUE(db->exec("PRAGMA user_version = 99"));
    }
    auto store = event_store::open(s);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().rfind(s.path + ": ", 0), 0u) << store.error();
    EXPECT_NE(store.error().find("schema version 99 is newer"), std::string::npos) << store.error();
}

TEST_F(EventStore, FolderFailureNamesPathAndReason)
{
    const auto blocker = dir_ / "file";
    {
        std::ofstream(blocker) << "not a folder";
    }
    settings s;
    s.path = (blocker / "sub" / "cwhook.db").string();
    auto store = event_store::open(s);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().rfind(s.path + ": cannot create folder", 0), 0u) << store.error();
}

TEST_F(EventStore, UnopenableFileNamesPathAndReason)
{
    settings s;
    s.path = dir_.string(); // a folder, not a file
    auto store = event_store::open(s);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), s.path + ": unable to open database file");
}

TEST_F(EventStore, InsertReturnsIncreasingIds)
{
    auto store = open_store(memory_settings());
    auto first = insert(*store, make_event("m:1"));
    auto second = insert(*store, make_event("m:2", event_status::pending));
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_GT(first->id, 0);
    EXPECT_GT(second->id, first->id);
    EXPECT_FALSE(second->duplicate);
    EXPECT_EQ(second->deliveries, 1);
    EXPECT_EQ(second->status, event_status::pending);
}

TEST_F(EventStore, DuplicateDedupeKeyBumpsDeliveries)
{
    auto store = open_store(memory_settings());
    auto first = insert(*store, make_event("m:dup", event_status::verified));
    auto second = insert(*store, make_event("m:dup", event_status::pending));
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_FALSE(first->duplicate);
    EXPECT_TRUE(second->duplicate);
    EXPECT_EQ(second->id, first->id);
    EXPECT_EQ(second->deliveries, 2);
    EXPECT_EQ(second->status, event_status::verified); // the stored row's, not the redelivery's
}

TEST_F(EventStore, RedeliveryRecordsLatestDeliveryTime)
{
    const auto s = file_settings();
    {
        auto store = open_store(s);
        auto late = make_event("m:dup");
        late.received_at_us += 5'000'000;
        auto early = make_event("m:dup");
        early.received_at_us += 1'000'000;
        ASSERT_TRUE(insert(*store, make_event("m:dup")));
        ASSERT_TRUE(insert(*store, late));
        ASSERT_TRUE(insert(*store, early)); // committed last, received earlier
    }
    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "SELECT deliveries FROM events"), 3);
    EXPECT_EQ(query_int64(db, "SELECT last_delivery_at_us - received_at_us FROM events"), 5'000'000);
}

TEST_F(EventStore, BodyBytesRoundTripExactly)
{
    const auto s = file_settings();
    const std::string body = "{\"Entity\":\"\xff\xfe\xc3\x28\"}\0\0tail\0"s;
    std::int64_t id = 0;
    {
        auto store = open_store(s);
        auto ev = make_event("b:binary");
        ev.body = body;
        auto r = insert(*store, std::move(ev));
        ASSERT_TRUE(r);
        id = r->id;
    }
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2(s.path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT typeof(body), body FROM events WHERE id = ?", -1, &stmt, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(stmt, 1, id);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "blob");
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 1));
    const std::string stored(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1)));
    EXPECT_EQ(stored, body);
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
}

TEST_F(EventStore, AbsentPayloadFieldsAreNull)
{
    const auto s = file_settings();
    {
        auto store = open_store(s);
        auto ev = make_event("b:nulls");
        ev.message_id.reset();
        ev.entity_id.reset();
        ev.company_id.reset();
        ev.member_id.reset();
        ev.from_url.reset();
        ev.product_instance_id.reset();
        ev.partner_id.reset();
        ev.callback_id.reset();
        ASSERT_TRUE(insert(*store, std::move(ev)));
    }
    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM events WHERE message_id IS NULL AND entity_id IS NULL AND "
                              "company_id IS NULL AND member_id IS NULL AND from_url IS NULL AND "
                              "product_instance_id IS NULL AND partner_id IS NULL AND callback_id IS NULL"),
              1);
}

TEST_F(EventStore, ConcurrentSubmitsAreAllCommittedAndCompletedOnce)
{
    constexpr int threads = 4;
    constexpr int per_thread = 125;
    constexpr int total = threads * per_thread;
    const auto s = file_settings();
    auto store = open_store(s);

    std::vector<std::atomic<int>> calls(total);
    std::vector<std::int64_t> ids(total, 0);
    std::atomic<int> completed{0};
    std::promise<void> all_done;
    std::vector<std::thread> submitters;
    for (int t = 0; t < threads; ++t) {
        submitters.emplace_back([&, t] {
            for (int i = t * per_thread; i < (t + 1) * per_thread; ++i) {
                const bool accepted =
                    store->submit_event(make_event(fmt::format("m:{}", i)), [&, i](result<insert_outcome> r) {
                        calls[i].fetch_add(1);
                        ids[i] = r ? r->id : -1;
                        if (completed.fetch_add(1) + 1 == total) {
                            all_done.set_value();
                        }
                    });
                EXPECT_TRUE(accepted);
            }
        });
    }
    for (auto& t : submitters) {
        t.join();
    }
    all_done.get_future().wait();
    store->stop();

    EXPECT_EQ(completed.load(), total);
    std::set<std::int64_t> distinct;
    for (int i = 0; i < total; ++i) {
        EXPECT_EQ(calls[i].load(), 1) << i;
        EXPECT_GT(ids[i], 0) << i;
        distinct.insert(ids[i]);
    }
    EXPECT_EQ(distinct.size(), static_cast<std::size_t>(total));
    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM events"), total);
}

TEST_F(EventStore, QueueBoundHoldsWhileDatabaseIsLocked)
{
    auto s = file_settings();
    s.queue_limit = 3;
    s.busy_timeout = std::chrono::milliseconds(10);
    auto store = open_store(s);
    auto lock = open_raw(s.path);

    writer_blocker blocker(*store);
    ASSERT_TRUE(lock.exec("BEGIN EXCLUSIVE"));
    std::vector<awaiter<result<insert_outcome>>> done(3);
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(store->submit_event(make_event(fmt::format("m:{}", i)), done[i].callback()));
    }
    EXPECT_EQ(store->queue_depth(), 3u);
    bool called = false;
    EXPECT_FALSE(store->submit_event(make_event("m:over"), [&called](result<insert_outcome>) { called = true; }));
    EXPECT_TRUE(store->submit_rejection(make_rejection(1))); // a queue of its own

    blocker.release();
    for (auto& d : done) {
        auto r = d.get();
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), errc::storage_busy);
    }
    EXPECT_EQ(store->queue_depth(), 0u);

    ASSERT_TRUE(lock.exec("ROLLBACK"));
    EXPECT_TRUE(insert(*store, make_event("m:after")));
    store->stop();
    EXPECT_FALSE(called);
}

TEST_F(EventStore, StatusUpdateFailsBusyWhileLocked)
{
    auto s = file_settings();
    s.busy_timeout = std::chrono::milliseconds(10);
    auto store = open_store(s);
    auto lock = open_raw(s.path);
    ASSERT_TRUE(lock.exec("BEGIN EXCLUSIVE"));
    auto r = update_status(*store, {{1, event_status::verified, "", 0}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_busy);
}

TEST_F(EventStore, PageLimitReportsStorageFullAndKeepsDatabaseIntact)
{
    auto s = file_settings();
    open_store(s)->stop();
    {
        auto db = open_raw(s.path);
        s.max_page_count = query_int64(db, "PRAGMA page_count") + 2;
    }
    {
        auto store = open_store(s);
        auto big = make_event("b:big");
        big.body.assign(256 * 1024, 'x');
        auto r = insert(*store, std::move(big));
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), errc::storage_full);
    }
    auto db = open_raw(s.path);
    EXPECT_EQ(query_text(db, "PRAGMA integrity_check"), "ok");
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM events"), 0);
}

TEST_F(EventStore, SmallWriteSucceedsAfterStorageFull)
{
    auto s = file_settings();
    open_store(s)->stop();
    {
        auto db = open_raw(s.path);
        s.max_page_count = query_int64(db, "PRAGMA page_count") + 2;
    }
    auto store = open_store(s);
    auto big = make_event("b:big");
    big.body.assign(256 * 1024, 'x');
    auto full = insert(*store, std::move(big));
    ASSERT_FALSE(full);
    ASSERT_EQ(full.error(), errc::storage_full);
    EXPECT_TRUE(insert(*store, make_event("m:small")));
}

TEST_F(EventStore, RejectionTableStaysBounded)
{
    const auto s = [this] {
        auto s = file_settings();
        s.max_rejections = 5;
        return s;
    }();
    {
        auto store = open_store(s);
        for (int i = 1; i <= 20; ++i) {
            ASSERT_TRUE(store->submit_rejection(make_rejection(i)));
        }
        ASSERT_TRUE(probe(*store)); // queue order: every rejection is committed by now
        for (int i = 21; i <= 23; ++i) {
            ASSERT_TRUE(store->submit_rejection(make_rejection(i)));
        }
    }
    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM rejections"), 5);
    EXPECT_EQ(query_text(db, "SELECT group_concat(detail, ',') FROM (SELECT detail FROM rejections ORDER BY id)"),
              "attempt 19,attempt 20,attempt 21,attempt 22,attempt 23");
}

TEST_F(EventStore, RejectionFloodCannotFillTheEventQueue)
{
    auto s = file_settings();
    s.queue_limit = 4;
    s.rejection_queue_limit = 10;
    auto store = open_store(s);
    {
        writer_blocker blocker(*store);
        int accepted = 0;
        for (int i = 1; i <= 1000; ++i) {
            accepted += store->submit_rejection(make_rejection(i)) ? 1 : 0;
        }
        EXPECT_EQ(accepted, 10); // the rest dropped, counted by the caller
        EXPECT_EQ(store->queue_depth(), 0u);
        std::vector<awaiter<result<insert_outcome>>> done(4);
        for (int i = 0; i < 4; ++i) {
            EXPECT_TRUE(store->submit_event(make_event(fmt::format("m:genuine-{}", i)), done[i].callback()));
        }
        EXPECT_FALSE(store->submit_event(make_event("m:over"), [](result<insert_outcome>) {})); // its own bound
        blocker.release();
        for (auto& d : done) {
            EXPECT_TRUE(d.get());
        }
    }
    // The writer has taken them: the rejection queue has room again.
    EXPECT_TRUE(store->submit_rejection(make_rejection(1001)));
    store->stop();
    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM events"), 4);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM rejections"), 11);
}

TEST_F(EventStore, RejectionsAndEventsShareTransactions)
{
    auto s = file_settings();
    std::vector<std::size_t> batches;
    std::mutex m;
    auto opened = event_store::open(s, [&](std::size_t jobs, auto) {
        std::lock_guard lock(m);
        batches.push_back(jobs);
    });
    ASSERT_TRUE(opened) << opened.error();
    auto& store = **opened;
    {
        writer_blocker blocker(store);
        for (int i = 1; i <= 5; ++i) {
            ASSERT_TRUE(store.submit_rejection(make_rejection(i)));
        }
        ASSERT_TRUE(store.submit_event(make_event("m:one"), [](result<insert_outcome>) {}));
    }
    ASSERT_TRUE(probe(store));
    store.stop();
    std::lock_guard lock(m);
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0], 6u); // one transaction: five rejection rows and the event
}

TEST_F(EventStore, RejectionBodyHeadIsStoredAsBlob)
{
    const auto s = file_settings();
    {
        auto store = open_store(s);
        ASSERT_TRUE(store->submit_rejection(make_rejection(1)));
    }
    auto db = open_raw(s.path);
    EXPECT_EQ(query_text(db, "SELECT typeof(body_head) FROM rejections"), "blob");
    EXPECT_EQ(query_text(db, "SELECT hex(body_head) FROM rejections"), "7800FF");
    EXPECT_EQ(query_int64(db, "SELECT http_status FROM rejections"), 401);
}

TEST_F(EventStore, DuePendingRowsLoadOldestFirst)
{
    auto store = open_store(memory_settings());
    std::vector<std::int64_t> ids;
    for (const std::int64_t due : {300, 100, 200, 900}) {
        auto ev = make_event(fmt::format("m:{}", due), event_status::pending);
        ev.next_verify_at_us = due;
        ev.body = "body\0"s + std::to_string(due);
        auto r = insert(*store, std::move(ev));
        ASSERT_TRUE(r);
        ids.push_back(r->id);
    }
    auto settled = make_event("m:settled", event_status::failed);
    settled.next_verify_at_us = 50;
    ASSERT_TRUE(insert(*store, std::move(settled)));

    auto due = claim_due(*store, 300, 2);
    ASSERT_TRUE(due);
    ASSERT_EQ(due->size(), 2u);
    EXPECT_EQ((*due)[0].id, ids[1]);
    EXPECT_EQ((*due)[0].body, "body\0"s + "100");
    EXPECT_EQ((*due)[0].signature, "c2lnbmF0dXJl");
    EXPECT_EQ((*due)[0].verify_attempts, 0);
    EXPECT_EQ((*due)[1].id, ids[2]);
    // Claimed rows wait for their lease; the one still due comes next, then none.
    auto rest = claim_due(*store, 300, 10);
    ASSERT_TRUE(rest);
    ASSERT_EQ(rest->size(), 1u);
    EXPECT_EQ((*rest)[0].id, ids[0]);
    EXPECT_TRUE(claim_due(*store, 300, 10)->empty());
}

TEST_F(EventStore, StatusUpdateSettlesPendingRow)
{
    auto store = open_store(memory_settings());
    auto a = insert(*store, make_event("m:a", event_status::pending));
    auto b = insert(*store, make_event("m:b", event_status::pending));
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    const std::int64_t now = 1'800'000'000'000'000;
    ASSERT_TRUE(update_status(*store, {{a->id, event_status::verified, "", 0},
                                       {b->id, event_status::pending, "key_fetch_failed", now + 60'000'000}}));

    auto due = claim_due(*store, now + 60'000'000, 10);
    ASSERT_TRUE(due);
    ASSERT_EQ(due->size(), 1u);
    EXPECT_EQ((*due)[0].id, b->id);
    EXPECT_EQ((*due)[0].verify_attempts, 1);
    EXPECT_TRUE(claim_due(*store, now, 10)->empty());
    EXPECT_EQ(insert(*store, make_event("m:a"))->status, event_status::verified);
}

TEST_F(EventStore, StatusUpdateLeavesSettledRowsAlone)
{
    auto store = open_store(memory_settings());
    auto a = insert(*store, make_event("m:a", event_status::failed));
    ASSERT_TRUE(a);
    ASSERT_TRUE(update_status(*store, {{a->id, event_status::verified, "", 0}})); // from pending: not this row
    EXPECT_EQ(insert(*store, make_event("m:a", event_status::failed))->status, event_status::failed);
}

TEST_F(EventStore, StatusUpdateFromFailedSettlesAFailedRow)
{
    auto store = open_store(memory_settings());
    auto a = insert(*store, make_event("m:a", event_status::failed));
    ASSERT_TRUE(a);
    ASSERT_TRUE(update_status(*store, {{a->id, event_status::verified, "", 0, event_status::failed}}));
    EXPECT_EQ(insert(*store, make_event("m:a", event_status::failed))->status, event_status::verified);
}

// A verified delivery whose dedupe key is held by an unsettled row takes the row over, bytes
// and all: the forger's body stored first under a MessageId never becomes "verified".
TEST_F(EventStore, VerifiedRedeliveryUpgradesAnUnsettledRowWithItsOwnBytes)
{
    const auto s = file_settings();
    for (const auto from : {event_status::pending, event_status::failed}) {
        SCOPED_TRACE(std::string(to_string(from)));
        const std::string key = "m:" + std::string(to_string(from));
        std::int64_t id = 0;
        {
            auto store = open_store(s);
            auto forged = make_event(key, from);
            forged.body = R"({"forged":true})";
            forged.company_id = "evil";
            auto first = insert(*store, forged);
            ASSERT_TRUE(first);
            id = first->id;
            auto genuine = make_event(key, event_status::verified);
            auto second = insert(*store, genuine);
            ASSERT_TRUE(second);
            EXPECT_EQ(second->id, id);
            EXPECT_FALSE(second->duplicate);
            ASSERT_TRUE(second->upgraded_from);
            EXPECT_EQ(*second->upgraded_from, from);
            EXPECT_EQ(second->status, event_status::verified);
            EXPECT_EQ(second->deliveries, 2);
        }
        auto db = open_raw(s.path);
        const auto where = " FROM events WHERE id = " + std::to_string(id);
        EXPECT_EQ(query_text(db, "SELECT status" + where), "verified");
        EXPECT_EQ(query_text(db, "SELECT verify_reason" + where), "");
        EXPECT_EQ(query_text(db, "SELECT body" + where), make_event(key).body);
        EXPECT_EQ(query_text(db, "SELECT company_id" + where), "training");
        EXPECT_EQ(query_int64(db, "SELECT next_verify_at_us" + where), 0);
    }
}

TEST_F(EventStore, UnsettledRedeliveryOfAVerifiedRowIsADuplicate)
{
    auto store = open_store(memory_settings());
    ASSERT_TRUE(insert(*store, make_event("m:a")));
    for (const auto st : {event_status::pending, event_status::failed, event_status::verified}) {
        auto r = insert(*store, make_event("m:a", st));
        ASSERT_TRUE(r);
        EXPECT_TRUE(r->duplicate);
        EXPECT_FALSE(r->upgraded_from);
        EXPECT_EQ(r->status, event_status::verified);
    }
}

TEST_F(EventStore, CountsUnsettledRows)
{
    auto store = open_store(memory_settings());
    ASSERT_TRUE(insert(*store, make_event("m:1", event_status::pending)));
    ASSERT_TRUE(insert(*store, make_event("m:2", event_status::failed)));
    ASSERT_TRUE(insert(*store, make_event("m:3", event_status::failed)));
    ASSERT_TRUE(insert(*store, make_event("m:4")));
    std::promise<result<unsettled_counts>> p;
    ASSERT_TRUE(store->count_unsettled([&p](result<unsettled_counts> r) { p.set_value(r); }));
    const auto r = p.get_future().get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->pending, 1);
    EXPECT_EQ(r->failed, 2);
}

TEST_F(EventStore, ProbeSucceedsOnIdleDatabase)
{
    auto store = open_store(file_settings());
    EXPECT_TRUE(probe(*store));
}

TEST_F(EventStore, ProbeReportsBusyWhileLocked)
{
    auto s = file_settings();
    s.busy_timeout = std::chrono::milliseconds(10);
    auto store = open_store(s);
    auto lock = open_raw(s.path);
    ASSERT_TRUE(lock.exec("BEGIN EXCLUSIVE"));
    auto r = probe(*store);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_busy);
    ASSERT_TRUE(lock.exec("ROLLBACK"));
    EXPECT_TRUE(probe(*store));
}

TEST_F(EventStore, StopFlushesEverythingQueued)
{
    constexpr int total = 300;
    const auto s = file_settings();
    auto store = open_store(s);
    std::atomic<int> succeeded{0};
    {
        writer_blocker blocker(*store); // so that every job below is still queued at stop()
        for (int i = 0; i < total; ++i) {
            ASSERT_TRUE(store->submit_event(make_event(fmt::format("m:{}", i)), [&succeeded](result<insert_outcome> r) {
                if (r) {
                    succeeded.fetch_add(1);
                }
            }));
        }
        EXPECT_EQ(store->queue_depth(), static_cast<std::size_t>(total));
    }
    store->stop();
    EXPECT_EQ(succeeded.load(), total);
    EXPECT_EQ(store->queue_depth(), 0u);
    auto db = open_raw(s.path);
    EXPECT_EQ(query_int64(db, "SELECT count(*) FROM events"), total);
}

TEST_F(EventStore, StopCheckpointsTheWal)
{
    const auto s = file_settings();
    auto store = open_store(s);
    ASSERT_TRUE(insert(*store, make_event("m:1")));
    store->stop();
    const fs::path wal = s.path + "-wal";
    EXPECT_TRUE(!fs::exists(wal) || fs::file_size(wal) == 0);
}

TEST_F(EventStore, SubmitAfterStopReturnsFalse)
{
    auto store = open_store(memory_settings());
    store->stop();
    store->stop(); // idempotent
    bool called = false;
    EXPECT_FALSE(store->submit_event(make_event("m:late"), [&called](result<insert_outcome>) { called = true; }));
    EXPECT_FALSE(store->submit_rejection(make_rejection(1)));
    EXPECT_FALSE(store->submit_status_updates({}, [&called](result<void>) { called = true; }));
    EXPECT_FALSE(store->claim_due_pending(0, 1, [&called](result<std::vector<pending_event>>) { called = true; }));
    EXPECT_FALSE(store->probe([&called](result<void>) { called = true; }));
    EXPECT_FALSE(called);
}

TEST_F(EventStore, FilterQueriesUseIndexes)
{
    const auto s = file_settings();
    open_store(s)->stop();
    auto db = open_raw(s.path);
    const char* queries[] = {
        "SELECT id FROM events WHERE type = ? AND action = ? ORDER BY received_at_us DESC LIMIT 100",
        "SELECT id FROM events WHERE type = ? AND action = ? AND received_at_us >= ?",
        "SELECT id FROM events WHERE entity_id = ? ORDER BY received_at_us DESC",
        "SELECT id FROM events WHERE company_id = ? AND received_at_us BETWEEN ? AND ? ORDER BY "
        "received_at_us",
        "SELECT id FROM events WHERE status = ? ORDER BY received_at_us DESC LIMIT 100",
        "SELECT id FROM events WHERE callback_id = ?",
        "SELECT id FROM events WHERE received_at_us >= ? AND received_at_us < ? ORDER BY received_at_us",
        "SELECT id FROM events WHERE dedupe_key = ?",
        "SELECT id, received_at_us, key_url, signature, body, verify_attempts FROM events "
        "WHERE status = 'pending' AND next_verify_at_us <= ? ORDER BY next_verify_at_us, id LIMIT ?",
        "SELECT id FROM rejections WHERE received_at_us >= ? ORDER BY received_at_us",
    };
    for (const char* q : queries) {
        SCOPED_TRACE(q);
        auto plan = sqlite::statement::prepare(db, fmt::format("EXPLAIN QUERY PLAN {}", q));
        ASSERT_TRUE(plan) << plan.error().message;
        std::string details;
        while (plan->step() == SQLITE_ROW) {
            details += plan->column_text(3);
            details += '\n';
        }
        EXPECT_EQ(details.find("SCAN"), std::string::npos) << details;
        EXPECT_EQ(details.find("TEMP B-TREE"), std::string::npos) << details;
        EXPECT_NE(details.find("USING"), std::string::npos) << details;
    }
}
