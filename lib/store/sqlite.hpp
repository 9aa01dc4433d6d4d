// Thin RAII wrapper over the SQLite C API, internal to lib/store: a connection, a prepared
// statement and a transaction that each release what they hold in their destructor without
// throwing. Failures are values (an extended result code plus SQLite's message), never
// exceptions. Not thread-safe: one thread uses a connection and its statements at a time.
#pragma once

#include "core/error.hpp"

#include <sqlite3.h>

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace cwhook::store::sqlite {

// One failed SQLite call. Not an aggregate on purpose: C++20 would otherwise let an integer
// construct it, and outcome<std::int64_t> could no longer tell a value from an error.
struct error {
    error() = default;
    error(int c, std::string m) : code(c), message(std::move(m)) {}

    int code = SQLITE_ERROR;  // extended result code
    std::string message;      // sqlite3_errmsg() at the time of the failure
};

template <class T>
using outcome = boost::system::result<T, error>;

// Busy/locked -> storage_busy, full -> storage_full, anything else -> storage_error.
errc to_errc(int code) noexcept;

class database {
public:
    database() noexcept = default;
    database(database&& other) noexcept;
    database& operator=(database&& other) noexcept;
    database(const database&) = delete;
    database& operator=(const database&) = delete;
    ~database();

    // flags: SQLITE_OPEN_*. Extended result codes are switched on.
    static outcome<database> open(const std::string& path, int flags);

    // Runs statements that return no rows the caller needs (DDL, PRAGMA, BEGIN/COMMIT).
    outcome<void> exec(const char* sql);
    // The first column of the first row (PRAGMA user_version, journal_mode, count(*)).
    outcome<std::int64_t> query_int64(const char* sql);
    outcome<std::string> query_text(const char* sql);

    // The failure `code` just returned by a call on this connection, with its message.
    error last_error(int code) const;

    // Finalizes nothing: statements must be destroyed first. Idempotent.
    void close() noexcept;

    sqlite3* handle() const noexcept { return db_; }
    explicit operator bool() const noexcept { return db_ != nullptr; }

private:
    explicit database(sqlite3* db) noexcept : db_(db) {}

    sqlite3* db_ = nullptr;
};

class statement {
public:
    statement() noexcept = default;
    statement(statement&& other) noexcept;
    statement& operator=(statement&& other) noexcept;
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    ~statement();

    // persistent: a hint that the statement is cached and reused for the life of the
    // connection (SQLITE_PREPARE_PERSISTENT).
    static outcome<statement> prepare(database& db, std::string_view sql, bool persistent = false);

    // Parameters are 1-based. Text and blobs are bound SQLITE_STATIC: the bytes must stay
    // alive and unchanged until reset(). The first failing bind is remembered and returned
    // by the next step(), so a run of binds needs one check.
    void bind_int64(int index, std::int64_t value) noexcept;
    void bind_text(int index, std::string_view value) noexcept;
    void bind_blob(int index, std::string_view value) noexcept;
    void bind_null(int index) noexcept;
    void bind_text_or_null(int index, const std::optional<std::string>& value) noexcept;
    void bind_int64_or_null(int index, std::optional<std::int64_t> value) noexcept;

    // SQLITE_ROW, SQLITE_DONE or an (extended) error code.
    int step() noexcept;

    // Column accessors are 0-based; views stay valid until the next step() or reset().
    std::int64_t column_int64(int index) const noexcept;
    std::string_view column_text(int index) const noexcept;
    std::string_view column_blob(int index) const noexcept;
    bool column_is_null(int index) const noexcept;

    // Ends the current execution (releasing its read lock) and clears the bindings, so the
    // statement keeps no pointer into the caller's data.
    void reset() noexcept;

    sqlite3_stmt* handle() const noexcept { return stmt_; }
    explicit operator bool() const noexcept { return stmt_ != nullptr; }

private:
    explicit statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}

    sqlite3_stmt* stmt_ = nullptr;
    int bind_rc_ = SQLITE_OK;
};

// Resets a cached statement when the scope ends, whichever way it ends.
class reset_guard {
public:
    explicit reset_guard(statement& stmt) noexcept : stmt_(stmt) {}
    reset_guard(const reset_guard&) = delete;
    reset_guard& operator=(const reset_guard&) = delete;
    ~reset_guard() { stmt_.reset(); }

private:
    statement& stmt_;
};

// PRAGMA journal_mode = WAL; returns the mode now in force. Switching a database into WAL
// upgrades a read lock to a write lock, which SQLite refuses at once (SQLITE_BUSY, the busy
// handler not called) while another connection switches the same file: two daemons, or a
// daemon and the CLI, opening a new database together. Retried until `timeout` has passed.
outcome<std::string> switch_to_wal(database& db, std::chrono::milliseconds timeout);

enum class begin_mode { deferred, immediate, exclusive };

// Rolls back in its destructor unless commit() succeeded.
class transaction {
public:
    transaction(transaction&& other) noexcept;
    transaction& operator=(transaction&&) = delete;
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction();

    static outcome<transaction> begin(database& db, begin_mode mode = begin_mode::deferred);

    // On failure the transaction stays open (SQLITE_BUSY leaves it so) and is rolled back
    // by rollback() or the destructor.
    outcome<void> commit();
    void rollback() noexcept;

    bool active() const noexcept { return db_ != nullptr; }

private:
    explicit transaction(database& db) noexcept : db_(&db) {}

    database* db_ = nullptr;
};

} // namespace cwhook::store::sqlite
