// What the ingest queue (event_store) asks of a backend: the queued jobs, and the one
// connection that runs them. Internal to lib/store; each backend's writer is in
// sqlite_writer.cpp or postgres_writer.cpp, the only files that know its client library.
// Not thread-safe: a writer is used by the store's writer thread only.
#pragma once

#include "core/error.hpp"
#include "store/event_store.hpp"

#include <boost/system/result.hpp>

#include <functional>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace cwhook::store::detail {

struct event_job {
    event_record record;
    event_store::insert_callback done;
    bool forward_unverified = false; // an unverified row is forwardable (verify.mode = "off")
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

// A failed database operation: the project code callers act on (busy, full, unavailable...)
// and the database's own words for the log (never a body, never a password).
struct failure {
    errc code = errc::storage_error;
    std::string message;
};

template <class T>
using outcome = boost::system::result<T, failure>;

class sql_runner;

// Outbox and catch-up work (claims, results, destination changes, synthesized events, reads
// of their state) run inside the batch's transaction through the writer's sql_runner; `done`
// after COMMIT (or the failure). Events the work makes forwardable are appended to
// `forwardable`: the writer gives them deliveries and feed positions with the batch's others.
struct outbox_job {
    std::function<outcome<void>(sql_runner&, std::vector<std::int64_t>& forwardable)> run;
    event_store::done_callback done;
    bool read_only = false; // a read of the outbox's state: no write transaction, no write lock
};

using job =
    std::variant<event_job, rejection_job, status_job, pending_job, probe_job, prune_job, counts_job, outbox_job>;

bool is_read(const job& j) noexcept;

// Room for the next speed step: a writer answers each event_job from write() with only its
// dedupe key decided (stored or duplicate, and the row id), which one unique index settles.
// A later writer may therefore append a batch to a lean table keyed by dedupe_key alone,
// complete the jobs after that commit, and build the secondary indexes (move rows into
// `events`) behind it as a job of its own in the same queue; callers see no difference.
class writer {
public:
    virtual ~writer() = default;

    // Runs every job (writes only: event, rejection, status, prune, outbox) in ONE transaction
    // and commits; fills each job's outcome. Events that became forwardable in it (stored
    // verified, or unverified with forward_unverified; upgraded; settled verified) get their
    // deliveries and feed positions in the same transaction (outbox::make_forwardable), and
    // their number is returned. On failure nothing of the batch is kept.
    virtual outcome<std::size_t> write(std::span<job> jobs) = 0;

    // Claims up to `limit` pending rows due at now_us, oldest first: each comes back with its
    // next_verify_at_us moved to now_us + lease_us, so that no other claimer (another instance)
    // gets it before the lease ends. Committed before it returns.
    virtual outcome<std::vector<pending_event>> claim_due_pending(std::int64_t now_us, std::size_t limit,
                                                                  std::int64_t lease_us) = 0;

    // Proves a write could be committed now (the write lock can be taken, the server is
    // reachable and not read-only).
    virtual outcome<void> probe() = 0;

    virtual outcome<unsettled_counts> count_unsettled() = 0;

    // Runs a read-only outbox job outside any write transaction (it never takes the write lock).
    virtual outcome<void> read_outbox(const outbox_job& j) = 0;

    // Last words before the thread ends (SQLite: checkpoint the WAL); then closes.
    virtual void close() = 0;

    // What the log names: the file, or the server without credentials.
    virtual const std::string& name() const = 0;

    // Twin detection (store/catch_up.hpp): reads the Entity's lastUpdated of a callback whose
    // (type, entity id) has a synthesized event. Set before the first job; empty: no twins.
    event_store::entity_updated_reader entity_updated;
};

} // namespace cwhook::store::detail
