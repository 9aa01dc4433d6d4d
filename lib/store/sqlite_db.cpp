// The SQLite implementation of event_db. Design: statements are built per call from the filter (a handful of optional terms, every
// value bound, never spliced into the text) and prepared on the spot; an operator's query is
// not a hot path and the ingest writer keeps its own cached statements on its own
// connection. Every filter term has an index that starts with its column and continues with
// received_at_us (the rowid follows implicitly), so "these rows, newest first, from here"
// is one index range with no sort: first pages cost the same in a full database as in an
// empty one. Pagination is by keyset (received_at_us, id), never OFFSET. Long operations
// (scan, prune) work in pages, each its own transaction, so that neither a reader pins the
// WAL for minutes nor a writer holds the lock the daemon's writer needs for more than one
// small batch.
#include "core/time.hpp"
#include "store/detail/outbox.hpp"
#include "store/detail/runners.hpp"
#include "store/event_db.hpp"

#include "store/detail/backends.hpp"
#include "store/detail/db_failure.hpp"
#include "store/detail/files.hpp"
#include "store/detail/query.hpp"
#include "store/detail/record_sql.hpp"
#include "store/detail/schema.hpp"
#include "store/sqlite.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <variant>

namespace cwhook::store::detail {

namespace {

constexpr dialect lite = dialect::sqlite;

failure_text fail(std::string_view what, const sqlite::error& e)
{
    return failure_text{fmt::format("{}: {}", what, e.message)};
}

std::int64_t clamp_to_int64(std::size_t n) noexcept
{
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(std::min(n, max));
}

// Binds in order starting at `first`; the strings live in `params` until the statement resets.
void bind_all(sqlite::statement& s, const std::vector<param>& params, int first = 1)
{
    int i = first;
    for (const auto& p : params) {
        if (const auto* n = std::get_if<std::int64_t>(&p)) {
            s.bind_int64(i, *n);
        } else {
            s.bind_text(i, std::get<std::string>(p));
        }
        ++i;
    }
}

std::optional<std::string> text_or_null(const sqlite::statement& s, int col)
{
    if (s.column_is_null(col)) {
        return std::nullopt;
    }
    return std::string(s.column_text(col));
}

std::optional<std::int64_t> int_or_null(const sqlite::statement& s, int col)
{
    if (s.column_is_null(col)) {
        return std::nullopt;
    }
    return s.column_int64(col);
}

event_summary read_summary(const sqlite::statement& s)
{
    event_summary e;
    e.id = s.column_int64(0);
    e.received_at_us = s.column_int64(1);
    e.type = s.column_text(2);
    e.action = s.column_text(3);
    e.entity_id = int_or_null(s, 4);
    e.company_id = text_or_null(s, 5);
    e.status = parse_event_status(s.column_text(6)).value_or(event_status::unverified);
    e.deliveries = s.column_int64(7);
    e.source = parse_event_source(s.column_text(8)).value_or(event_source::callback);
    e.twin_of = int_or_null(s, 9);
    return e;
}

stored_event read_full(const sqlite::statement& s)
{
    stored_event e;
    e.id = s.column_int64(0);
    e.deliveries = s.column_int64(1);
    e.last_delivery_at_us = s.column_int64(2);
    e.verify_attempts = s.column_int64(3);
    read_record(s, e.record, 4);
    return e;
}

// An exported row comes back with its counters; a row holding its dedupe key stays as it is.
const std::string& import_sql()
{
    static const std::string sql = fmt::format(
        "INSERT INTO events ({}, last_delivery_at_us, deliveries, verify_attempts) VALUES ({}) "
        "ON CONFLICT (dedupe_key) DO NOTHING",
        record_columns(), placeholders(lite, 1, record_field_count() + 3));
    return sql;
}

stored_rejection read_rejection(const sqlite::statement& s)
{
    stored_rejection r;
    r.id = s.column_int64(0);
    r.record.received_at_us = s.column_int64(1);
    r.record.http_status = static_cast<int>(s.column_int64(2));
    r.record.reason = s.column_text(3);
    r.record.detail = s.column_text(4);
    r.record.client_addr = s.column_text(5);
    r.record.path = s.column_text(6);
    r.record.key_url = s.column_text(7);
    r.record.body_sha256 = s.column_text(8);
    r.record.body_size = s.column_int64(9);
    r.record.body_head = s.column_blob(10);
    return r;
}

} // namespace

class sqlite_db final : public event_db {
public:
    static db_result<std::unique_ptr<event_db>> open(const std::string& path, db_access access,
                                                     std::chrono::milliseconds busy_timeout);

