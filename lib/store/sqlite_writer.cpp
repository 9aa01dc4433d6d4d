// The SQLite backend's ingest writer: one connection (WAL), statements prepared once and
// bound SQLITE_STATIC to the queued job's own bytes, so a row costs no allocation beyond the
// job itself. A batch runs in one BEGIN IMMEDIATE ... COMMIT (one fsync for many requests).
// A new delivery is one INSERT OR IGNORE; one it ignored is a redelivery, which is counted
// (and, when verified, takes over a pending/failed row). close() checkpoints the WAL.
//
// Schema (PRAGMA user_version 4, see detail/schema.hpp). All timestamps are INTEGER microseconds since the epoch (UTC).
//   events      one row per distinct callback. dedupe_key ("m:<MessageId>" or "b:<sha256 of
//               body>") is UNIQUE: a redelivery bumps deliveries and last_delivery_at_us
//               instead of adding a row. body is a BLOB holding the exact bytes received.
//               status is verified | pending | failed | unverified | synthesized (CHECK,
//               synthesized since v4); pending rows carry
//               next_verify_at_us and verify_attempts for the re-verifier. The parsed payload
//               fields (message_id, type, action, entity_id, company_id, member_id, from_url,
//               product_instance_id, partner_id, callback_id, key_url) sit next to the request
//               facts (method, path, query, client_addr, headers, content_type, signature).
//               Indexes: received_at_us; (type, action, received_at_us);
//               (entity_id, received_at_us); (company_id, received_at_us);
//               (status, received_at_us); (callback_id, received_at_us);
//               (status, next_verify_at_us) WHERE status = 'pending'.
//   rejections  requests refused with 4xx, newest max_rejections rows kept (queued apart from
//               the other jobs, under rejection_queue_limit, and written in the same
//               transactions): http_status,
//               reason, detail, client_addr, path, key_url, body_sha256, body_size and
//               body_head (BLOB, first bytes of the body). Index: received_at_us.
//   v4 adds catch-up (store/catch_up.hpp): events.source (callback | catch_up), twin_of (a
//   callback stored after the synthesized event it twins: that row's id; not forwarded) and
//   entity_updated_at_us (the record's lastUpdated, of synthesized rows and twins); indexes
//   events (source, received_at_us) and events_synth (type, entity_id, entity_updated_at_us)
//   WHERE status = 'synthesized'. events is rebuilt for the new CHECK (all its v1-v3 indexes
//   recreated). catch_up_watermarks (company, type: last_updated_us, updated_at_us and the
//   run's lease: lease_holder, lease_until_us), catch_up_runs (each run's trigger, times,
//   counts, watermark before/after, error, dry_run; index (type, started_at_us)), heartbeats
//   (instance: beat_at_us, clean_stop_at_us).
//   v3 adds forwarding: events.feed_seq (the feed position, given when an event becomes
//   forwardable, from counters 'feed'), destinations (the configured ones and their pause),
//   deliveries (the outbox: one row per event and destination, see store/outbox.hpp) and
//   delivery_attempts (each attempt's time, status, latency and error).
//   v2 adds the indexes events (type, received_at_us), events (action, received_at_us) and
//   rejections (reason, received_at_us) for operators' filters, and
//   replays     one row per replay attempt of an event (cwhook events replay, the admin API):
//               event_id (ON DELETE CASCADE), at_us, target, http_status (0: no answer),
//               error, job. Index: (event_id, at_us).
#include "core/log.hpp"
#include "core/time.hpp"
#include "store/detail/backends.hpp"
#include "store/detail/catch_up.hpp"
#include "store/detail/files.hpp"
#include "store/detail/outbox.hpp"
#include "store/detail/query.hpp"
#include "store/detail/record_sql.hpp"
#include "store/detail/runners.hpp"
#include "store/detail/schema.hpp"
#include "store/sqlite.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

