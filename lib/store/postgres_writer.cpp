// The PostgreSQL backend's ingest writer. One connection, one transaction per batch:
//   - the batch's new deliveries go in one multi-row INSERT ... ON CONFLICT (dedupe_key) DO
//     NOTHING RETURNING, rows sorted by dedupe key, so that two instances inserting the same
//     keys take their locks in the same order and never deadlock;
//   - a delivery the INSERT skipped is a redelivery (here or on another instance, whose
//     uncommitted row the INSERT waited for): its row's counters are bumped, and a verified
//     one takes over a pending/failed row, exactly as on SQLite;
//   - COMMIT with synchronous_commit on (set per session unless the URL asks for more), and
//     only then the callbacks: an acknowledgement is as durable as the server's commit. A
//     COMMIT whose answer is lost is a failure (429): Manage retries, the retry is deduped.
// A lost connection, a read-only server (a standby: failover in progress) or a shutdown
// closes the connection; the next job reconnects, at most once per backoff step (0.1 s
// doubling to 5 s), and fails fast meanwhile. libpq's multi-host URLs with
// target_session_attrs=read-write find the new primary. Claims of pending rows and retention
// deletes take their rows FOR UPDATE SKIP LOCKED, so instances never work on the same rows.
#include "core/log.hpp"
#include "core/time.hpp"
#include "store/detail/backends.hpp"
#include "store/detail/catch_up.hpp"
#include "store/detail/outbox.hpp"
#include "store/detail/postgres_record.hpp"
#include "store/detail/postgres_schema.hpp"
#include "store/detail/query.hpp"
#include "store/detail/runners.hpp"
#include "store/postgres.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace cwhook::store::detail {

namespace {

constexpr dialect pgsql = dialect::postgres;

// Rows per INSERT statement: the protocol allows 65535 parameters, a row takes 25.
constexpr std::size_t rows_per_insert = 1000;

std::string insert_events_sql(std::size_t rows)
{
    const int fields = record_field_count();
    std::string sql = fmt::format("INSERT INTO events ({}, last_delivery_at_us) VALUES ", record_columns());
    for (std::size_t r = 0; r < rows; ++r) {
        const int first = static_cast<int>(r) * fields + 1;
        // last_delivery_at_us is the first receipt: the row's own received_at_us parameter.
        sql += fmt::format("{}({}, ${})", r == 0 ? "" : ", ", placeholders(pgsql, first, fields), first);
    }
    sql += " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key";
    return sql;
}

const std::string& upgrade_event_sql()
{
    static const std::string sql = fmt::format(
        "UPDATE events SET {} WHERE id = $1 AND status IN ('pending', 'failed')", record_assignments(pgsql, 2));
    return sql;
}

constexpr const char* bump_duplicate_sql = R"sql(
UPDATE events SET
    deliveries = deliveries + 1,
    last_delivery_at_us = greatest(last_delivery_at_us, $2)
WHERE dedupe_key = $1
RETURNING id, deliveries, status
)sql";

constexpr const char* insert_rejection_sql = R"sql(
INSERT INTO rejections (
    received_at_us, http_status, reason, detail, client_addr, path, key_url, body_sha256,
    body_size, body_head)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
)sql";

// Several instances insert rejections: ids come from one sequence, so the newest rows are
// still the highest ids (up to the few in flight).
constexpr const char* prune_rejections_sql =
    "DELETE FROM rejections WHERE id <= (SELECT max(id) FROM rejections) - $1";

constexpr const char* prune_events_sql = R"sql(
DELETE FROM events WHERE id IN (
    SELECT id FROM events
    WHERE received_at_us < $1 AND status <> 'pending'
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state IN ('pending', 'failing'))
    ORDER BY received_at_us
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING status
)sql";

constexpr const char* count_unsettled_sql = R"sql(
SELECT (SELECT count(*) FROM events WHERE status = 'pending'),
       (SELECT count(*) FROM events WHERE status = 'failed')
)sql";

// Most overdue first, as on SQLite: due_at is the row's next look before the claim moved it.
constexpr const char* claim_due_pending_sql = R"sql(
WITH due AS (
    SELECT id, next_verify_at_us AS due_at FROM events
    WHERE status = 'pending' AND next_verify_at_us <= $1
    ORDER BY next_verify_at_us, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
UPDATE events SET next_verify_at_us = $3
FROM due WHERE events.id = due.id
RETURNING events.id, events.received_at_us, events.key_url, events.signature, events.body,
          events.verify_attempts, due.due_at
)sql";