    db_result<std::vector<event_summary>> list(const event_filter& f, scan_order order) override;
    db_result<std::int64_t> count(const event_filter& f) override;
    db_result<std::vector<std::int64_t>> ids(const event_filter& f, scan_order order) override;
    db_result<std::optional<stored_event>> get(std::int64_t id, bool with_replays) override;
    db_result<import_outcome> import(std::span<const stored_event> rows) override;
    db_result<std::int64_t> prune(std::int64_t cutoff_us, std::optional<event_status> status,
                                  std::size_t batch) override;
    db_result<std::int64_t> count_older(std::int64_t cutoff_us, std::optional<event_status> status) override;
    db_result<event_stats> stats(std::optional<std::int64_t> since_us) override;
    db_result<window_counts> counts_in_window(std::int64_t start_us, std::int64_t end_us,
                                              std::int64_t bucket_us) override;
    db_result<void> record_replay(const replay_attempt& a) override;
    db_result<bool> settle(const status_update& u) override;
    db_result<std::vector<stored_rejection>> rejections(const rejection_filter& f) override;
    db_result<std::optional<stored_rejection>> rejection(std::int64_t id) override;
    db_result<std::vector<std::string>> explain_list(const event_filter& f) override;
    db_result<std::vector<std::string>> check() override;
    std::int64_t schema_version() const noexcept override { return version; }

protected:
    db_result<std::vector<stored_event>> page(const event_filter& f, scan_order order) override;

private:
    sqlite_db() = default;

    db_result<sqlite::statement> prepare(std::string_view sql)
    {
        auto s = sqlite::statement::prepare(db, sql);
        if (!s) {
            return fail(path, s.error());
        }
        return db_result<sqlite::statement>(boost::system::in_place_value, std::move(*s));
    }

    // Every row of sql (params bound in order), each turned into a T by read(statement).
    template <class T, class Read>
    db_result<std::vector<T>> collect(std::string_view sql, const std::vector<param>& params, Read read)
    {
        auto s = prepare(sql);
        if (!s) {
            return failure_text{s.error()};
        }
        bind_all(*s, params);
        std::vector<T> rows;
        int rc = SQLITE_OK;
        while ((rc = s->step()) == SQLITE_ROW) {
            rows.push_back(read(*s));
        }
        if (rc != SQLITE_DONE) {
            return fail(path, db.last_error(rc));
        }
        return rows;
    }

    template <class F>
    db_result<std::vector<count_row>> counts(const std::string& sql, const std::vector<param>& params, F key_of)
    {
        return collect<count_row>(sql, params, [&key_of](const sqlite::statement& s) {
            return count_row{key_of(s), s.column_int64(1)};
        });
    }

    detail::sql_runner& runner() override { return runner_; }
    const std::string& display_name() const noexcept override { return path; }