namespace cwhook::store::detail {

namespace {

// migrations[i] takes user_version i to i + 1. Released entries are never edited: a schema
// change is a new entry appended here.
constexpr const char* migrations[] = {
    R"sql(
CREATE TABLE events (
    id                  INTEGER PRIMARY KEY,
    received_at_us      INTEGER NOT NULL,
    status              TEXT    NOT NULL
                        CHECK (status IN ('verified', 'pending', 'failed', 'unverified')),
    verify_reason       TEXT    NOT NULL DEFAULT '',
    dedupe_key          TEXT    NOT NULL UNIQUE,
    deliveries          INTEGER NOT NULL DEFAULT 1,
    last_delivery_at_us INTEGER NOT NULL,
    verify_attempts     INTEGER NOT NULL DEFAULT 0,
    next_verify_at_us   INTEGER NOT NULL DEFAULT 0,
    body_sha256         TEXT    NOT NULL,
    body                BLOB    NOT NULL,
    method              TEXT    NOT NULL,
    path                TEXT    NOT NULL,
    query               TEXT    NOT NULL,
    client_addr         TEXT    NOT NULL,
    headers             TEXT    NOT NULL,
    content_type        TEXT    NOT NULL,
    signature           TEXT    NOT NULL,
    message_id          TEXT,
    type                TEXT    NOT NULL,
    action              TEXT    NOT NULL,
    entity_id           INTEGER,
    company_id          TEXT,
    member_id           TEXT,
    from_url            TEXT,
    product_instance_id TEXT,
    partner_id          TEXT,
    callback_id         INTEGER,
    key_url             TEXT    NOT NULL
);
CREATE INDEX events_received_at  ON events (received_at_us);
CREATE INDEX events_type_action  ON events (type, action, received_at_us);
CREATE INDEX events_entity       ON events (entity_id, received_at_us);
CREATE INDEX events_company      ON events (company_id, received_at_us);
CREATE INDEX events_status       ON events (status, received_at_us);
CREATE INDEX events_callback     ON events (callback_id, received_at_us);
CREATE INDEX events_due_pending  ON events (status, next_verify_at_us) WHERE status = 'pending';

CREATE TABLE rejections (
    id             INTEGER PRIMARY KEY,
    received_at_us INTEGER NOT NULL,
    http_status    INTEGER NOT NULL,
    reason         TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    client_addr    TEXT    NOT NULL,
    path           TEXT    NOT NULL,
    key_url        TEXT    NOT NULL,
    body_sha256    TEXT    NOT NULL,
    body_size      INTEGER NOT NULL,
    body_head      BLOB    NOT NULL
);
CREATE INDEX rejections_received_at ON rejections (received_at_us);
)sql",
    // v2: operators' queries (cwhook events, the admin API) filter on type or action alone and
    // read newest first; the replay history of each event.
    R"sql(
CREATE INDEX events_type   ON events (type, received_at_us);
CREATE INDEX events_action ON events (action, received_at_us);
CREATE INDEX rejections_reason ON rejections (reason, received_at_us);
CREATE TABLE replays (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    at_us       INTEGER NOT NULL,
    target      TEXT    NOT NULL,
    http_status INTEGER NOT NULL,
    error       TEXT    NOT NULL DEFAULT '',
    job         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX replays_event ON replays (event_id, at_us);
)sql",
    // v3: forwarding. The feed position of forwardable events, the destinations the
    // configuration holds (and their pause), the outbox and its attempts.
    R"sql(
ALTER TABLE events ADD COLUMN feed_seq INTEGER;
CREATE UNIQUE INDEX events_feed ON events (feed_seq) WHERE feed_seq IS NOT NULL;
CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('feed', 0);
CREATE TABLE destinations (
    name          TEXT    PRIMARY KEY,
    configured    INTEGER NOT NULL DEFAULT 1,
    types         TEXT    NOT NULL DEFAULT '',
    actions       TEXT    NOT NULL DEFAULT '',
    paused        INTEGER NOT NULL DEFAULT 0,
    pause_reason  TEXT    NOT NULL DEFAULT '',
    changed_at_us INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY,
    event_id           INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    destination        TEXT    NOT NULL,
    state              TEXT    NOT NULL
                       CHECK (state IN ('pending', 'failing', 'done', 'dead', 'cancelled')),
    ordering_key       TEXT    NOT NULL,
    created_at_us      INTEGER NOT NULL,
    next_attempt_at_us INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    tries              INTEGER NOT NULL DEFAULT 0,
    last_status        INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT    NOT NULL DEFAULT '',
    done_at_us         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, destination)
);
CREATE INDEX deliveries_due    ON deliveries (destination, next_attempt_at_us) WHERE state IN ('pending', 'failing');
CREATE INDEX deliveries_entity ON deliveries (destination, ordering_key) WHERE state IN ('pending', 'failing');
CREATE INDEX deliveries_state  ON deliveries (state, destination);
CREATE INDEX deliveries_dest   ON deliveries (destination, state);
CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at_us       INTEGER NOT NULL,
    http_status INTEGER NOT NULL,
    latency_us  INTEGER NOT NULL,
    error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, at_us);
)sql",
    // v4: catch-up. The status CHECK of v1 gains 'synthesized': SQLite cannot alter a CHECK,
    // so events is rebuilt (the documented 12-step procedure; migrate() runs it with foreign
    // keys off, so that dropping the old table deletes no deliveries or replays, and checks
    // them before COMMIT). Every index is recreated as v1-v3 made it.
    R"sql(
