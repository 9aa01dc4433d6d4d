// The PostgreSQL implementation of event_db: the same statements as sqlite_db.cpp from the
// same builders (detail/query.hpp), "$N" placeholders, binary rows. Each call is its own
// statement (autocommit) except import, one transaction; prune deletes in batches of its own
// transactions, taking rows FOR UPDATE SKIP LOCKED so that it never waits for, nor deletes
// twice, what the daemons' retention is deleting. A lost connection fails the call that found
// it (operators' commands print the reason, the admin API answers 503) and the next call
// connects again.
#include "core/time.hpp"
#include "store/detail/backends.hpp"
#include "store/detail/db_failure.hpp"
#include "store/detail/outbox.hpp"
#include "store/detail/postgres_record.hpp"
#include "store/detail/postgres_schema.hpp"
#include "store/detail/query.hpp"
#include "store/detail/runners.hpp"
#include "store/postgres.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace cwhook::store::detail {

namespace {

constexpr dialect pgsql = dialect::postgres;

void bind_all(pg::params& p, const std::vector<param>& values)
{
    for (const auto& v : values) {
        if (const auto* n = std::get_if<std::int64_t>(&v)) {
            p.add(*n);
        } else {
            p.add_text(std::string_view(std::get<std::string>(v)));
        }
    }
}

event_summary read_summary(const pg::rows& r, int row)
{
    event_summary e;
    e.id = r.int64(row, 0);
    e.received_at_us = r.int64(row, 1);
    e.type = r.text(row, 2);
    e.action = r.text(row, 3);
    e.entity_id = r.int64_or_null(row, 4);
    e.company_id = r.text_or_null(row, 5);
    e.status = parse_event_status(r.bytes(row, 6)).value_or(event_status::unverified);
    e.deliveries = r.int64(row, 7);
    e.source = parse_event_source(r.bytes(row, 8)).value_or(event_source::callback);
    e.twin_of = r.int64_or_null(row, 9);
    return e;
}

stored_event read_full(const pg::rows& r, int row)
{
    stored_event e;
    e.id = r.int64(row, 0);
    e.deliveries = r.int64(row, 1);
    e.last_delivery_at_us = r.int64(row, 2);
    e.verify_attempts = r.int64(row, 3);
    read_record(r, row, e.record, 4);
    return e;
}

stored_rejection read_rejection(const pg::rows& r, int row)
{
    stored_rejection out;
    out.id = r.int64(row, 0);
    out.record.received_at_us = r.int64(row, 1);
    out.record.http_status = static_cast<int>(r.int64(row, 2));
    out.record.reason = r.text(row, 3);
    out.record.detail = r.text(row, 4);
    out.record.client_addr = r.text(row, 5);
    out.record.path = r.text(row, 6);
    out.record.key_url = r.text(row, 7);
    out.record.body_sha256 = r.text(row, 8);
    out.record.body_size = r.int64(row, 9);
    out.record.body_head = r.text(row, 10);
    return out;
}

const std::string& import_sql()
{
    static const std::string sql = fmt::format(
        "INSERT INTO events ({}, last_delivery_at_us, deliveries, verify_attempts) VALUES ({}) "
        "ON CONFLICT (dedupe_key) DO NOTHING",
        record_columns(), placeholders(pgsql, 1, record_field_count() + 3));
    return sql;
}

std::string limit_clause(std::size_t limit)
{
    return limit == 0 ? std::string() : fmt::format(" LIMIT {}", limit);
}

class postgres_db final : public event_db {
public:
    static db_result<std::unique_ptr<event_db>> open(const settings& s, db_access access);

    db_result<std::vector<event_summary>> list(const event_filter& f, scan_order order) override
    {
        const auto w = event_where(f, order, pgsql);
        return collect<event_summary>(fmt::format("SELECT {} FROM events{}{}{}", columns_for(summary_columns, version_),
                                                  w.sql, order_by(order), limit_clause(f.limit)),
                                      w.params, read_summary);
    }

    db_result<std::int64_t> count(const event_filter& f) override
    {
        const auto w = event_where(f, scan_order::newest_first, pgsql, false);
        auto n = single_int(fmt::format("SELECT count(*) FROM events{}", w.sql), w.params);
        if (n && f.limit != 0) {
            return std::min<std::int64_t>(*n, static_cast<std::int64_t>(f.limit));
        }
        return n;
    }

    db_result<std::vector<std::int64_t>> ids(const event_filter& f, scan_order order) override
    {
        const auto w = event_where(f, order, pgsql);
        return collect<std::int64_t>(
            fmt::format("SELECT id FROM events{}{}{}", w.sql, order_by(order), limit_clause(f.limit)), w.params,
            [](const pg::rows& r, int row) { return r.int64(row, 0); });
    }

