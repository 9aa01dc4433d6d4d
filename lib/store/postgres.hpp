// Thin RAII wrapper over libpq, internal to lib/store (the PostgreSQL backend's files only):
// a connection, a result set and the parameters of one statement. Every statement goes through
// the extended protocol with binary parameters and binary results, so bodies travel as the
// exact bytes, never escaped. Failures are values (SQLSTATE plus the server's message), never
// exceptions. Not thread-safe: one thread uses a connection and its results at a time.
#pragma once

#include "core/error.hpp"

#include <libpq-fe.h>

#include <boost/system/result.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::store::pg {

// One failed libpq call: the SQLSTATE ("" when the failure was the connection's, not a
// statement's) and the message, which names no password (libpq never quotes one).
struct error {
    error() = default;
    error(std::string state, std::string m, bool lost) : sqlstate(std::move(state)), message(std::move(m)), connection_lost(lost) {}

    std::string sqlstate;
    std::string message;
    bool connection_lost = false;  // the connection is unusable: reconnect before the next statement
};

template <class T>
using outcome = boost::system::result<T, error>;

// Unreachable, shutting down, read-only (a standby: failover in progress) -> storage_unavailable;
// disk full -> storage_full; lock timeouts, deadlocks, serialization -> storage_busy; else
// storage_error.
errc to_errc(const error& e) noexcept;

// The parameters of one statement, all sent in binary: int8, text (UTF-8), bytea or NULL. Text
// and bytea values are NOT copied: the viewed bytes must outlive the statement's execution.
// Text that is not valid UTF-8 (a raw header byte, say) is stored cleaned (clean_text): one
// odd request must never make a whole batch fail.
class params {
public:
    void reserve(std::size_t n);
    void add(std::int64_t v);
    void add(std::optional<std::int64_t> v);
    void add_text(std::string_view v);
    void add_text(const std::optional<std::string>& v);
    void add_bytea(std::string_view v);
    void add_null_text();
    std::size_t size() const noexcept { return values_.size(); }

    const Oid* types() const noexcept { return types_.data(); }
    const char* const* values() const noexcept { return values_.data(); }
    const int* lengths() const noexcept { return lengths_.data(); }
    const int* formats() const noexcept { return formats_.data(); }

private:
    std::vector<Oid> types_;
    std::vector<const char*> values_;
    std::vector<int> lengths_;
    std::vector<int> formats_;
    std::deque<std::array<char, 8>> ints_;  // stable addresses for the big-endian int8 values
    std::deque<std::string> cleaned_;       // stable addresses for cleaned text
};

// A statement's rows (binary format). Columns are read by position.
class rows {
public:
    explicit rows(PGresult* r) noexcept : r_(r) {}

    int size() const noexcept { return PQntuples(r_.get()); }
    bool empty() const noexcept { return size() == 0; }
    // Rows a command changed (INSERT/UPDATE/DELETE without RETURNING).
    std::int64_t affected() const noexcept;
    bool is_null(int row, int col) const noexcept { return PQgetisnull(r_.get(), row, col) != 0; }
    // int2, int4 or int8 columns.
    std::int64_t int64(int row, int col) const noexcept;
    std::optional<std::int64_t> int64_or_null(int row, int col) const noexcept;
    // text or bytea columns: the raw bytes.
    std::string_view bytes(int row, int col) const noexcept;
    std::string text(int row, int col) const { return std::string(bytes(row, col)); }
    std::optional<std::string> text_or_null(int row, int col) const;
    const PGresult* get() const noexcept { return r_.get(); }

private:
    struct clear {
        void operator()(PGresult* r) const noexcept { PQclear(r); }
    };
    std::unique_ptr<PGresult, clear> r_;
};

class connection {
public:
    connection() noexcept = default;

    // Connects (blocking, at most connect_timeout unless the URL says otherwise). A server that
    // vanished (a black-holed network, not a refused port) is noticed within seconds: data
    // unacknowledged for 3 s (tcp_user_timeout) or 7 s of silent keepalives end the connection.
    // Manage waits about 5 s for an answer and never retries a timeout, so the writer must fail
    // (429, which Manage retries) rather than wait longer. application_name is
    // "cwhook". The URL's own settings win over these defaults.
    static outcome<connection> open(const std::string& url, std::chrono::seconds connect_timeout = std::chrono::seconds(2));

    bool is_open() const noexcept { return c_ != nullptr && PQstatus(c_.get()) == CONNECTION_OK; }
    void close() noexcept { c_.reset(); }

    // Statements with no parameters, possibly several (DDL, BEGIN, COMMIT, SET). Text results.
    outcome<void> exec(const char* sql);
    // One statement, binary parameters and results.
    outcome<rows> query(const std::string& sql, const params& p = {});
    // The first column of the first row as text (SHOW ..., current_setting()).
    outcome<std::string> query_text(const char* sql);

    // host:port/db of this connection (no user, no password), for logs.
    std::string describe() const;

private:
    error last_error(const PGresult* r) const;

    struct finish {
        void operator()(PGconn* c) const noexcept { PQfinish(c); }
    };
    std::unique_ptr<PGconn, finish> c_;
};

// A transaction that rolls back in its destructor unless committed. A commit whose answer
// is lost (connection gone) is reported as a failure: the caller cannot know it happened.
class transaction {
public:
    static outcome<transaction> begin(connection& c);
    transaction(transaction&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
    transaction& operator=(transaction&&) = delete;
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction();

    outcome<void> commit();

private:
    explicit transaction(connection& c) noexcept : c_(&c) {}
    connection* c_ = nullptr;
};

// libpq's message on one line: runs of newlines, tabs and spaces become one space, none at the ends.
std::string trimmed(const char* message);

// Replaces bytes that are not valid UTF-8, and NUL (which PostgreSQL text cannot hold), with
// U+FFFD. Returns nullopt when s is already clean (the common case: no copy).
std::optional<std::string> clean_text(std::string_view s);

} // namespace cwhook::store::pg
