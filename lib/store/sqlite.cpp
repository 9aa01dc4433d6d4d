#include "store/sqlite.hpp"

#include <limits>
#include <utility>

namespace cwhook::store::sqlite {

errc to_errc(int code) noexcept
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return errc::storage_busy;
    case SQLITE_FULL: return errc::storage_full;
    default: return errc::storage_error;
    }
}

// ---- database ---------------------------------------------------------------------------

database::database(database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

database& database::operator=(database&& other) noexcept
{
    if (this != &other) {
        close();
        db_ = std::exchange(other.db_, nullptr);
    }
    return *this;
}

database::~database()
{
    close();
}

outcome<database> database::open(const std::string& path, int flags)
{
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
        // SQLite hands back a handle even on failure (unless out of memory); it carries the
        // reason and must still be closed.
        error e{rc, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)};
        sqlite3_close_v2(db);
        return e;
    }
    sqlite3_extended_result_codes(db, 1);
    return database(db);
}

outcome<void> database::exec(const char* sql)
{
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        return last_error(rc);
    }
    return {};
}

outcome<std::int64_t> database::query_int64(const char* sql)
{
    auto stmt = statement::prepare(*this, sql);
    if (!stmt) {
        return stmt.error();
    }
    const int rc = stmt->step();
    if (rc == SQLITE_ROW) {
        return stmt->column_int64(0);
    }
    if (rc == SQLITE_DONE) {
        return error{SQLITE_ERROR, "query returned no row"};
    }
    return last_error(rc);
}

outcome<std::string> database::query_text(const char* sql)
{
    auto stmt = statement::prepare(*this, sql);
    if (!stmt) {
        return stmt.error();
    }
    const int rc = stmt->step();
    if (rc == SQLITE_ROW) {
        return std::string(stmt->column_text(0));
    }
    if (rc == SQLITE_DONE) {
        return error{SQLITE_ERROR, "query returned no row"};
    }
    return last_error(rc);
}

error database::last_error(int code) const
{
    return error{code, db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(code)};
}

outcome<std::string> switch_to_wal(database& db, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto mode = db.query_text("PRAGMA journal_mode = WAL");
        if (mode || (mode.error().code & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
            return mode;
        }
        sqlite3_sleep(5);
    }
}

void database::close() noexcept
{
    // close_v2 never fails for a valid handle; leftover statements would keep a zombie
    // connection alive until they are finalized.
    sqlite3_close_v2(std::exchange(db_, nullptr));
}

// ---- statement --------------------------------------------------------------------------

statement::statement(statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(std::exchange(other.bind_rc_, SQLITE_OK))
{
}

statement& statement::operator=(statement&& other) noexcept
{
    if (this != &other) {
        sqlite3_finalize(stmt_);
        stmt_ = std::exchange(other.stmt_, nullptr);
        bind_rc_ = std::exchange(other.bind_rc_, SQLITE_OK);
    }
    return *this;
}

statement::~statement()
{
    sqlite3_finalize(stmt_);
}

outcome<statement> statement::prepare(database& db, std::string_view sql, bool persistent)
{
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        return error{SQLITE_TOOBIG, "statement text too long"};
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()),
                                      persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return db.last_error(rc);
    }
    if (stmt == nullptr) {
        return error{SQLITE_MISUSE, "statement text is empty"};
    }
    return statement(stmt);
}

namespace {

// A null data pointer would make SQLite bind NULL instead of an empty value.
constexpr char empty_bytes[] = "";

} // namespace

void statement::bind_int64(int index, std::int64_t value) noexcept
{
    const int rc = sqlite3_bind_int64(stmt_, index, value);
    if (bind_rc_ == SQLITE_OK) {
        bind_rc_ = rc;
    }
}

void statement::bind_text(int index, std::string_view value) noexcept
{
    const char* data = value.data() != nullptr ? value.data() : empty_bytes;
    const int rc = sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_STATIC, SQLITE_UTF8);
    if (bind_rc_ == SQLITE_OK) {
        bind_rc_ = rc;
    }
}

void statement::bind_blob(int index, std::string_view value) noexcept
{
    const char* data = value.data() != nullptr ? value.data() : empty_bytes;
    const int rc = sqlite3_bind_blob64(stmt_, index, data, value.size(), SQLITE_STATIC);
    if (bind_rc_ == SQLITE_OK) {
        bind_rc_ = rc;
    }
}

void statement::bind_null(int index) noexcept
{
    const int rc = sqlite3_bind_null(stmt_, index);
    if (bind_rc_ == SQLITE_OK) {
        bind_rc_ = rc;
    }
}

void statement::bind_text_or_null(int index, const std::optional<std::string>& value) noexcept
{
    if (value) {
        bind_text(index, *value);
    } else {
        bind_null(index);
    }
}

void statement::bind_int64_or_null(int index, std::optional<std::int64_t> value) noexcept
{
    if (value) {
        bind_int64(index, *value);
    } else {
        bind_null(index);
    }
}

int statement::step() noexcept
{
    if (bind_rc_ != SQLITE_OK) {
        return bind_rc_;
    }
    return sqlite3_step(stmt_);
}

std::int64_t statement::column_int64(int index) const noexcept
{
    return sqlite3_column_int64(stmt_, index);
}

std::string_view statement::column_text(int index) const noexcept
{
    // Pointer first, then size: that order avoids a type conversion invalidating the pointer.
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index));
    return data != nullptr ? std::string_view(data, size) : std::string_view();
}

std::string_view statement::column_blob(int index) const noexcept
{
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, index));
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index));
    return data != nullptr ? std::string_view(data, size) : std::string_view();
}

bool statement::column_is_null(int index) const noexcept
{
    return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

void statement::reset() noexcept
{
    // sqlite3_reset repeats the last step's error; it was already reported by step().
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bind_rc_ = SQLITE_OK;
}

// ---- transaction ------------------------------------------------------------------------

transaction::transaction(transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

transaction::~transaction()
{
    rollback();
}

outcome<transaction> transaction::begin(database& db, begin_mode mode)
{
    const char* sql = "BEGIN";
    switch (mode) {
    case begin_mode::deferred: sql = "BEGIN DEFERRED"; break;
    case begin_mode::immediate: sql = "BEGIN IMMEDIATE"; break;
    case begin_mode::exclusive: sql = "BEGIN EXCLUSIVE"; break;
    }
    auto r = db.exec(sql);
    if (!r) {
        return r.error();
    }
    return transaction(db);
}

outcome<void> transaction::commit()
{
    CWHOOK_CHECK(db_ != nullptr);
    auto r = db_->exec("COMMIT");
    if (r) {
        db_ = nullptr;
    }
    return r;
}

void transaction::rollback() noexcept
{
    database* db = std::exchange(db_, nullptr);
    // After SQLITE_FULL, IOERR or NOMEM SQLite may already have rolled back on its own; a
    // second ROLLBACK would only fail with "no transaction is active".
    if (db != nullptr && *db && sqlite3_get_autocommit(db->handle()) == 0) {
        sqlite3_exec(db->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

} // namespace cwhook::store::sqlite
