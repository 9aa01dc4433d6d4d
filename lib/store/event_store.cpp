// Design: one writer thread owns the SQLite connection; nothing else touches it after open().
// Submitters only append a job to a bounded queue under a mutex, so a submitting thread never
// waits for disk; rejection rows have a bounded queue of their own, so that junk requests
// cannot take the room of deliveries. The writer takes both queues whole (rejections first),
// cuts them into batches of max_batch and
// runs each batch in one BEGIN IMMEDIATE ... COMMIT (group commit: one fsync for many
// requests, which is what makes thousands of durable inserts per second possible). Only after
// COMMIT succeeds are the batch's callbacks invoked, so a completion means "on disk". If
// anything in the batch fails, the whole transaction is rolled back and every job in it is
// completed with the mapped error (busy, full, other). Nothing is retried here: the caller
// decides what to answer, an unacknowledged callback is redelivered by Manage, and the next
// batch simply tries again, which is how the store recovers by itself once a lock is released
// or space returns. Failures are logged once per burst, never with a body. Reads (due pending
// rows, the readiness probe) run in the same loop, between write transactions, in queue
// order. Statements are prepared once and bound SQLITE_STATIC to the queued job's own bytes,
// so a row costs no allocation beyond the job itself. stop() drains the queue, checkpoints
// the WAL and closes; callbacks of accepted jobs always run exactly once.
//
// Schema (PRAGMA user_version 2, see detail/schema.hpp). All timestamps are INTEGER microseconds since the epoch (UTC).
//   events      one row per distinct callback. dedupe_key ("m:<MessageId>" or "b:<sha256 of
//               body>") is UNIQUE: a redelivery bumps deliveries and last_delivery_at_us
//               instead of adding a row. body is a BLOB holding the exact bytes received.
//               status is verified | pending | failed | unverified (CHECK); pending rows carry
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
//   v2 adds the indexes events (type, received_at_us), events (action, received_at_us) and
//   rejections (reason, received_at_us) for operators' filters, and
//   replays     one row per replay attempt of an event (cwhook events replay, the admin API):
//               event_id (ON DELETE CASCADE), at_us, target, http_status (0: no answer),
//               error, job. Index: (event_id, at_us).
#include "store/event_store.hpp"

#include "core/log.hpp"
#include "store/detail/files.hpp"
#include "store/detail/record_sql.hpp"
#include "store/detail/schema.hpp"
#include "store/sqlite.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <iterator>
#include <limits>
#include <mutex>
#include <span>
#include <pthread.h>
#include <thread>
#include <utility>
#include <variant>

namespace cwhook::store {

std::string_view to_string(event_status s)
{
    switch (s) {
    case event_status::verified: return "verified";
    case event_status::pending: return "pending";
    case event_status::failed: return "failed";
    case event_status::unverified: return "unverified";
    }
    return "unverified";
}

std::optional<event_status> parse_event_status(std::string_view s)
{
    if (s == "verified") {
        return event_status::verified;
    }
    if (s == "pending") {
        return event_status::pending;
    }
    if (s == "failed") {
        return event_status::failed;
    }
    if (s == "unverified") {
        return event_status::unverified;
    }
    return std::nullopt;
}

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
};

// events_due_pending leads with status although the index only holds pending rows: without
// it the planner prefers events_status for "status = 'pending'" and sorts in a temp b-tree.

static_assert(static_cast<std::int64_t>(std::size(migrations)) == detail::schema_version);

// A new delivery is one INSERT that never aborts (OR IGNORE): a statement that may abort
// half-way through its ten b-trees needs a statement journal, a copy of every page it touches
// (ten per row). A row it ignored is a redelivery (or, never from cwhook, a broken constraint),
// which bump_duplicate_sql then counts.
const std::string& insert_event_sql()
{
    static const std::string sql =
        fmt::format("INSERT OR IGNORE INTO events ({}, last_delivery_at_us) VALUES ({}, ?1)", detail::record_columns(),
                    detail::placeholders(1, detail::record_field_count()));
    return sql;
}

// A verified delivery takes over the unsettled row holding its dedupe key: the row then holds
// exactly the bytes that verified (a forger's earlier body under the same MessageId must not
// become "verified"); id, first receipt and delivery count stay.
const std::string& upgrade_event_sql()
{
    static const std::string sql = fmt::format(
        "UPDATE events SET {} WHERE id = ?1 AND status IN ('pending', 'failed')", detail::record_assignments(2));
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

constexpr std::string_view load_due_pending_sql = R"sql(
SELECT id, received_at_us, key_url, signature, body, verify_attempts
FROM events
WHERE status = 'pending' AND next_verify_at_us <= ?1
ORDER BY next_verify_at_us, id
LIMIT ?2
)sql";