    sqlite::database db;
    detail::sqlite_runner runner_{db}; // declared after db: its statements are finalized first
    db_access access = db_access::read_only;
    std::int64_t version = 0;
    std::string path;
};

db_result<std::unique_ptr<event_db>> sqlite_db::open(const std::string& path, db_access access,
                                                     std::chrono::milliseconds busy_timeout)
{
    std::unique_ptr<sqlite_db> p(new sqlite_db());
    p->access = access;
    p->path = path;
    // Read-only users still open read-write when they may (query_only keeps them honest): a
    // SQLITE_OPEN_READONLY connection cannot create the WAL index of a database whose daemon
    // is stopped. Only when the file is not writable do they fall back to a read-only handle.
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (access == db_access::read_write) {
        flags |= SQLITE_OPEN_CREATE;
        // Created like the daemon creates it: folder 0700, file 0600 (detail/files.hpp).
        if (auto r = create_private(path); !r) {
            return failure_text{fmt::format("{}: {}", path, r.error())};
        }
    }
    auto db = sqlite::database::open(path, flags);
    if (!db && access == db_access::read_only) {
        db = sqlite::database::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
    }
    if (!db) {
        return fail(path, db.error());
    }
    p->db = std::move(*db);
    const auto timeout_ms =
        std::clamp<std::chrono::milliseconds::rep>(busy_timeout.count(), 0, std::numeric_limits<int>::max());
    sqlite3_busy_timeout(p->db.handle(), static_cast<int>(timeout_ms));

    if (access == db_access::read_write) {
        auto mode = sqlite::switch_to_wal(p->db, busy_timeout);
        if (!mode) {
            return fail(path, mode.error());
        }
        if (auto r = p->db.exec("PRAGMA foreign_keys = ON"); !r) {
            return fail(path, r.error());
        }
        // Import's inserts touch the same ten B-trees as the daemon's writer: a statement
        // journal SQLite keeps for them stays in memory, not in a temporary file.
        if (auto r = p->db.exec("PRAGMA temp_store = MEMORY"); !r) {
            return fail(path, r.error());
        }
        if (auto r = migrate(p->db); !r) {
            return failure_text{fmt::format("{}: {}", path, r.error())};
        }
    } else if (auto r = p->db.exec("PRAGMA query_only = 1"); !r) {
        return fail(path, r.error());
    }
    auto version = p->db.query_int64("PRAGMA user_version");
    if (!version) {
        return fail(path, version.error());
    }
    if (*version > detail::schema_version) {
        return failure_text{fmt::format("{}: database schema version {} is newer than this cwhook supports ({})", path,
                                   *version, detail::schema_version)};
    }
    if (*version < 1) {
        return failure_text{fmt::format("{}: not a cwhook database (schema version {})", path, *version)};
    }
    p->version = *version;
    return std::unique_ptr<event_db>(std::move(p));
}

db_result<std::vector<event_summary>> sqlite_db::list(const event_filter& f, scan_order order)
{
    const auto w = event_where(f, order, lite);
    std::string sql =
        fmt::format("SELECT {} FROM events{}{}", columns_for(summary_columns, version), w.sql, order_by(order));
    if (f.limit != 0) {
        sql += fmt::format(" LIMIT {}", f.limit);
    }
    return collect<event_summary>(sql, w.params, read_summary);
}

db_result<std::vector<std::string>> sqlite_db::explain_list(const event_filter& f)
{
    const auto w = event_where(f, scan_order::newest_first, lite);
    std::string sql = fmt::format("EXPLAIN QUERY PLAN SELECT {} FROM events{}{}", columns_for(summary_columns, version),
                                  w.sql, order_by(scan_order::newest_first));
    if (f.limit != 0) {
        sql += fmt::format(" LIMIT {}", f.limit);
    }
    return collect<std::string>(sql, w.params,
                                       [](const sqlite::statement& s) { return std::string(s.column_text(3)); });
}

db_result<std::int64_t> sqlite_db::count(const event_filter& f)
{
    const auto w = event_where(f, scan_order::newest_first, lite, false);
    std::string sql = fmt::format("SELECT count(*) FROM events{}", w.sql);
    auto s = prepare(sql);
    if (!s) {
        return failure_text{s.error()};
    }
    bind_all(*s, w.params);
    const int rc = s->step();
    if (rc != SQLITE_ROW) {
        return fail(path, db.last_error(rc));
    }
    std::int64_t n = s->column_int64(0);
    if (f.limit != 0) {
        n = std::min(n, clamp_to_int64(f.limit));
    }
    return n;
}

db_result<std::vector<std::int64_t>> sqlite_db::ids(const event_filter& f, scan_order order)
{
    const auto w = event_where(f, order, lite);
    std::string sql = fmt::format("SELECT id FROM events{}{}", w.sql, order_by(order));
    if (f.limit != 0) {
        sql += fmt::format(" LIMIT {}", f.limit);
    }
    return collect<std::int64_t>(sql, w.params, [](const sqlite::statement& s) { return s.column_int64(0); });
}

db_result<std::optional<stored_event>> sqlite_db::get(std::int64_t id, bool with_replays)
{
    std::optional<stored_event> out;
    {
        auto s = prepare(fmt::format("SELECT {} FROM events WHERE id = ?1", columns_for(full_columns(), version)));
        if (!s) {
            return failure_text{s.error()};
        }
        s->bind_int64(1, id);
        const int rc = s->step();
        if (rc == SQLITE_ROW) {
            out = read_full(*s);
        } else if (rc != SQLITE_DONE) {
            return fail(path, db.last_error(rc));
        }
    }
    if (!out || !with_replays || version < 2) {
        return out;
    }
    auto replays = collect<replay_attempt>(
        "SELECT event_id, at_us, target, http_status, error, job FROM replays WHERE event_id = ? ORDER BY at_us, id",
        {id}, [](const sqlite::statement& s) {
            replay_attempt a;
            a.event_id = s.column_int64(0);
            a.at_us = s.column_int64(1);
            a.target = s.column_text(2);
            a.http_status = static_cast<int>(s.column_int64(3));
            a.error = s.column_text(4);
            a.job = s.column_text(5);
            return a;
        });
    if (!replays) {
        return failure_text{replays.error()};
    }
    out->replays = std::move(*replays);
    return out;
}

db_result<std::vector<stored_event>> sqlite_db::page(const event_filter& f, scan_order order)
{
    const auto w = event_where(f, order, lite);
    return collect<stored_event>(fmt::format("SELECT {} FROM events{}{} LIMIT {}", columns_for(full_columns(), version),
                                             w.sql, order_by(order), f.limit),
                                 w.params, read_full);
}

db_result<import_outcome> sqlite_db::import(std::span<const stored_event> rows)
{
    import_outcome out;
    auto txn = sqlite::transaction::begin(db, sqlite::begin_mode::immediate);
    if (!txn) {
        return fail(path, txn.error());
    }
    auto s = prepare(import_sql());
    if (!s) {
        return failure_text{s.error()};
    }
    for (const stored_event& row : rows) {
        const event_record& e = row.record;
        sqlite::reset_guard guard(*s);
        const int next = detail::bind_record(*s, e, 1);
        s->bind_int64(next, std::max(row.last_delivery_at_us, e.received_at_us));
        s->bind_int64(next + 1, std::max<std::int64_t>(row.deliveries, 1));
        s->bind_int64(next + 2, row.verify_attempts);
        const int rc = s->step();
        if (rc != SQLITE_DONE) {
            return fail(path, db.last_error(rc));
        }
        if (sqlite3_changes64(db.handle()) > 0) {
            ++out.inserted;
        } else {
            ++out.duplicates;
        }
    }
    if (auto r = txn->commit(); !r) {
        return fail(path, r.error());
    }
    return out;
}

db_result<std::int64_t> sqlite_db::count_older(std::int64_t cutoff_us, std::optional<event_status> status)
{
    const auto w = prune_where(cutoff_us, status, lite);
    auto n = collect<std::int64_t>(fmt::format("SELECT count(*) FROM events{}", w.sql), w.params,
                                   [](const sqlite::statement& s) { return s.column_int64(0); });
    if (!n) {
        return failure_text{n.error()};
    }
    return n->empty() ? 0 : n->front();
}

db_result<std::int64_t> sqlite_db::prune(std::int64_t cutoff_us, std::optional<event_status> status, std::size_t batch)
{
    batch = std::max<std::size_t>(batch, 1);
    const auto w = prune_where(cutoff_us, status, lite);
    auto s = prepare(fmt::format("DELETE FROM events WHERE id IN (SELECT id FROM events{} ORDER BY received_at_us LIMIT {})",
                                 w.sql, batch));
    if (!s) {
        return failure_text{s.error()};
    }
    std::int64_t total = 0;
    for (;;) {
        // Autocommit: each batch is its own short write transaction.
        sqlite::reset_guard guard(*s);
        bind_all(*s, w.params);
        const int rc = s->step();
        if (rc != SQLITE_DONE) {
            return fail(path, db.last_error(rc));
        }
        const auto n = sqlite3_changes64(db.handle());
        total += n;
        if (n < clamp_to_int64(batch)) {
            return total;
        }
    }
}

db_result<event_stats> sqlite_db::stats(std::optional<std::int64_t> since_us)
{
    event_stats out;
    const auto q = stats_sql(since_us, lite);
    for (const auto& [sql, member] : q.by_key) {
        auto rows =
            counts(sql, q.since.params, [](const sqlite::statement& s) { return std::string(s.column_text(0)); });
        if (!rows) {
            return failure_text{rows.error()};
        }
        out.*member = std::move(*rows);
    }
    auto days = counts(q.by_day, q.since.params, [](const sqlite::statement& s) { return day_of(s.column_int64(0)); });
    if (!days) {
        return failure_text{days.error()};
    }
    out.by_day = std::move(*days);
    for (const auto& r : out.by_status) {
        out.total += r.count;
    }
    return out;
}

db_result<window_counts> sqlite_db::counts_in_window(std::int64_t start_us, std::int64_t end_us, std::int64_t bucket_us)
{
    window_counts out;
    const auto q = window_sql(start_us, end_us, bucket_us, lite);
    for (const auto& [sql, member] : q.queries) {
        auto rows = collect<bucket_count>(sql, q.range.params, [](const sqlite::statement& s) {
            return bucket_count{s.column_int64(0), std::string(s.column_text(1)), s.column_int64(2)};
        });
        if (!rows) {
            return failure_text{rows.error()};
        }
        out.*member = std::move(*rows);
    }
    return out;
}

db_result<void> sqlite_db::record_replay(const replay_attempt& a)
{
    if (version < 2) {
        return failure_text{fmt::format("{}: schema version {} has no replay history", path, version)};
    }
    auto s = prepare(
        "INSERT INTO replays (event_id, at_us, target, http_status, error, job) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!s) {
        return failure_text{s.error()};
    }
    s->bind_int64(1, a.event_id);
    s->bind_int64(2, a.at_us);
    s->bind_text(3, a.target);
    s->bind_int64(4, a.http_status);
    s->bind_text(5, a.error);
    s->bind_text(6, a.job);
    if (const int rc = s->step(); rc != SQLITE_DONE) {
        return fail(path, db.last_error(rc));
    }
    return {};
}

db_result<bool> sqlite_db::settle(const status_update& u)
{
    auto txn = sqlite::transaction::begin(db, sqlite::begin_mode::immediate);
    if (!txn) {
        return fail(path, txn.error());
    }
    auto s = prepare(R"sql(
UPDATE events
SET status = ?2, verify_reason = ?3, next_verify_at_us = ?4, verify_attempts = verify_attempts + 1
WHERE id = ?1 AND status = ?5
)sql");
    if (!s) {
        return failure_text{s.error()};
    }
    s->bind_int64(1, u.id);
    s->bind_text(2, to_string(u.status));
    s->bind_text(3, u.verify_reason);
    s->bind_int64(4, u.next_verify_at_us);
    s->bind_text(5, to_string(u.from));
    if (const int rc = s->step(); rc != SQLITE_DONE) {
        return fail(path, db.last_error(rc));
    }
    const bool changed = sqlite3_changes64(db.handle()) == 1;
    if (changed && u.status == event_status::verified) {
        const std::int64_t id = u.id;
        if (auto r = detail::outbox::make_forwardable(runner_, std::span(&id, 1), now_us()); !r) {
            return failure_text{fmt::format("{}: {}", path, r.error().message)};
        }
    }
    if (auto r = txn->commit(); !r) {
        return fail(path, r.error());
    }
    return changed;
}

db_result<std::vector<stored_rejection>> sqlite_db::rejections(const rejection_filter& f)
{
    const auto w = rejection_where(f, lite);
    // Ids grow with time (the table is append-only), so id order is newest first.
    std::string sql = fmt::format("SELECT {} FROM rejections{} ORDER BY id DESC", rejection_columns, w.sql);
    if (f.limit != 0) {
        sql += fmt::format(" LIMIT {}", f.limit);
    }
    return collect<stored_rejection>(sql, w.params, read_rejection);
}

db_result<std::optional<stored_rejection>> sqlite_db::rejection(std::int64_t id)
{
    auto s = prepare(fmt::format("SELECT {} FROM rejections WHERE id = ?1", rejection_columns));
    if (!s) {
        return failure_text{s.error()};
    }
    s->bind_int64(1, id);
    const int rc = s->step();
    if (rc == SQLITE_ROW) {
        return std::optional<stored_rejection>(read_rejection(*s));
    }
    if (rc != SQLITE_DONE) {
        return fail(path, db.last_error(rc));
    }
    return std::optional<stored_rejection>();
}

db_result<std::vector<std::string>> sqlite_db::check()
{
    auto out = collect<std::string>("PRAGMA integrity_check", {},
                                           [](const sqlite::statement& s) { return std::string(s.column_text(0)); });
    if (!out) {
        return out;
    }
    auto orphans = collect<std::string>("PRAGMA foreign_key_check", {}, [](const sqlite::statement& s) {
        return fmt::format("foreign key: {} row {} -> {}", s.column_text(0), s.column_int64(1), s.column_text(2));
    });
    if (!orphans) {
        return orphans;
    }
    out->insert(out->end(), orphans->begin(), orphans->end());
    return out;
}

db_result<std::unique_ptr<event_db>> open_sqlite_db(const std::string& path, db_access access,
                                                   std::chrono::milliseconds busy_timeout)
{
    return sqlite_db::open(path, access, busy_timeout);
}

} // namespace cwhook::store::detail