CREATE TABLE events_new (
    id                   INTEGER PRIMARY KEY,
    received_at_us       INTEGER NOT NULL,
    status               TEXT    NOT NULL
                         CHECK (status IN ('verified', 'pending', 'failed', 'unverified', 'synthesized')),
    verify_reason        TEXT    NOT NULL DEFAULT '',
    dedupe_key           TEXT    NOT NULL UNIQUE,
    deliveries           INTEGER NOT NULL DEFAULT 1,
    last_delivery_at_us  INTEGER NOT NULL,
    verify_attempts      INTEGER NOT NULL DEFAULT 0,
    next_verify_at_us    INTEGER NOT NULL DEFAULT 0,
    body_sha256          TEXT    NOT NULL,
    body                 BLOB    NOT NULL,
    method               TEXT    NOT NULL,
    path                 TEXT    NOT NULL,
    query                TEXT    NOT NULL,
    client_addr          TEXT    NOT NULL,
    headers              TEXT    NOT NULL,
    content_type         TEXT    NOT NULL,
    signature            TEXT    NOT NULL,
    message_id           TEXT,
    type                 TEXT    NOT NULL,
    action               TEXT    NOT NULL,
    entity_id            INTEGER,
    company_id           TEXT,
    member_id            TEXT,
    from_url             TEXT,
    product_instance_id  TEXT,
    partner_id           TEXT,
    callback_id          INTEGER,
    key_url              TEXT    NOT NULL,
    feed_seq             INTEGER,
    source               TEXT    NOT NULL DEFAULT 'callback' CHECK (source IN ('callback', 'catch_up')),
    twin_of              INTEGER,
    entity_updated_at_us INTEGER
);
INSERT INTO events_new (
    id, received_at_us, status, verify_reason, dedupe_key, deliveries, last_delivery_at_us, verify_attempts,
    next_verify_at_us, body_sha256, body, method, path, query, client_addr, headers, content_type, signature,
    message_id, type, action, entity_id, company_id, member_id, from_url, product_instance_id, partner_id,
    callback_id, key_url, feed_seq)
SELECT
    id, received_at_us, status, verify_reason, dedupe_key, deliveries, last_delivery_at_us, verify_attempts,
    next_verify_at_us, body_sha256, body, method, path, query, client_addr, headers, content_type, signature,
    message_id, type, action, entity_id, company_id, member_id, from_url, product_instance_id, partner_id,
    callback_id, key_url, feed_seq
FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_received_at  ON events (received_at_us);
CREATE INDEX events_type_action  ON events (type, action, received_at_us);
CREATE INDEX events_entity       ON events (entity_id, received_at_us);
CREATE INDEX events_company      ON events (company_id, received_at_us);
CREATE INDEX events_status       ON events (status, received_at_us);
CREATE INDEX events_callback     ON events (callback_id, received_at_us);
CREATE INDEX events_due_pending  ON events (status, next_verify_at_us) WHERE status = 'pending';
CREATE INDEX events_type         ON events (type, received_at_us);
CREATE INDEX events_action       ON events (action, received_at_us);
CREATE UNIQUE INDEX events_feed  ON events (feed_seq) WHERE feed_seq IS NOT NULL;
CREATE INDEX events_source       ON events (source, received_at_us);
CREATE INDEX events_synth        ON events (type, entity_id, entity_updated_at_us) WHERE status = 'synthesized';
CREATE TABLE catch_up_watermarks (
    company         TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    last_updated_us INTEGER NOT NULL DEFAULT 0,
    updated_at_us   INTEGER NOT NULL DEFAULT 0,
    lease_holder    TEXT    NOT NULL DEFAULT '',
    lease_until_us  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company, type)
);
CREATE TABLE catch_up_runs (
    id                  INTEGER PRIMARY KEY,
    company             TEXT    NOT NULL,
    type                TEXT    NOT NULL,
    trigger             TEXT    NOT NULL,
    started_at_us       INTEGER NOT NULL,
    finished_at_us      INTEGER NOT NULL DEFAULT 0,
    examined            INTEGER NOT NULL DEFAULT 0,
    synthesized         INTEGER NOT NULL DEFAULT 0,
    seen                INTEGER NOT NULL DEFAULT 0,
    deleted             INTEGER NOT NULL DEFAULT 0,
    watermark_before_us INTEGER NOT NULL DEFAULT 0,
    watermark_after_us  INTEGER NOT NULL DEFAULT 0,
    error               TEXT    NOT NULL DEFAULT '',
    dry_run             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX catch_up_runs_type ON catch_up_runs (type, started_at_us);
CREATE TABLE heartbeats (
    instance         TEXT    PRIMARY KEY,
    beat_at_us       INTEGER NOT NULL,
    clean_stop_at_us INTEGER NOT NULL DEFAULT 0
);
)sql",
};

// events_due_pending leads with status although the index only holds pending rows: without
// it the planner prefers events_status for "status = 'pending'" and sorts in a temp b-tree.