struct event_job {
    event_record record;
    event_store::insert_callback done;
    insert_outcome outcome{};  // filled inside the transaction, reported after COMMIT
};

struct rejection_job {
    rejection_record record;
};

struct status_job {
    std::vector<status_update> updates;
    event_store::done_callback done;
};

struct pending_job {
    std::int64_t now_us = 0;
    std::size_t limit = 0;
    event_store::pending_callback done;
};

struct probe_job {
    event_store::done_callback done;
};

struct counts_job {
    event_store::counts_callback done;
};

struct prune_job {
    std::int64_t cutoff_us = 0;
    std::size_t limit = 0;
    event_store::prune_callback done;
    prune_outcome outcome{};  // filled inside the transaction, reported after COMMIT
};

using job = std::variant<event_job, rejection_job, status_job, pending_job, probe_job, prune_job, counts_job>;

bool is_read(const job& j) noexcept
{
    return std::holds_alternative<pending_job>(j) || std::holds_alternative<probe_job>(j) ||
           std::holds_alternative<counts_job>(j);
}

std::int64_t clamp_to_int64(std::size_t n) noexcept
{
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(std::min(n, max));
}

} // namespace

// Applies the schema up to schema_version. Each step re-reads user_version inside its own
// write transaction, so two processes opening a fresh file at once cannot both migrate.
boost::system::result<void, std::string> detail::migrate(sqlite::database& db)
{
    using detail::schema_version;
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
        const auto set_version = fmt::format("PRAGMA user_version = {}", *version + 1);
        if (auto r = db.exec(set_version.c_str()); !r) {
            return fmt::format("schema migration to version {} failed: {}", *version + 1, r.error().message);
        }
        if (auto r = txn->commit(); !r) {
            return fmt::format("schema migration to version {} failed: {}", *version + 1, r.error().message);
        }
    }
}

struct event_store::impl {
    explicit impl(const settings& s) : settings_(s)
    {
        settings_.max_batch = std::max<std::size_t>(settings_.max_batch, 1);
    }

    template <class Job, class... Args>
    bool enqueue(Args&&... args);
    bool enqueue_rejection(rejection_record r);

    void run();
    void run_batch(std::span<job> batch);
    void run_writes(std::span<job> jobs);
    int execute(job& j);
    int execute(event_job& j);
    int upgrade(std::int64_t id, const event_record& e);
    int execute(const rejection_job& j);
    int execute(const status_job& j);
    int execute(prune_job& j);
    int prune_rejections();
    void run_read(pending_job& j);
    void run_read(probe_job& j);
    void run_read(counts_job& j);
    void note_failure(const sqlite::error& e);
    void note_success();
    void close();
    void stop();

    settings settings_;

    // Declared before the statements so that they are finalized first.
    sqlite::database db_;
    sqlite::statement insert_event_;
    sqlite::statement bump_duplicate_;
    sqlite::statement upgrade_event_;
    sqlite::statement insert_rejection_;
    sqlite::statement prune_rejections_;
    sqlite::statement update_status_;
    sqlite::statement load_due_pending_;
    sqlite::statement prune_events_;
    sqlite::statement count_unsettled_;
    unsettled_counts unsettled_at_open_{};
    bool failing_ = false;  // writer thread only: a failure was logged, recovery not yet

    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<job> queue_;   // guarded by mutex_
    std::size_t waiting_ = 0;  // guarded by mutex_: accepted jobs not yet started
    // Rejection rows wait apart, under their own bound: they come from whoever sends junk,
    // and must never use up the room that queue_limit keeps for genuine deliveries.
    std::vector<job> rejections_;  // guarded by mutex_
    bool stopping_ = false;    // guarded by mutex_
    std::atomic<std::size_t> depth_{0};

    std::mutex join_mutex_;
    std::thread writer_;
    commit_observer observer_;  // set before the writer starts
    std::thread::id writer_id_;  // set once before the store is handed out
};

bool event_store::impl::enqueue_rejection(rejection_record r)
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || rejections_.size() >= settings_.rejection_queue_limit) {
            return false;
        }
        rejections_.emplace_back(std::in_place_type<rejection_job>, rejection_job{std::move(r)});
    }
    wake_.notify_one();
    return true;
}