    db_result<std::optional<stored_event>> get(std::int64_t id, bool with_replays) override;
    db_result<import_outcome> import(std::span<const stored_event> rows) override;
    db_result<std::int64_t> prune(std::int64_t cutoff_us, std::optional<event_status> status,
                                  std::size_t batch) override;

    db_result<std::int64_t> count_older(std::int64_t cutoff_us, std::optional<event_status> status) override
    {
        const auto w = prune_where(cutoff_us, status, pgsql);
        return single_int(fmt::format("SELECT count(*) FROM events{}", w.sql), w.params);
    }

    db_result<event_stats> stats(std::optional<std::int64_t> since_us) override;
    db_result<window_counts> counts_in_window(std::int64_t start_us, std::int64_t end_us,
                                              std::int64_t bucket_us) override;
    db_result<void> record_replay(const replay_attempt& a) override;
    db_result<bool> settle(const status_update& u) override;

    db_result<std::vector<stored_rejection>> rejections(const rejection_filter& f) override
    {
        const auto w = rejection_where(f, pgsql);
        // Ids come from one sequence: id order is arrival order, give or take rows in flight.
        return collect<stored_rejection>(fmt::format("SELECT {} FROM rejections{} ORDER BY id DESC{}",
                                                     rejection_columns, w.sql, limit_clause(f.limit)),
                                         w.params, read_rejection);
    }

    db_result<std::optional<stored_rejection>> rejection(std::int64_t id) override
    {
        auto rows = collect<stored_rejection>(fmt::format("SELECT {} FROM rejections WHERE id = $1", rejection_columns),
                                              {id}, read_rejection);
        if (!rows) {
            return failure_text{rows.error()};
        }
        return rows->empty() ? std::optional<stored_rejection>() : std::optional<stored_rejection>(rows->front());
    }

    db_result<std::vector<std::string>> explain_list(const event_filter& f) override
    {
        const auto w = event_where(f, scan_order::newest_first, pgsql);
        return collect<std::string>(fmt::format("EXPLAIN SELECT {} FROM events{}{}{}",
                                                columns_for(summary_columns, version_), w.sql,
                                                order_by(scan_order::newest_first), limit_clause(f.limit)),
                                    w.params, [](const pg::rows& r, int row) { return r.text(row, 0); });
    }

    db_result<std::vector<std::string>> check() override;

    std::int64_t schema_version() const noexcept override { return version_; }

protected:
    db_result<std::vector<stored_event>> page(const event_filter& f, scan_order order) override
    {
        const auto w = event_where(f, order, pgsql);
        return collect<stored_event>(fmt::format("SELECT {} FROM events{}{}{}", columns_for(full_columns(), version_),
                                                 w.sql, order_by(order), limit_clause(f.limit)),
                                     w.params, read_full);
    }

private:
    postgres_db() = default;

    failure_text fail(const pg::error& e) const { return failure_text{fmt::format("{}: {}", name_, e.message)}; }

    // Connects (again) when the connection was lost; read-only sessions stay read-only.
    boost::system::result<void, pg::error> connect()
    {
        if (conn_.is_open()) {
            return {};
        }
        auto c = pg::connection::open(url_);
        if (!c) {
            return c.error();
        }
        conn_ = std::move(*c);
        if (access_ == db_access::read_only) {
            if (auto r = conn_.exec("SET default_transaction_read_only = on"); !r) {
                conn_.close();
                return r.error();
            }
        }
        return {};
    }

    // One statement on its own (autocommit). A connection found dead (the server restarted, a
    // failover, an idle timeout) is replaced and the statement sent once more: it never
    // reached a server that could have run it, or its effect is one a repeat does not change
    // (reads, conditional updates; a replay attempt recorded twice at worst).
    pg::outcome<pg::rows> run(const std::string& sql, const pg::params& p)
    {
        if (auto c = connect(); !c) {
            return c.error();
        }
        auto r = conn_.query(sql, p);
        if (!r && r.error().connection_lost) {
            conn_.close();
            if (auto c = connect(); !c) {
                return c.error();
            }
            r = conn_.query(sql, p);
        }
        return r;
    }

    template <class T, class Read>
    db_result<std::vector<T>> collect(const std::string& sql, const std::vector<param>& values, Read read)
    {
        pg::params p;
        bind_all(p, values);
        auto r = run(sql, p);
        if (!r) {
            return fail(r.error());
        }
        std::vector<T> out;
        out.reserve(static_cast<std::size_t>(r->size()));
        for (int row = 0; row < r->size(); ++row) {
            out.push_back(read(*r, row));
        }
        return out;
    }

    db_result<std::int64_t> single_int(const std::string& sql, const std::vector<param>& values)
    {
        auto rows = collect<std::int64_t>(sql, values, [](const pg::rows& r, int row) { return r.int64(row, 0); });
        if (!rows) {
            return failure_text{rows.error()};
        }
        return rows->empty() ? 0 : rows->front();
    }