std::int64_t clamp_to_int64(std::size_t n) noexcept
{
    return static_cast<std::int64_t>(std::min<std::size_t>(n, static_cast<std::size_t>(INT64_MAX)));
}

// Stored verified, or unverified while unverified events are forwarded (verify.mode = "off").
bool forwards(const event_job& e) noexcept
{
    return e.record.status == event_status::verified ||
           (e.record.status == event_status::unverified && e.forward_unverified);
}

class postgres_writer final : public writer {
public:
    explicit postgres_writer(const settings& s) : settings_(s), name_(redact_url(s.url)) {}

    outcome<std::size_t> write(std::span<job> jobs) override;
    outcome<std::vector<pending_event>> claim_due_pending(std::int64_t now_us, std::size_t limit,
                                                          std::int64_t lease_us) override;
    outcome<void> probe() override;
    outcome<unsettled_counts> count_unsettled() override;
    outcome<void> read_outbox(const outbox_job& j) override;
    void close() override { conn_.close(); }
    const std::string& name() const override { return name_; }

    // Connects and migrates; a failure here is fatal at start-up.
    boost::system::result<void, std::string> open();

private:
    outcome<void> connected();
    pg::outcome<pg::transaction> begin();
    boost::system::result<void, std::string> configure_session();
    failure fail(const pg::error& e);
    outcome<void> insert_events(std::span<job> jobs);
    outcome<void> find_twins(std::span<event_job* const> events);
    outcome<void> settle_skipped(event_job& j);
    outcome<void> execute(const rejection_job& j);
    outcome<void> execute(const status_job& j);
    outcome<void> execute(prune_job& j);

    settings settings_;
    std::string name_;
    pg::connection conn_;
    std::chrono::steady_clock::time_point next_connect_{};
    std::chrono::milliseconds backoff_{0};
    std::string last_connect_error_;
    std::vector<std::int64_t> forwardable_; // events made forwardable in the current batch
    postgres_runner runner_{[this](const std::string& sql, const pg::params& p) -> outcome<pg::rows> {
        auto r = conn_.query(sql, p);
        if (!r) {
            return fail(r.error());
        }
        return std::move(*r);
    }};
};

failure postgres_writer::fail(const pg::error& e)
{
    const errc code = pg::to_errc(e);
    if (e.connection_lost || code == errc::storage_unavailable) {
        conn_.close();  // the next job reconnects (and finds the new primary)
    }
    return failure{code, e.message};
}

boost::system::result<void, std::string> postgres_writer::configure_session()
{
    // An acknowledgement waits for the commit's flush (and for synchronous standbys, where the
    // server has any). Stronger settings from the URL (remote_write, remote_apply) stay.
    auto level = conn_.query_text("SHOW synchronous_commit");
    if (!level) {
        return level.error().message;
    }
    if (*level == "off" || *level == "local") {
        if (auto r = conn_.exec("SET synchronous_commit = on"); !r) {
            return r.error().message;
        }
    }
    // A lock held elsewhere (an operator's open transaction, a migration) must not hold a
    // delivery past Manage's 5 s wait: after 2 s the batch fails with 429, which Manage
    // retries. A lock_timeout from the URL or the server stays.
    auto lock_wait = conn_.query_text("SHOW lock_timeout");
    if (!lock_wait) {
        return lock_wait.error().message;
    }
    if (*lock_wait == "0") {
        if (auto r = conn_.exec("SET lock_timeout = '2s'"); !r) {
            return r.error().message;
        }
    }
    auto read_only = conn_.query_text("SHOW transaction_read_only");
    if (!read_only) {
        return read_only.error().message;
    }
    if (*read_only == "on") {
        return std::string("the server is read-only (a standby?); add target_session_attrs=read-write to the URL");
    }
    return {};
}

outcome<void> postgres_writer::connected()
{
    if (conn_.is_open()) {
        return {};
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_connect_) {
        return failure{errc::storage_unavailable, fmt::format("reconnecting to PostgreSQL: {}", last_connect_error_)};
    }
    auto c = pg::connection::open(settings_.url);
    std::string why;
    if (c) {
        conn_ = std::move(*c);
        if (auto r = configure_session(); !r) {
            why = r.error();
            conn_.close();
        }
    } else {
        why = c.error().message;
    }
    if (!why.empty()) {
        backoff_ = std::clamp<std::chrono::milliseconds>(backoff_ * 2, std::chrono::milliseconds(100),
                                                         std::chrono::milliseconds(5000));
        next_connect_ = now + backoff_;
        last_connect_error_ = why;
        return failure{errc::storage_unavailable, why};
    }
    if (backoff_.count() != 0) {
        log::info("store: reconnected to PostgreSQL", {{"server", conn_.describe()}});
    }
    backoff_ = {};
    return {};
}