static_assert(static_cast<std::int64_t>(std::size(migrations)) == schema_version);

// A new delivery is one INSERT that never aborts (OR IGNORE): a statement that may abort
// half-way through its ten b-trees needs a statement journal, a copy of every page it touches
// (ten per row). A row it ignored is a redelivery (or, never from cwhook, a broken constraint),
// which bump_duplicate_sql then counts.
const std::string& insert_event_sql()
{
    static const std::string sql =
        fmt::format("INSERT OR IGNORE INTO events ({}, last_delivery_at_us) VALUES ({}, ?1)", record_columns(),
                    placeholders(dialect::sqlite, 1, record_field_count()));
    return sql;
}

// A verified delivery takes over the unsettled row holding its dedupe key: the row then holds
// exactly the bytes that verified (a forger's earlier body under the same MessageId must not
// become "verified"); id, first receipt and delivery count stay.
const std::string& upgrade_event_sql()
{
    static const std::string sql = fmt::format(
        "UPDATE events SET {} WHERE id = ?1 AND status IN ('pending', 'failed')", record_assignments(dialect::sqlite, 2));
    return sql;
}

// A redelivery may be committed after a later one (two sessions, two batches), hence max().
constexpr std::string_view bump_duplicate_sql = R"sql(
UPDATE events SET
    deliveries = deliveries + 1,
    last_delivery_at_us = max(last_delivery_at_us, ?2)
WHERE dedupe_key = ?1
RETURNING id, deliveries, status
)sql";

constexpr std::string_view insert_rejection_sql = R"sql(
INSERT INTO rejections (
    received_at_us, http_status, reason, detail, client_addr, path, key_url, body_sha256,
    body_size, body_head)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
)sql";

// Ids only grow (max(rowid) + 1), so the newest rows are the highest ids; this is one index
// probe plus a range delete, cheap enough to run after every batch that added rejections.
constexpr std::string_view prune_rejections_sql =
    "DELETE FROM rejections WHERE id <= (SELECT max(id) FROM rejections) - ?1";

// Retention: the oldest settled rows first, a bounded number per batch so that the writer's
// transaction stays short and ingest never waits behind a large delete. Pending rows stay
// (the re-verifier owns them and counts them); their replay history goes by ON DELETE CASCADE.
constexpr std::string_view prune_events_sql = R"sql(
DELETE FROM events WHERE id IN (
    SELECT id FROM events
    WHERE received_at_us < ?1 AND status != 'pending'
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state IN ('pending', 'failing'))
    ORDER BY received_at_us
    LIMIT ?2)
RETURNING status
)sql";

// Only a row that still has the status the decision started from changes: a row someone else
// settled in the meantime (an upgrade by a verified redelivery) keeps its verdict.
constexpr std::string_view update_status_sql = R"sql(
UPDATE events
SET status = ?2, verify_reason = ?3, next_verify_at_us = ?4, verify_attempts = verify_attempts + 1
WHERE id = ?1 AND status = ?5
)sql";

constexpr std::string_view count_unsettled_sql = R"sql(
SELECT (SELECT count(*) FROM events WHERE status = 'pending'),
       (SELECT count(*) FROM events WHERE status = 'failed')
)sql";

// A claim moves the rows' next look to the lease's end, so that a second claim (another
// round, another process) does not hand them out again before the first is settled. Read
// first (most overdue first), then moved, in one write transaction.
constexpr std::string_view claim_due_pending_sql = R"sql(
SELECT id, received_at_us, key_url, signature, body, verify_attempts
FROM events
WHERE status = 'pending' AND next_verify_at_us <= ?1
ORDER BY next_verify_at_us, id
LIMIT ?2
)sql";

constexpr std::string_view extend_claim_sql = "UPDATE events SET next_verify_at_us = ?2 WHERE id = ?1";

std::int64_t clamp_to_int64(std::size_t n) noexcept
{
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(std::min(n, max));
}

failure fail(const sqlite::error& e)
{
    return failure{sqlite::to_errc(e.code), e.message};
}