template <class Job, class... Args>
bool event_store::impl::enqueue(Args&&... args)
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || waiting_ >= settings_.queue_limit) {
            return false;
        }
        // Braces, not parentheses: clang before 16 cannot aggregate-initialise from (args...).
        queue_.emplace_back(std::in_place_type<Job>, Job{std::forward<Args>(args)...});
        ++waiting_;
        depth_.store(waiting_, std::memory_order_relaxed);
    }
    wake_.notify_one();
    return true;
}

void event_store::impl::run()
{
    std::vector<job> work;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return !queue_.empty() || !rejections_.empty() || stopping_; });
            if (queue_.empty() && rejections_.empty()) {
                break;  // stopping, and everything accepted has been completed
            }
            // Rejection rows go first, into the same transactions as the other jobs: every job
            // queued after a rejection still runs after it (a probe or a read sees it). Both
            // queues keep their capacity, so a steady load allocates nothing per batch.
            std::move(rejections_.begin(), rejections_.end(), std::back_inserter(work));
            std::move(queue_.begin(), queue_.end(), std::back_inserter(work));
            rejections_.clear();
            queue_.clear();
        }
        for (std::size_t first = 0; first < work.size(); first += settings_.max_batch) {
            const std::size_t n = std::min(settings_.max_batch, work.size() - first);
            const auto batch = std::span<job>(work).subspan(first, n);
            const auto rejections = static_cast<std::size_t>(std::count_if(
                batch.begin(), batch.end(), [](const job& j) { return std::holds_alternative<rejection_job>(j); }));
            {
                std::lock_guard lock(mutex_);
                waiting_ -= n - rejections;
                depth_.store(waiting_, std::memory_order_relaxed);
            }
            run_batch(batch);
        }
        work.clear();
    }
    close();
}

void event_store::impl::run_batch(std::span<job> batch)
{
    // Reads keep their place in the queue: writes before them are committed first, so a
    // load after a status update sees the update, and the probe never runs inside a batch.
    std::size_t first_write = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!is_read(batch[i])) {
            continue;
        }
        if (i > first_write) {
            run_writes(batch.subspan(first_write, i - first_write));
        }
        if (auto* load = std::get_if<pending_job>(&batch[i])) {
            run_read(*load);
        } else if (auto* counts = std::get_if<counts_job>(&batch[i])) {
            run_read(*counts);
        } else {
            run_read(std::get<probe_job>(batch[i]));
        }
        first_write = i + 1;
    }
    if (first_write < batch.size()) {
        run_writes(batch.subspan(first_write));
    }
}

void event_store::impl::run_writes(std::span<job> jobs)
{
    std::optional<sqlite::error> failure;
    const auto started = std::chrono::steady_clock::now();
    {
        auto txn = sqlite::transaction::begin(db_, sqlite::begin_mode::immediate);
        if (!txn) {
            failure = txn.error();
        } else {
            bool added_rejections = false;
            for (job& j : jobs) {
                added_rejections = added_rejections || std::holds_alternative<rejection_job>(j);
                if (const int rc = execute(j); rc != SQLITE_OK) {
                    failure = db_.last_error(rc);
                    break;
                }
            }
            if (!failure && added_rejections) {
                if (const int rc = prune_rejections(); rc != SQLITE_OK) {
                    failure = db_.last_error(rc);
                }
            }
            if (!failure) {
                if (auto r = txn->commit(); !r) {
                    failure = r.error();
                }
            }
        }
        // A failed transaction is rolled back here, before anyone hears about it.
    }
    if (!failure && observer_) {
        observer_(jobs.size(), std::chrono::steady_clock::now() - started);
    }

    boost::system::error_code ec;
    if (failure) {
        note_failure(*failure);
        ec = sqlite::to_errc(failure->code);
    } else {
        note_success();
    }
    for (job& j : jobs) {
        if (auto* e = std::get_if<event_job>(&j); e != nullptr && e->done) {
            e->done(ec ? result<insert_outcome>(ec) : result<insert_outcome>(e->outcome));
        } else if (auto* u = std::get_if<status_job>(&j); u != nullptr && u->done) {
            u->done(ec ? result<void>(ec) : result<void>());
        } else if (auto* p = std::get_if<prune_job>(&j); p != nullptr && p->done) {
            p->done(ec ? result<prune_outcome>(ec) : result<prune_outcome>(p->outcome));
        }
    }
}