boost::system::result<void, std::string> postgres_writer::open()
{
    auto c = pg::connection::open(settings_.url);
    if (!c) {
        return c.error().message;
    }
    conn_ = std::move(*c);
    if (auto r = configure_session(); !r) {
        return r.error();
    }
    if (auto r = postgres_migrate(conn_); !r) {
        return r.error();
    }
    // An acknowledged event on a primary whose standbys are all asynchronous exists on that
    // one server until they catch up: a failover in that window loses it.
    auto standbys = conn_.query_text("SHOW synchronous_standby_names");
    if (standbys && standbys->empty()) {
        log::warn("store: PostgreSQL has no synchronous standby (synchronous_standby_names is empty); an "
                  "acknowledged event is on the primary alone until replicas catch up, and a failover in that "
                  "window loses it",
                  {{"server", conn_.describe()}});
    }
    return {};
}

// A connection found dead at BEGIN (the server restarted since the last batch, or an idle
// timeout closed it) has run nothing of this batch: replaced at once, not after a failure.
pg::outcome<pg::transaction> postgres_writer::begin()
{
    {
        auto t = pg::transaction::begin(conn_);
        if (t || !t.error().connection_lost) {
            return t;
        }
    }
    conn_.close();
    if (auto r = connected(); !r) {
        return pg::error("", r.error().message, true);
    }
    return pg::transaction::begin(conn_);
}

outcome<std::size_t> postgres_writer::write(std::span<job> jobs)
{
    if (auto r = connected(); !r) {
        return r.error();
    }
    auto txn = begin();
    if (!txn) {
        return fail(txn.error());
    }
    forwardable_.clear();
    if (auto r = insert_events(jobs); !r) {
        return r.error();
    }
    bool added_rejections = false;
    for (job& j : jobs) {
        outcome<void> r;
        if (const auto* rej = std::get_if<rejection_job>(&j)) {
            added_rejections = true;
            r = execute(*rej);
        } else if (const auto* u = std::get_if<status_job>(&j)) {
            r = execute(*u);
        } else if (auto* p = std::get_if<prune_job>(&j)) {
            r = execute(*p);
        } else if (auto* o = std::get_if<outbox_job>(&j)) {
            r = o->run(runner_, forwardable_);
        }
        if (!r) {
            return r.error();
        }
    }
    if (added_rejections) {
        pg::params p;
        p.add(clamp_to_int64(settings_.max_rejections));
        if (auto r = conn_.query(prune_rejections_sql, p); !r) {
            return fail(r.error());
        }
    }
    // Last: the feed counter's row lock is held from here to COMMIT only.
    if (auto r = outbox::make_forwardable(runner_, forwardable_, now_us()); !r) {
        return r.error();
    }
    if (auto r = txn->commit(); !r) {
        return fail(r.error());
    }
    return forwardable_.size();
}

// A callback about to become forwardable whose (type, entity id) has a synthesized event is
// that event's twin when its Entity is not newer (store/catch_up.hpp). One query per batch
// finds the synthesized rows of all candidates (the partial index events_synth); a body is
// read only when one exists.
outcome<void> postgres_writer::find_twins(std::span<event_job* const> events)
{
    if (!entity_updated) {
        return {};
    }
    std::vector<event_job*> candidates;
    for (event_job* e : events) {
        if (forwards(*e) && e->record.source == event_source::callback && e->record.entity_id) {
            candidates.push_back(e);
        }
    }
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> synthesized; // -> (id, at)
    for (std::size_t at = 0; at < candidates.size(); at += rows_per_insert) {
        const std::size_t n = std::min(rows_per_insert, candidates.size() - at);
        std::string values;
        pg::params p;
        for (std::size_t i = 0; i < n; ++i) {
            const event_record& r = candidates[at + i]->record;
            p.add_text(std::string_view(r.type));
            p.add(*r.entity_id);
            values += fmt::format("{}(${}::text, ${}::bigint)", i == 0 ? "" : ", ", 2 * i + 1, 2 * i + 2);
        }
        auto r =
            conn_.query(fmt::format("SELECT DISTINCT ON (type, entity_id) type, entity_id, id, entity_updated_at_us "
                                    "FROM events WHERE status = 'synthesized' AND (type, entity_id) IN (VALUES {}) "
                                    "ORDER BY type, entity_id, entity_updated_at_us DESC, id DESC",
                                    values),
                        p);
        if (!r) {
            return fail(r.error());
        }
        for (int row = 0; row < r->size(); ++row) {
            synthesized[{std::string(r->bytes(row, 0)), r->int64(row, 1)}] = {r->int64(row, 2), r->int64(row, 3)};
        }
    }
    if (synthesized.empty()) {
        return {};
    }
    for (event_job* e : candidates) {
        event_record& r = e->record;
        const auto it = synthesized.find({r.type, *r.entity_id});
        if (it == synthesized.end()) {
            continue;
        }
        if (const auto updated = entity_updated(r.body); updated && *updated <= it->second.second) {
            r.twin_of = it->second.first;
            r.entity_updated_at_us = *updated;
        }
    }
    return {};
}