// The writer connection's settings: busy timeout, WAL, durability, caches and size cap.
boost::system::result<void, std::string> configure(sqlite::database& conn, const settings& s, bool in_memory)
{
    const auto timeout_ms = std::clamp<std::chrono::milliseconds::rep>(s.busy_timeout.count(), 0,
                                                                       std::numeric_limits<int>::max());
    sqlite3_busy_timeout(conn.handle(), static_cast<int>(timeout_ms));

    auto mode = sqlite::switch_to_wal(conn, s.busy_timeout);
    if (!mode) {
        return mode.error().message;
    }
    // WAL is what lets readers (the CLI, backups) coexist with the writer; SQLite silently
    // keeps the old mode where WAL is impossible (some network file systems), so check.
    if (!in_memory && *mode != "wal") {
        return fmt::format("cannot switch to WAL journal mode (still \"{}\")", *mode);
    }
    const char* sync_pragma =
        s.synchronous == synchronous_mode::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    if (auto r = conn.exec(sync_pragma); !r) {
        return r.error().message;
    }
    if (auto r = conn.exec("PRAGMA foreign_keys = ON"); !r) {
        return r.error().message;
    }
    // Each insert changes a page of every index that an earlier insert of the same batch has
    // already changed, and the insert statement keeps a statement journal of those pages: with
    // the default temp_store that is a temporary file, ~10 page writes per row and two thirds
    // of the writer's pwrite calls (strace of bench/store.sh). In memory it is a copy.
    if (auto r = conn.exec("PRAGMA temp_store = MEMORY"); !r) {
        return r.error().message;
    }
    {
        const auto pragma = fmt::format("PRAGMA cache_size = -{}", static_cast<std::uint64_t>(s.cache_mib) * 1024);
        if (auto r = conn.exec(pragma.c_str()); !r) {
            return r.error().message;
        }
    }
    if (s.max_page_count > 0) {
        const auto pragma = fmt::format("PRAGMA max_page_count = {}", s.max_page_count);
        if (auto r = conn.exec(pragma.c_str()); !r) {
            return r.error().message;
        }
    }
    return {};
}

} // namespace

namespace {

// Rows whose reference is broken (PRAGMA foreign_key_check): "" when there are none.
std::string broken_references(sqlite::database& db)
{
    auto check = sqlite::statement::prepare(db, "PRAGMA foreign_key_check");
    if (!check) {
        return check.error().message;
    }
    std::string out;
    int rc = SQLITE_OK;
    while ((rc = check->step()) == SQLITE_ROW) {
        out += fmt::format("{}{} row {} references {}", out.empty() ? "" : "; ", check->column_text(0),
                           check->column_int64(1), check->column_text(2));
    }
    if (rc != SQLITE_DONE) {
        return db.last_error(rc).message;
    }
    return out;
}

boost::system::result<void, std::string> migrate_steps(sqlite::database& db)
{
    for (;;) {
        auto txn = sqlite::transaction::begin(db, sqlite::begin_mode::immediate);
        if (!txn) {
            return fmt::format("cannot start schema migration: {}", txn.error().message);
        }
        auto version = db.query_int64("PRAGMA user_version");
        if (!version) {
            return fmt::format("cannot read schema version: {}", version.error().message);
        }
        if (*version > schema_version || *version < 0) {
            return fmt::format("database schema version {} is newer than this cwhook supports ({}); "
                               "run a newer cwhook or point storage at another file",
                               *version, schema_version);
        }
        if (*version == schema_version) {
            return {};
        }
        if (auto r = db.exec(migrations[*version]); !r) {
            return fmt::format("schema migration to version {} failed: {}", *version + 1, r.error().message);
        }
        if (auto broken = broken_references(db); !broken.empty()) {
            return fmt::format("schema migration to version {} failed: {}", *version + 1, broken);
        }
        const auto set_version = fmt::format("PRAGMA user_version = {}", *version + 1);
        if (auto r = db.exec(set_version.c_str()); !r) {
            return fmt::format("schema migration to version {} failed: {}", *version + 1, r.error().message);
        }
        if (auto r = txn->commit(); !r) {
            return fmt::format("schema migration to version {} failed: {}", *version + 1, r.error().message);
        }
    }
}

} // namespace

std::string_view sqlite_migration(std::int64_t from)
{
    CWHOOK_CHECK(from >= 0 && from < schema_version);
    return migrations[from];
}

// Applies the schema up to schema_version. Each step re-reads user_version inside its own
// write transaction, so two processes opening a fresh file at once cannot both migrate. A
// step may rebuild a table others reference (v4 rebuilds events): with foreign keys on,
// dropping the old table would delete their rows (ON DELETE CASCADE). The pragma cannot
// change inside a transaction, so it is off around the steps, and each step checks every
// reference (foreign_key_check) before its COMMIT.
boost::system::result<void, std::string> migrate(sqlite::database& db)
{
    auto enforced = db.query_int64("PRAGMA foreign_keys");
    if (!enforced) {
        return fmt::format("cannot read foreign_keys: {}", enforced.error().message);
    }
    if (auto r = db.exec("PRAGMA foreign_keys = OFF"); !r) {
        return fmt::format("cannot switch foreign_keys off for the migration: {}", r.error().message);
    }
    auto done = migrate_steps(db);
    if (*enforced != 0) {
        if (auto r = db.exec("PRAGMA foreign_keys = ON"); !r && done) {
            return fmt::format("cannot switch foreign_keys back on: {}", r.error().message);
        }
    }
    return done;
}