int event_store::impl::execute(job& j)
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

int event_store::impl::execute(event_job& j)
{
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
    }
    return SQLITE_OK;
}

int event_store::impl::upgrade(std::int64_t id, const event_record& e)
{
    sqlite::statement& s = upgrade_event_;
    sqlite::reset_guard guard(s);
    s.bind_int64(1, id);
    detail::bind_record(s, e, 2, true);
    const int rc = s.step();
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int event_store::impl::execute(const rejection_job& j)
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

int event_store::impl::execute(const status_job& j)
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
    }
    return SQLITE_OK;
}

int event_store::impl::execute(prune_job& j)
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

int event_store::impl::prune_rejections()
{
    sqlite::statement& s = prune_rejections_;
    sqlite::reset_guard guard(s);
    s.bind_int64(1, clamp_to_int64(settings_.max_rejections));
    const int rc = s.step();
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void event_store::impl::run_read(pending_job& j)
{
    std::vector<pending_event> rows;
    std::optional<sqlite::error> failure;
    {
        sqlite::statement& s = load_due_pending_;
        sqlite::reset_guard guard(s);  // ends the read transaction before the callback runs
        s.bind_int64(1, j.now_us);
        s.bind_int64(2, clamp_to_int64(j.limit));
        rows.reserve(std::min<std::size_t>(j.limit, 256));
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
            failure = db_.last_error(rc);
        }
    }
    if (failure) {
        note_failure(*failure);
        if (j.done) {
            j.done(make_error_code(sqlite::to_errc(failure->code)));
        }
        return;
    }
    note_success();
    if (j.done) {
        j.done(std::move(rows));
    }
}

void event_store::impl::run_read(probe_job& j)
{
    std::optional<sqlite::error> failure;
    {
        auto txn = sqlite::transaction::begin(db_, sqlite::begin_mode::immediate);
        if (!txn) {
            failure = txn.error();
        }
        // The destructor rolls back: the probe only proves the write lock can be taken.
    }
    if (failure) {
        note_failure(*failure);
    } else {
        note_success();
    }
    if (j.done) {
        j.done(failure ? result<void>(make_error_code(sqlite::to_errc(failure->code))) : result<void>());
    }
}

void event_store::impl::run_read(counts_job& j)
{
    unsettled_counts counts;
    std::optional<sqlite::error> failure;
    {
        sqlite::statement& s = count_unsettled_;
        sqlite::reset_guard guard(s);
        if (const int rc = s.step(); rc == SQLITE_ROW) {
            counts.pending = s.column_int64(0);
            counts.failed = s.column_int64(1);
        } else {
            failure = db_.last_error(rc);
        }
    }
    if (failure) {
        note_failure(*failure);
    } else {
        note_success();
    }
    if (j.done) {
        j.done(failure ? result<unsettled_counts>(make_error_code(sqlite::to_errc(failure->code)))
                       : result<unsettled_counts>(counts));
    }
}

void event_store::impl::note_failure(const sqlite::error& e)
{
    // Once per burst: a locked or full database fails every batch until it recovers.
    if (failing_) {
        return;
    }
    failing_ = true;
    log::warn("store: database operation failed; requests fail until it recovers",
              {{"path", settings_.path}, {"code", e.code}, {"error", e.message}});
}

void event_store::impl::note_success()
{
    if (!failing_) {
        return;
    }
    failing_ = false;
    log::info("store: database recovered", {{"path", settings_.path}});
}

void event_store::impl::close()
{
    insert_event_ = {};
    bump_duplicate_ = {};
    upgrade_event_ = {};
    count_unsettled_ = {};
    insert_rejection_ = {};
    prune_rejections_ = {};
    update_status_ = {};
    load_due_pending_ = {};
    prune_events_ = {};
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

void event_store::impl::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (std::this_thread::get_id() == writer_id_) {
        return;  // called from a callback: the writer drains and exits by itself
    }
    std::lock_guard lock(join_mutex_);
    if (writer_.joinable()) {
        writer_.join();
    }
}

// ---- event_store ------------------------------------------------------------------------