outcome<void> postgres_writer::insert_events(std::span<job> jobs)
{
    std::vector<event_job*> events;
    for (job& j : jobs) {
        if (auto* e = std::get_if<event_job>(&j)) {
            events.push_back(e);
        }
    }
    if (events.empty()) {
        return {};
    }
    if (auto r = find_twins(events); !r) {
        return r;
    }
    std::vector<event_job*> sorted = events;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const event_job* a, const event_job* b) { return a->record.dedupe_key < b->record.dedupe_key; });
    // Each dedupe key's first job in sorted order is the one the INSERT stores.
    std::unordered_map<std::string_view, event_job*> first_of_key;
    for (event_job* e : sorted) {
        first_of_key.emplace(e->record.dedupe_key, e);
    }
    std::unordered_map<event_job*, bool> inserted;
    for (std::size_t at = 0; at < sorted.size(); at += rows_per_insert) {
        const std::size_t n = std::min(rows_per_insert, sorted.size() - at);
        pg::params p;
        p.reserve(n * static_cast<std::size_t>(record_field_count()));
        for (std::size_t i = 0; i < n; ++i) {
            bind_record(p, sorted[at + i]->record);
        }
        auto r = conn_.query(insert_events_sql(n), p);
        if (!r) {
            return fail(r.error());
        }
        for (int row = 0; row < r->size(); ++row) {
            const auto it = first_of_key.find(r->bytes(row, 1));
            if (it == first_of_key.end()) {
                continue;  // cannot happen: every returned key was sent
            }
            event_job* e = it->second;
            e->outcome = insert_outcome{};
            e->outcome.id = r->int64(row, 0);
            e->outcome.status = e->record.status;
            inserted[e] = true;
            if (forwards(*e) && !e->record.twin_of) {
                forwardable_.push_back(e->outcome.id);
            }
        }
    }
    // The others, in queue order: redeliveries of rows stored before (or just now).
    for (event_job* e : events) {
        if (inserted.contains(e)) {
            continue;
        }
        if (auto r = settle_skipped(*e); !r) {
            return r;
        }
    }
    return {};
}

outcome<void> postgres_writer::settle_skipped(event_job& j)
{
    const event_record& e = j.record;
    pg::params p;
    p.add_text(std::string_view(e.dedupe_key));
    p.add(e.received_at_us);
    auto b = conn_.query(bump_duplicate_sql, p);
    if (!b) {
        return fail(b.error());
    }
    if (b->empty()) {
        // Skipped, yet no row holds its key: deleted in between (retention). Try again later.
        return failure{errc::storage_busy, "the row of a redelivery vanished during the batch"};
    }
    j.outcome.id = b->int64(0, 0);
    j.outcome.deliveries = b->int64(0, 1);
    j.outcome.duplicate = true;
    j.outcome.status = parse_event_status(b->bytes(0, 2)).value_or(event_status::unverified);
    if (e.status == event_status::verified &&
        (j.outcome.status == event_status::pending || j.outcome.status == event_status::failed)) {
        pg::params u;
        u.add(j.outcome.id);
        bind_record(u, e, true);
        if (auto r = conn_.query(upgrade_event_sql(), u); !r) {
            return fail(r.error());
        }
        j.outcome.upgraded_from = j.outcome.status;
        j.outcome.status = event_status::verified;
        j.outcome.duplicate = false;
        if (!e.twin_of) {
            forwardable_.push_back(j.outcome.id);
        }
    }
    return {};
}

