#include "store/sqlite.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

using namespace std::string_literals;
using namespace std::chrono_literals;
using cwhook::errc;
namespace sqlite = cwhook::store::sqlite;

namespace {

sqlite::database open_memory()
{
    auto db = sqlite::database::open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    EXPECT_TRUE(db) << db.error().message;
    return std::move(*db);
}

std::int64_t count_rows(sqlite::database& db)
{
    auto n = db.query_int64("SELECT count(*) FROM t");
    EXPECT_TRUE(n) << n.error().message;
    return n ? *n : -1;
}

} // namespace

TEST(Sqlite, OpenFailureCarriesReason)
{
    auto db = sqlite::database::open("/nonexistent-cwhook-folder/x.db", SQLITE_OPEN_READWRITE);
    ASSERT_FALSE(db);
    EXPECT_EQ(db.error().code & 0xff, SQLITE_CANTOPEN);
    EXPECT_EQ(db.error().message, "unable to open database file");
}

TEST(Sqlite, ExecAndQueryInt64)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (41), (1)"));
    auto sum = db.query_int64("SELECT sum(a) FROM t");
    ASSERT_TRUE(sum);
    EXPECT_EQ(*sum, 42);
}

TEST(Sqlite, QueryWithoutRowIsAnError)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER)"));
    EXPECT_FALSE(db.query_int64("SELECT a FROM t"));
}

TEST(Sqlite, PrepareErrorCarriesMessage)
{
    auto db = open_memory();
    auto stmt = sqlite::statement::prepare(db, "SELEC 1");
    ASSERT_FALSE(stmt);
    EXPECT_EQ(stmt.error().code, SQLITE_ERROR);
    EXPECT_NE(stmt.error().message.find("syntax error"), std::string::npos);
}

TEST(Sqlite, BoundValuesReadBackExactly)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n TEXT)"));
    const std::string text = "caf\xc3\xa9";
    const std::string blob = "a\0b\xff"s;
    {
        auto ins = sqlite::statement::prepare(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)");
        ASSERT_TRUE(ins);
        ins->bind_int64(1, -7);
        ins->bind_text(2, text);
        ins->bind_blob(3, blob);
        ins->bind_text_or_null(4, std::nullopt);
        EXPECT_EQ(ins->step(), SQLITE_DONE);
    }
    auto sel = sqlite::statement::prepare(db, "SELECT i, s, b, n FROM t");
    ASSERT_TRUE(sel);
    ASSERT_EQ(sel->step(), SQLITE_ROW);
    EXPECT_EQ(sel->column_int64(0), -7);
    EXPECT_EQ(sel->column_text(1), text);
    EXPECT_EQ(sel->column_blob(2), blob);
    EXPECT_TRUE(sel->column_is_null(3));
    EXPECT_EQ(sel->step(), SQLITE_DONE);
}

TEST(Sqlite, EmptyTextAndBlobAreNotNull)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (s TEXT NOT NULL, b BLOB NOT NULL)"));
    auto ins = sqlite::statement::prepare(db, "INSERT INTO t VALUES (?1, ?2)");
    ASSERT_TRUE(ins);
    ins->bind_text(1, std::string_view());
    ins->bind_blob(2, std::string_view());
    EXPECT_EQ(ins->step(), SQLITE_DONE);
    EXPECT_EQ(count_rows(db), 1);
}

TEST(Sqlite, BindErrorIsReportedByStep)
{
    auto db = open_memory();
    auto stmt = sqlite::statement::prepare(db, "SELECT ?1");
    ASSERT_TRUE(stmt);
    stmt->bind_int64(5, 1);
    stmt->bind_int64(1, 1);
    EXPECT_EQ(stmt->step(), SQLITE_RANGE);
    stmt->reset();
    stmt->bind_int64(1, 3);
    ASSERT_EQ(stmt->step(), SQLITE_ROW);
    EXPECT_EQ(stmt->column_int64(0), 3);
}

TEST(Sqlite, ResetGuardEndsExecutionAndClearsBindings)
{
    auto db = open_memory();
    auto stmt = sqlite::statement::prepare(db, "SELECT ?1 UNION ALL SELECT 2");
    ASSERT_TRUE(stmt);
    {
        sqlite::reset_guard guard(*stmt);
        stmt->bind_int64(1, 1);
        ASSERT_EQ(stmt->step(), SQLITE_ROW);
        EXPECT_NE(sqlite3_stmt_busy(stmt->handle()), 0);
    }
    EXPECT_EQ(sqlite3_stmt_busy(stmt->handle()), 0);
    ASSERT_EQ(stmt->step(), SQLITE_ROW);
    EXPECT_TRUE(stmt->column_is_null(0));
}

TEST(Sqlite, MovedFromStatementIsEmpty)
{
    auto db = open_memory();
    auto stmt = sqlite::statement::prepare(db, "SELECT 1");
    ASSERT_TRUE(stmt);
    sqlite::statement moved = std::move(*stmt);
    EXPECT_FALSE(*stmt);
    ASSERT_TRUE(moved);
    EXPECT_EQ(moved.step(), SQLITE_ROW);
}