    detail::sql_runner& runner() override { return runner_; }
    const std::string& display_name() const noexcept override { return name_; }

    pg::connection conn_;
    // Autocommit statements (replaced connection and one more try, as run()), and statements
    // inside a transaction this object began (no retry: the transaction died with the connection).
    detail::postgres_runner runner_{[this](const std::string& sql, const pg::params& p) -> detail::outcome<pg::rows> {
        auto r = run(sql, p);
        if (!r) {
            return detail::failure{pg::to_errc(r.error()), r.error().message};
        }
        return std::move(*r);
    }};
    detail::postgres_runner txn_runner_{
        [this](const std::string& sql, const pg::params& p) -> detail::outcome<pg::rows> {
            auto r = conn_.query(sql, p);
            if (!r) {
                return detail::failure{pg::to_errc(r.error()), r.error().message};
            }
            return std::move(*r);
        }};
    std::string url_;
    db_access access_ = db_access::read_only;
    std::string name_;
    std::int64_t version_ = 0;
};

db_result<std::unique_ptr<event_db>> postgres_db::open(const settings& s, db_access access)
{
    std::unique_ptr<postgres_db> p(new postgres_db());
    p->name_ = redact_url(s.url);
    if (auto why = check_url(s.url); !why.empty()) {
        return failure_text{fmt::format("invalid PostgreSQL connection string: {}", why)};
    }
    p->url_ = s.url;
    p->access_ = access;
    if (auto c = p->connect(); !c) {
        return p->fail(c.error());
    }
    if (access == db_access::read_write) {
        if (auto r = postgres_migrate(p->conn_); !r) {
            return failure_text{fmt::format("{}: {}", p->name_, r.error())};
        }
    }
    auto version = postgres_read_version(p->conn_);
    if (!version) {
        return failure_text{fmt::format("{}: {}", p->name_, version.error())};
    }
    if (*version > postgres_schema_version()) {
        return failure_text{fmt::format("{}: database schema version {} is newer than this cwhook supports ({})",
                                        p->name_, *version, postgres_schema_version())};
    }
    if (*version < 1) {
        return failure_text{fmt::format("{}: not a cwhook database (no cwhook schema)", p->name_)};
    }
    p->version_ = *version;
    return std::unique_ptr<event_db>(std::move(p));
}

db_result<std::optional<stored_event>> postgres_db::get(std::int64_t id, bool with_replays)
{
    auto rows = collect<stored_event>(
        fmt::format("SELECT {} FROM events WHERE id = $1", columns_for(full_columns(), version_)), {id}, read_full);
    if (!rows) {
        return failure_text{rows.error()};
    }
    if (rows->empty()) {
        return std::optional<stored_event>();
    }
    std::optional<stored_event> out(std::move(rows->front()));
    if (!with_replays) {
        return out;
    }
    auto replays = collect<replay_attempt>(
        "SELECT event_id, at_us, target, http_status, error, job FROM replays WHERE event_id = $1 ORDER BY at_us, id",
        {id}, [](const pg::rows& r, int row) {
            replay_attempt a;
            a.event_id = r.int64(row, 0);
            a.at_us = r.int64(row, 1);
            a.target = r.text(row, 2);
            a.http_status = static_cast<int>(r.int64(row, 3));
            a.error = r.text(row, 4);
            a.job = r.text(row, 5);
            return a;
        });
    if (!replays) {
        return failure_text{replays.error()};
    }
    out->replays = std::move(*replays);
    return out;
}

db_result<import_outcome> postgres_db::import(std::span<const stored_event> rows)
{
    import_outcome out;
    if (auto c = connect(); !c) {
        return fail(c.error());
    }
    auto txn = pg::transaction::begin(conn_);
    if (!txn) {
        return fail(txn.error());
    }
    for (const stored_event& row : rows) {
        const event_record& e = row.record;
        pg::params p;
        bind_record(p, e);
        p.add(std::max(row.last_delivery_at_us, e.received_at_us));
        p.add(std::max<std::int64_t>(row.deliveries, 1));
        p.add(row.verify_attempts);
        auto r = conn_.query(import_sql(), p);
        if (!r) {
            return fail(r.error());
        }
        if (r->affected() > 0) {
            ++out.inserted;
        } else {
            ++out.duplicates;
        }
    }
    if (auto r = txn->commit(); !r) {
        return fail(r.error());
    }
    return out;
}

db_result<std::int64_t> postgres_db::prune(std::int64_t cutoff_us, std::optional<event_status> status,
                                           std::size_t batch)
{
    batch = std::max<std::size_t>(batch, 1);
    const auto w = prune_where(cutoff_us, status, pgsql);
    const std::string sql = fmt::format(
        "DELETE FROM events WHERE id IN (SELECT id FROM events{} ORDER BY received_at_us LIMIT {} FOR UPDATE SKIP "
        "LOCKED)",
        w.sql, batch);
    std::int64_t total = 0;
    for (;;) {
        pg::params p;
        bind_all(p, w.params);
        auto r = run(sql, p);  // autocommit: each batch is its own short transaction
        if (!r) {
            return fail(r.error());
        }
        const std::int64_t n = r->affected();
        total += n;
        if (n < static_cast<std::int64_t>(batch)) {
            return total;
        }
    }
}

db_result<event_stats> postgres_db::stats(std::optional<std::int64_t> since_us)
{
    event_stats out;
    const auto q = stats_sql(since_us, pgsql);
    for (const auto& [sql, member] : q.by_key) {
        auto rows = collect<count_row>(sql, q.since.params, [](const pg::rows& r, int row) {
            return count_row{r.text(row, 0), r.int64(row, 1)};
        });
        if (!rows) {
            return failure_text{rows.error()};
        }
        out.*member = std::move(*rows);
    }
    auto days = collect<count_row>(q.by_day, q.since.params, [](const pg::rows& r, int row) {
        return count_row{day_of(r.int64(row, 0)), r.int64(row, 1)};
    });
    if (!days) {
        return failure_text{days.error()};
    }
    out.by_day = std::move(*days);
    for (const auto& r : out.by_status) {
        out.total += r.count;
    }
    return out;
}

db_result<window_counts> postgres_db::counts_in_window(std::int64_t start_us, std::int64_t end_us,
                                                       std::int64_t bucket_us)
{
    window_counts out;
    const auto q = window_sql(start_us, end_us, bucket_us, pgsql);
    for (const auto& [sql, member] : q.queries) {
        auto rows = collect<bucket_count>(sql, q.range.params, [](const pg::rows& r, int row) {
            return bucket_count{r.int64(row, 0), r.text(row, 1), r.int64(row, 2)};
        });
        if (!rows) {
            return failure_text{rows.error()};
        }
        out.*member = std::move(*rows);
    }
    return out;
}

db_result<void> postgres_db::record_replay(const replay_attempt& a)
{
    pg::params p;
    p.add(a.event_id);
    p.add(a.at_us);
    p.add_text(std::string_view(a.target));
    p.add(std::int64_t{a.http_status});
    p.add_text(std::string_view(a.error));
    p.add_text(std::string_view(a.job));
    if (auto r = run(
            "INSERT INTO replays (event_id, at_us, target, http_status, error, job) VALUES ($1, $2, $3, $4, $5, $6)", p);
        !r) {
        return fail(r.error());
    }
    return {};
}

db_result<bool> postgres_db::settle(const status_update& u)
{
    if (auto c = connect(); !c) {
        return fail(c.error());
    }
    auto txn = pg::transaction::begin(conn_);
    if (!txn) {
        return fail(txn.error());
    }
    pg::params p;
    bind_status_update(p, u);
    auto r = conn_.query(update_status_sql, p);
    if (!r) {
        return fail(r.error());
    }
    const bool changed = r->affected() == 1;
    if (changed && u.status == event_status::verified) {
        const std::int64_t id = u.id;
        if (auto f = detail::outbox::make_forwardable(txn_runner_, std::span(&id, 1), now_us()); !f) {
            return failure_text{fmt::format("{}: {}", name_, f.error().message)};
        }
    }
    if (auto c = txn->commit(); !c) {
        return fail(c.error());
    }
    return changed;
}

db_result<std::vector<std::string>> postgres_db::check()
{
    // The server keeps its own pages consistent (checksums, WAL); what cwhook can check is
    // that its schema is whole: the version it knows and every index its queries rely on.
    std::vector<std::string> problems;
    auto present = collect<std::string>(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN ('events', "
        "'rejections', 'replays', 'deliveries', 'delivery_attempts', 'catch_up_runs')",
        {}, [](const pg::rows& r, int row) { return r.text(row, 0); });
    if (!present) {
        return present;
    }
    for (const std::string& name : postgres_index_names()) {
        if (std::find(present->begin(), present->end(), name) == present->end()) {
            problems.push_back(fmt::format("missing index {}", name));
        }
    }
    if (version_ != postgres_schema_version()) {
        problems.push_back(fmt::format("schema version {} (this cwhook: {})", version_, postgres_schema_version()));
    }
    if (problems.empty()) {
        problems.emplace_back("ok");
    }
    return problems;
}

} // namespace

db_result<std::unique_ptr<event_db>> open_postgres_db(const settings& s, db_access access)
{
    return postgres_db::open(s, access);
}

} // namespace cwhook::store::detail