outcome<void> postgres_writer::execute(const rejection_job& j)
{
    const rejection_record& r = j.record;
    pg::params p;
    p.add(r.received_at_us);
    p.add(std::int64_t{r.http_status});
    p.add_text(std::string_view(r.reason));
    p.add_text(std::string_view(r.detail));
    p.add_text(std::string_view(r.client_addr));
    p.add_text(std::string_view(r.path));
    p.add_text(std::string_view(r.key_url));
    p.add_text(std::string_view(r.body_sha256));
    p.add(r.body_size);
    p.add_bytea(r.body_head);
    if (auto q = conn_.query(insert_rejection_sql, p); !q) {
        return fail(q.error());
    }
    return {};
}

outcome<void> postgres_writer::execute(const status_job& j)
{
    for (const status_update& u : j.updates) {
        pg::params p;
        bind_status_update(p, u);
        auto r = conn_.query(update_status_sql, p);
        if (!r) {
            return fail(r.error());
        }
        if (u.status == event_status::verified && r->affected() == 1) {
            auto twin = catch_up::link_settled_twin(runner_, u.id, entity_updated);
            if (!twin) {
                return twin.error();
            }
            if (!*twin) {
                forwardable_.push_back(u.id);
            }
        }
    }
    return {};
}

outcome<void> postgres_writer::execute(prune_job& j)
{
    pg::params p;
    p.add(j.cutoff_us);
    p.add(clamp_to_int64(j.limit));
    auto r = conn_.query(prune_events_sql, p);
    if (!r) {
        return fail(r.error());
    }
    j.outcome = {};
    for (int row = 0; row < r->size(); ++row) {
        ++j.outcome.deleted;
        if (r->bytes(row, 0) == "failed") {
            ++j.outcome.failed;
        }
    }
    return {};
}

outcome<std::vector<pending_event>> postgres_writer::claim_due_pending(std::int64_t now_us, std::size_t limit,
                                                                       std::int64_t lease_us)
{
    if (auto r = connected(); !r) {
        return r.error();
    }
    pg::params p;
    p.add(now_us);
    p.add(clamp_to_int64(limit));
    p.add(now_us + lease_us);
    auto r = conn_.query(claim_due_pending_sql, p);
    if (!r) {
        return fail(r.error());
    }
    std::vector<std::pair<std::int64_t, pending_event>> claimed;  // (due_at, row)
    claimed.reserve(static_cast<std::size_t>(r->size()));
    for (int row = 0; row < r->size(); ++row) {
        pending_event e;
        e.id = r->int64(row, 0);
        e.received_at_us = r->int64(row, 1);
        e.key_url = r->text(row, 2);
        e.signature = r->text(row, 3);
        e.body = r->text(row, 4);
        e.verify_attempts = r->int64(row, 5);
        claimed.emplace_back(r->int64(row, 6), std::move(e));
    }
    std::sort(claimed.begin(), claimed.end(), [](const auto& a, const auto& b) {
        return std::pair(a.first, a.second.id) < std::pair(b.first, b.second.id);
    });
    std::vector<pending_event> rows;
    rows.reserve(claimed.size());
    for (auto& c : claimed) {
        rows.push_back(std::move(c.second));
    }
    return rows;
}

outcome<void> postgres_writer::probe()
{
    if (auto r = connected(); !r) {
        return r;
    }
    // A round trip proves the server answers; a standby (failover in progress) cannot commit.
    auto read_only = conn_.query_text("SHOW transaction_read_only");
    if (!read_only) {
        return fail(read_only.error());
    }
    if (*read_only == "on") {
        conn_.close();
        return failure{errc::storage_unavailable, "the server is read-only"};
    }
    return {};
}

outcome<unsettled_counts> postgres_writer::count_unsettled()
{
    if (auto r = connected(); !r) {
        return r.error();
    }
    auto r = conn_.query(count_unsettled_sql);
    if (!r) {
        return fail(r.error());
    }
    return unsettled_counts{r->int64(0, 0), r->int64(0, 1)};
}

outcome<void> postgres_writer::read_outbox(const outbox_job& j)
{
    if (auto r = connected(); !r) {
        return r.error();
    }
    std::vector<std::int64_t> none; // reads make nothing forwardable
    return j.run(runner_, none);
}

} // namespace

boost::system::result<std::unique_ptr<writer>, std::string> open_postgres_writer(const settings& s)
{
    if (auto why = check_url(s.url); !why.empty()) {
        return fmt::format("invalid PostgreSQL connection string: {}", why);
    }
    auto w = std::make_unique<postgres_writer>(s);
    if (auto r = w->open(); !r) {
        return r.error();
    }
    return std::unique_ptr<writer>(std::move(w));
}

} // namespace cwhook::store::detail