TEST(Sqlite, TransactionRollsBackInDestructor)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER)"));
    {
        auto txn = sqlite::transaction::begin(db, sqlite::begin_mode::immediate);
        ASSERT_TRUE(txn);
        ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)"));
        EXPECT_EQ(count_rows(db), 1);
    }
    EXPECT_EQ(count_rows(db), 0);
    EXPECT_NE(sqlite3_get_autocommit(db.handle()), 0);
}

TEST(Sqlite, CommittedTransactionKeepsRows)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER)"));
    {
        auto txn = sqlite::transaction::begin(db);
        ASSERT_TRUE(txn);
        ASSERT_TRUE(db.exec("INSERT INTO t VALUES (1)"));
        ASSERT_TRUE(txn->commit());
        EXPECT_FALSE(txn->active());
    }
    EXPECT_EQ(count_rows(db), 1);
}

TEST(Sqlite, TransactionToleratesRollbackDoneBySqlite)
{
    auto db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER)"));
    auto txn = sqlite::transaction::begin(db);
    ASSERT_TRUE(txn);
    ASSERT_TRUE(db.exec("ROLLBACK")); // as SQLite does by itself after some errors
    txn->rollback();
    EXPECT_FALSE(txn->active());
    EXPECT_NE(sqlite3_get_autocommit(db.handle()), 0);
}

TEST(Sqlite, NestedBeginFails)
{
    auto db = open_memory();
    auto outer = sqlite::transaction::begin(db);
    ASSERT_TRUE(outer);
    auto inner = sqlite::transaction::begin(db);
    ASSERT_FALSE(inner);
    EXPECT_NE(inner.error().message.find("within a transaction"), std::string::npos);
}

TEST(Sqlite, ResultCodesMapToProjectErrors)
{
    EXPECT_EQ(sqlite::to_errc(SQLITE_BUSY), errc::storage_busy);
    EXPECT_EQ(sqlite::to_errc(SQLITE_BUSY_SNAPSHOT), errc::storage_busy);
    EXPECT_EQ(sqlite::to_errc(SQLITE_LOCKED), errc::storage_busy);
    EXPECT_EQ(sqlite::to_errc(SQLITE_FULL), errc::storage_full);
    EXPECT_EQ(sqlite::to_errc(SQLITE_IOERR_WRITE), errc::storage_error);
    EXPECT_EQ(sqlite::to_errc(SQLITE_CONSTRAINT_UNIQUE), errc::storage_error);
}

// Two connections opening a new database together (two daemons, a daemon and the CLI) both
// switch it to WAL. The switch upgrades a read lock to a write lock, and SQLite refuses that
// upgrade at once while another connection holds the write lock, busy timeout or not.
TEST(Sqlite, SwitchToWalWaitsForAnotherConnectionsWriteLock)
{
    cwhook::test::temp_dir dir;
    const auto path = dir.file("new.db");
    auto a = sqlite::database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(a->exec("CREATE TABLE t (a INTEGER)")); // still the default rollback journal
    auto b = sqlite::database::open(path, SQLITE_OPEN_READWRITE);
    ASSERT_TRUE(b) << b.error().message;
    // Both wait for locks, as the daemon's connections do: a's COMMIT waits for b's read lock,
    // which b lets go between its attempts.
    sqlite3_busy_timeout(a->handle(), 60'000);
    sqlite3_busy_timeout(b->handle(), 60'000);

    auto held = sqlite::transaction::begin(*a, sqlite::begin_mode::immediate);
    ASSERT_TRUE(held);
    auto refused = sqlite::switch_to_wal(*b, 0ms);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code & 0xff, SQLITE_BUSY);

    // a lets go once b has been refused again and is retrying (its second statement started).
    struct attempts {
        std::atomic<int> started{0};
        std::atomic<bool> signalled{false};
        std::promise<void> retrying;
        void signal()
        {
            if (!signalled.exchange(true)) {
                retrying.set_value();
            }
        }
    } seen;
    sqlite3_trace_v2(
        b->handle(), SQLITE_TRACE_STMT,
        [](unsigned, void* ctx, void*, void*) {
            auto* s = static_cast<attempts*>(ctx);
            if (++s->started == 2) {
                s->signal();
            }
            return 0;
        },
        &seen);
    std::thread release([&] {
        seen.retrying.get_future().wait();
        EXPECT_TRUE(held->commit());
    });
    auto mode = sqlite::switch_to_wal(*b, 60s);
    seen.signal(); // it gave up without retrying: a lets go all the same
    release.join();
    sqlite3_trace_v2(b->handle(), 0, nullptr, nullptr);
    ASSERT_TRUE(mode) << mode.error().message;
    EXPECT_EQ(*mode, "wal");
    EXPECT_GE(seen.started.load(), 2);
}
