// The SQLite sql_runner: cached prepared statements, values bound SQLITE_STATIC (the caller's
// span outlives the call), rows copied out by their storage class.
#include "store/detail/runners.hpp"
#include "store/sqlite.hpp"

namespace cwhook::store::detail {

sqlite_runner::sqlite_runner(sqlite::database& db) : db_(db) {}

sqlite_runner::~sqlite_runner() = default;

void sqlite_runner::clear()
{
    cache_.clear();
}

outcome<sql_rows> sqlite_runner::run(std::string_view sql, std::span<const sql_value> params)
{
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        auto stmt = sqlite::statement::prepare(db_, sql, true);
        if (!stmt) {
            return failure{sqlite::to_errc(stmt.error().code), stmt.error().message};
        }
        it = cache_.emplace(std::string(sql), std::move(*stmt)).first;
    }
    sqlite::statement& s = it->second;
    sqlite::reset_guard guard(s);
    int index = 1;
    for (const sql_value& v : params) {
        if (const auto* i = std::get_if<std::int64_t>(&v)) {
            s.bind_int64(index, *i);
        } else if (const auto* t = std::get_if<std::string>(&v)) {
            s.bind_text(index, *t);
        } else if (const auto* b = std::get_if<sql_blob>(&v)) {
            s.bind_blob(index, b->bytes);
        } else {
            s.bind_null(index);
        }
        ++index;
    }
    sql_rows out;
    int rc = SQLITE_OK;
    while ((rc = s.step()) == SQLITE_ROW) {
        const int columns = sqlite3_column_count(s.handle());
        auto& row = out.rows.emplace_back();
        row.reserve(static_cast<std::size_t>(columns));
        for (int c = 0; c < columns; ++c) {
            switch (sqlite3_column_type(s.handle(), c)) {
            case SQLITE_NULL: row.emplace_back(std::monostate{}); break;
            case SQLITE_INTEGER: row.emplace_back(s.column_int64(c)); break;
            case SQLITE_BLOB: row.emplace_back(std::string(s.column_blob(c))); break;
            default: row.emplace_back(std::string(s.column_text(c))); break;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        const auto e = db_.last_error(rc);
        return failure{sqlite::to_errc(e.code), e.message};
    }
    out.affected = sqlite3_changes64(db_.handle());
    return out;
}

} // namespace cwhook::store::detail