namespace {

// The writer connection's settings: busy timeout, WAL, durability, caches and size cap.
boost::system::result<void, std::string> configure(sqlite::database& conn, const settings& s, bool in_memory)
{
    const auto timeout_ms = std::clamp<std::chrono::milliseconds::rep>(s.busy_timeout.count(), 0,
                                                                       std::numeric_limits<int>::max());
    sqlite3_busy_timeout(conn.handle(), static_cast<int>(timeout_ms));

    auto mode = conn.query_text("PRAGMA journal_mode = WAL");
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


event_store::event_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

event_store::~event_store()
{
    stop();
}

boost::system::result<std::unique_ptr<event_store>, std::string> event_store::open(const settings& s,
                                                                                   commit_observer observer)
{
    if (s.path.empty()) {
        return std::string("store: database path is empty");
    }
    const auto fail = [&s](std::string_view reason) { return fmt::format("{}: {}", s.path, reason); };

    const bool in_memory = s.path == ":memory:";
    if (auto r = detail::create_private(s.path); !r) {
        return fail(r.error());
    }

    auto p = std::make_unique<impl>(s);
    p->observer_ = std::move(observer);
    // NOMUTEX: only the writer thread uses the connection, SQLite's own locking is wasted.
    auto db =
        sqlite::database::open(s.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
    if (!db) {
        return fail(db.error().message);
    }
    p->db_ = std::move(*db);
    sqlite::database& conn = p->db_;

    if (auto r = configure(conn, s, in_memory); !r) {
        return fail(r.error());
    }
    if (auto r = detail::migrate(conn); !r) {
        return fail(r.error());
    }

    const std::pair<sqlite::statement*, std::string_view> statements[] = {
        {&p->insert_event_, insert_event_sql()},         {&p->bump_duplicate_, bump_duplicate_sql},
        {&p->upgrade_event_, upgrade_event_sql()},       {&p->count_unsettled_, count_unsettled_sql},
        {&p->insert_rejection_, insert_rejection_sql},
        {&p->prune_rejections_, prune_rejections_sql}, {&p->update_status_, update_status_sql},
        {&p->load_due_pending_, load_due_pending_sql}, {&p->prune_events_, prune_events_sql},
    };
    for (const auto& [target, sql] : statements) {
        auto stmt = sqlite::statement::prepare(conn, sql, true);
        if (!stmt) {
            return fail(stmt.error().message);
        }
        *target = std::move(*stmt);
    }

    auto pending = conn.query_int64("SELECT count(*) FROM events WHERE status = 'pending'");
    if (!pending) {
        return fail(pending.error().message);
    }
    auto failed = conn.query_int64("SELECT count(*) FROM events WHERE status = 'failed'");
    if (!failed) {
        return fail(failed.error().message);
    }
    p->unsettled_at_open_ = {*pending, *failed};

    p->queue_.reserve(std::min(s.queue_limit, p->settings_.max_batch));
    p->rejections_.reserve(std::min<std::size_t>(s.rejection_queue_limit, 256));
    impl* raw = p.get();
    raw->writer_ = std::thread([raw] {
        pthread_setname_np(pthread_self(), "cwhook-store");  // shown by top -H, perf, gdb
        raw->run();
    });
    raw->writer_id_ = raw->writer_.get_id();
    return std::unique_ptr<event_store>(new event_store(std::move(p)));
}

bool event_store::submit_event(event_record ev, insert_callback done)
{
    return impl_->enqueue<event_job>(std::move(ev), std::move(done));
}

bool event_store::submit_rejection(rejection_record rej)
{
    return impl_->enqueue_rejection(std::move(rej));
}

bool event_store::submit_status_updates(std::vector<status_update> updates, done_callback done)
{
    return impl_->enqueue<status_job>(std::move(updates), std::move(done));
}

bool event_store::load_due_pending(std::int64_t now_us, std::size_t limit, pending_callback done)
{
    return impl_->enqueue<pending_job>(now_us, limit, std::move(done));
}

bool event_store::submit_prune(std::int64_t cutoff_us, std::size_t limit, prune_callback done)
{
    return impl_->enqueue<prune_job>(cutoff_us, limit, std::move(done));
}

bool event_store::count_unsettled(counts_callback done)
{
    return impl_->enqueue<counts_job>(std::move(done));
}

bool event_store::probe(done_callback done)
{
    return impl_->enqueue<probe_job>(std::move(done));
}

unsettled_counts event_store::unsettled_at_open() const noexcept
{
    return impl_->unsettled_at_open_;
}

std::size_t event_store::queue_depth() const noexcept
{
    return impl_->depth_.load(std::memory_order_relaxed);
}

void event_store::stop()
{
    impl_->stop();
}

} // namespace cwhook::store