namespace {

class sqlite_writer final : public writer {
public:
    explicit sqlite_writer(const settings& s) : settings_(s) {}

    outcome<std::size_t> write(std::span<job> jobs) override;
    outcome<std::vector<pending_event>> claim_due_pending(std::int64_t now_us, std::size_t limit,
                                                          std::int64_t lease_us) override;
    outcome<void> probe() override;
    outcome<unsettled_counts> count_unsettled() override;
    outcome<void> read_outbox(const outbox_job& j) override
    {
        std::vector<std::int64_t> none; // reads make nothing forwardable
        return j.run(runner_, none);
    }
    void close() override;
    const std::string& name() const override { return settings_.path; }

    boost::system::result<void, std::string> open();

private:
    int execute(job& j);
    int execute(event_job& j);
    int find_twin(event_record& e);
    int upgrade(std::int64_t id, const event_record& e);
    int execute(const rejection_job& j);
    int execute(const status_job& j);
    int execute(prune_job& j);
    int prune_rejections();

    settings settings_;
    std::vector<std::int64_t> forwardable_; // events made forwardable in the current batch

    // Declared before the statements so that they are finalized first.
    sqlite::database db_;
    sqlite_runner runner_{db_};
    sqlite::statement insert_event_;
    sqlite::statement bump_duplicate_;
    sqlite::statement upgrade_event_;
    sqlite::statement insert_rejection_;
    sqlite::statement prune_rejections_;
    sqlite::statement update_status_;
    sqlite::statement claim_due_pending_;
    sqlite::statement extend_claim_;
    sqlite::statement prune_events_;
    sqlite::statement count_unsettled_;
    sqlite::statement newest_synthesized_;
};

outcome<std::size_t> sqlite_writer::write(std::span<job> jobs)
{
    auto txn = sqlite::transaction::begin(db_, sqlite::begin_mode::immediate);
    if (!txn) {
        return fail(txn.error());
    }
    forwardable_.clear();
    bool added_rejections = false;
    for (job& j : jobs) {
        added_rejections = added_rejections || std::holds_alternative<rejection_job>(j);
        if (auto* o = std::get_if<outbox_job>(&j)) {
            if (auto r = o->run(runner_, forwardable_); !r) {
                return r.error(); // rolled back by txn
            }
            continue;
        }
        if (const int rc = execute(j); rc != SQLITE_OK) {
            return fail(db_.last_error(rc));  // rolled back by txn
        }
    }
    if (added_rejections) {
        if (const int rc = prune_rejections(); rc != SQLITE_OK) {
            return fail(db_.last_error(rc));
        }
    }
    if (auto r = outbox::make_forwardable(runner_, forwardable_, now_us()); !r) {
        return r.error();
    }
    if (auto r = txn->commit(); !r) {
        return fail(r.error());
    }
    return forwardable_.size();
}

int sqlite_writer::execute(job& j)
{
    if (auto* e = std::get_if<event_job>(&j)) {
        return execute(*e);
    }
    if (auto* r = std::get_if<rejection_job>(&j)) {
        return execute(*r);
    }
    if (auto* u = std::get_if<status_job>(&j)) {
        return execute(*u);
    }
    if (auto* p = std::get_if<prune_job>(&j)) {
        return execute(*p);
    }
    CWHOOK_CHECK(!"reads never run inside a write transaction");
    return SQLITE_MISUSE;
}

// A callback about to become forwardable whose (type, entity id) has a synthesized event is
// that event's twin when its Entity is not newer: consumers already have the synthesized one.
// One probe of the partial index events_synth per such callback; the body is read only when
// a synthesized row exists.
int sqlite_writer::find_twin(event_record& e)
{
    if (!entity_updated || e.source != event_source::callback || !e.entity_id) {
        return SQLITE_OK;
    }
    sqlite::statement& s = newest_synthesized_;
    sqlite::reset_guard guard(s);
    s.bind_text(1, e.type);
    s.bind_int64(2, *e.entity_id);
    const int rc = s.step();
    if (rc == SQLITE_DONE) {
        return SQLITE_OK;
    }
    if (rc != SQLITE_ROW) {
        return rc;
    }
    const std::int64_t id = s.column_int64(0);
    const std::int64_t synthesized_at = s.column_int64(1);
    if (const auto updated = entity_updated(e.body); updated && *updated <= synthesized_at) {
        e.twin_of = id;
        e.entity_updated_at_us = *updated;
    }
    return SQLITE_OK;
}

int sqlite_writer::execute(event_job& j)
{
    const bool forwardable = j.record.status == event_status::verified ||
                             (j.record.status == event_status::unverified && j.forward_unverified);
    if (forwardable) {
        if (const int rc = find_twin(j.record); rc != SQLITE_OK) {
            return rc;
        }
    }
    const event_record& e = j.record;
    sqlite::statement& s = insert_event_;
    sqlite::reset_guard guard(s);
    detail::bind_record(s, e, 1);
    if (const int rc = s.step(); rc != SQLITE_DONE) {
        return rc;
    }
    if (sqlite3_changes64(db_.handle()) == 1) {
        j.outcome.id = sqlite3_last_insert_rowid(db_.handle());
        j.outcome.deliveries = 1;
        j.outcome.duplicate = false;
        j.outcome.status = e.status;
        if (forwardable && !e.twin_of) {
            forwardable_.push_back(j.outcome.id);
        }
        return SQLITE_OK;
    }
    sqlite::statement& b = bump_duplicate_;
    sqlite::reset_guard bump_guard(b);
    b.bind_text(1, e.dedupe_key);
    b.bind_int64(2, e.received_at_us);
    const int rc = b.step();
    if (rc == SQLITE_DONE) {
        // Ignored, yet no row holds its dedupe key: it broke another constraint.
        return SQLITE_CONSTRAINT;
    }
    if (rc != SQLITE_ROW) {
        return rc;
    }
    j.outcome.id = b.column_int64(0);
    j.outcome.deliveries = b.column_int64(1);
    j.outcome.duplicate = true;
    j.outcome.status = parse_event_status(b.column_text(2)).value_or(event_status::unverified);
    if (e.status == event_status::verified &&
        (j.outcome.status == event_status::pending || j.outcome.status == event_status::failed)) {
        if (const int urc = upgrade(j.outcome.id, e); urc != SQLITE_OK) {
            return urc;
        }
        j.outcome.upgraded_from = j.outcome.status;
        j.outcome.status = event_status::verified;
        j.outcome.duplicate = false;
        if (!e.twin_of) {
            forwardable_.push_back(j.outcome.id);
        }
    }
    return SQLITE_OK;
}

int sqlite_writer::upgrade(std::int64_t id, const event_record& e)
{
    sqlite::statement& s = upgrade_event_;
    sqlite::reset_guard guard(s);
    s.bind_int64(1, id);
    detail::bind_record(s, e, 2, true);
    const int rc = s.step();
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int sqlite_writer::execute(const rejection_job& j)
{
    const rejection_record& r = j.record;
    sqlite::statement& s = insert_rejection_;
    sqlite::reset_guard guard(s);
    s.bind_int64(1, r.received_at_us);
    s.bind_int64(2, r.http_status);
    s.bind_text(3, r.reason);
    s.bind_text(4, r.detail);
    s.bind_text(5, r.client_addr);
    s.bind_text(6, r.path);
    s.bind_text(7, r.key_url);
    s.bind_text(8, r.body_sha256);
    s.bind_int64(9, r.body_size);
    s.bind_blob(10, r.body_head);
    const int rc = s.step();
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int sqlite_writer::execute(const status_job& j)
{
    sqlite::statement& s = update_status_;
    for (const status_update& u : j.updates) {
        sqlite::reset_guard guard(s);
        s.bind_int64(1, u.id);
        s.bind_text(2, to_string(u.status));
        s.bind_text(3, u.verify_reason);
        s.bind_int64(4, u.next_verify_at_us);
        s.bind_text(5, to_string(u.from));
        if (const int rc = s.step(); rc != SQLITE_DONE) {
            return rc;
        }
        if (u.status == event_status::verified && sqlite3_changes64(db_.handle()) == 1) {
            auto twin = catch_up::link_settled_twin(runner_, u.id, entity_updated);
            if (!twin) {
                return SQLITE_ERROR; // sqlite3_errmsg() names what failed
            }
            if (!*twin) {
                forwardable_.push_back(u.id);
            }
        }
    }
    return SQLITE_OK;
}

int sqlite_writer::execute(prune_job& j)
{
    sqlite::statement& s = prune_events_;
    sqlite::reset_guard guard(s);
    s.bind_int64(1, j.cutoff_us);
    s.bind_int64(2, clamp_to_int64(j.limit));
    j.outcome = {};
    int rc = SQLITE_OK;
    while ((rc = s.step()) == SQLITE_ROW) {
        ++j.outcome.deleted;
        if (s.column_text(0) == "failed") {
            ++j.outcome.failed;
        }
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int sqlite_writer::prune_rejections()
{
    sqlite::statement& s = prune_rejections_;
    sqlite::reset_guard guard(s);
    s.bind_int64(1, clamp_to_int64(settings_.max_rejections));
    const int rc = s.step();
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

outcome<std::vector<pending_event>> sqlite_writer::claim_due_pending(std::int64_t now_us, std::size_t limit,
                                                                     std::int64_t lease_us)
{
    auto txn = sqlite::transaction::begin(db_, sqlite::begin_mode::immediate);
    if (!txn) {
        return fail(txn.error());
    }
    std::vector<pending_event> rows;
    {
        sqlite::statement& s = claim_due_pending_;
        sqlite::reset_guard guard(s);
        s.bind_int64(1, now_us);
        s.bind_int64(2, clamp_to_int64(limit));
        rows.reserve(std::min<std::size_t>(limit, 256));
        int rc = SQLITE_OK;
        while ((rc = s.step()) == SQLITE_ROW) {
            pending_event& p = rows.emplace_back();
            p.id = s.column_int64(0);
            p.received_at_us = s.column_int64(1);
            p.key_url = s.column_text(2);
            p.signature = s.column_text(3);
            p.body = s.column_blob(4);
            p.verify_attempts = s.column_int64(5);
        }
        if (rc != SQLITE_DONE) {
            return fail(db_.last_error(rc));
        }
    }
    if (rows.empty()) {
        return rows;  // nothing due: rolled back, no commit to wait for
    }
    for (const pending_event& p : rows) {
        sqlite::statement& u = extend_claim_;
        sqlite::reset_guard guard(u);
        u.bind_int64(1, p.id);
        u.bind_int64(2, now_us + lease_us);
        if (const int rc = u.step(); rc != SQLITE_DONE) {
            return fail(db_.last_error(rc));
        }
    }
    if (auto r = txn->commit(); !r) {
        return fail(r.error());
    }
    return rows;
}

outcome<void> sqlite_writer::probe()
{
    auto txn = sqlite::transaction::begin(db_, sqlite::begin_mode::immediate);
    if (!txn) {
        return fail(txn.error());
    }
    return {};  // the destructor rolls back: the probe only proves the write lock can be taken
}

outcome<unsettled_counts> sqlite_writer::count_unsettled()
{
    sqlite::statement& s = count_unsettled_;
    sqlite::reset_guard guard(s);
    if (const int rc = s.step(); rc != SQLITE_ROW) {
        return fail(db_.last_error(rc));
    }
    return unsettled_counts{s.column_int64(0), s.column_int64(1)};
}

void sqlite_writer::close()
{
    runner_.clear();
    insert_event_ = {};
    bump_duplicate_ = {};
    upgrade_event_ = {};
    count_unsettled_ = {};
    newest_synthesized_ = {};
    insert_rejection_ = {};
    prune_rejections_ = {};
    update_status_ = {};
    claim_due_pending_ = {};
    extend_claim_ = {};
    prune_events_ = {};
    if (db_.handle() == nullptr) {
        return;
    }
    // TRUNCATE leaves an empty WAL, so the main file alone is a complete copy after stop.
    const int rc =
        sqlite3_wal_checkpoint_v2(db_.handle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        const auto e = db_.last_error(rc);
        log::warn("store: WAL checkpoint at close failed",
                  {{"path", settings_.path}, {"code", e.code}, {"error", e.message}});
    }
    db_.close();
}

boost::system::result<void, std::string> sqlite_writer::open()
{
    const bool in_memory = settings_.path == ":memory:";
    if (auto r = create_private(settings_.path); !r) {
        return r.error();
    }
    // NOMUTEX: only the writer thread uses the connection, SQLite's own locking is wasted.
    auto db = sqlite::database::open(settings_.path,
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
    if (!db) {
        return db.error().message;
    }
    db_ = std::move(*db);
    if (auto r = configure(db_, settings_, in_memory); !r) {
        return r.error();
    }
    if (auto r = migrate(db_); !r) {
        return r.error();
    }
    const std::pair<sqlite::statement*, std::string_view> statements[] = {
        {&insert_event_, insert_event_sql()},
        {&bump_duplicate_, bump_duplicate_sql},
        {&upgrade_event_, upgrade_event_sql()},
        {&count_unsettled_, count_unsettled_sql},
        {&insert_rejection_, insert_rejection_sql},
        {&prune_rejections_, prune_rejections_sql},
        {&update_status_, update_status_sql},
        {&claim_due_pending_, claim_due_pending_sql},
        {&prune_events_, prune_events_sql},
        {&extend_claim_, extend_claim_sql},
        {&newest_synthesized_, catch_up::newest_synthesized_sql},
    };
    for (const auto& [target, sql] : statements) {
        auto stmt = sqlite::statement::prepare(db_, sql, true);
        if (!stmt) {
            return stmt.error().message;
        }
        *target = std::move(*stmt);
    }
    return {};
}

} // namespace

boost::system::result<std::unique_ptr<writer>, std::string> open_sqlite_writer(const settings& s)
{
    auto w = std::make_unique<sqlite_writer>(s);
    if (auto r = w->open(); !r) {
        return r.error();
    }
    return std::unique_ptr<writer>(std::move(w));
}

} // namespace cwhook::store::detail
