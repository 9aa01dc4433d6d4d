// Durable event storage, on SQLite (embedded, the default) or PostgreSQL (shared by several
// instances); settings.backend chooses. lib/store is the only module that knows either
// client library.
//
// One writer thread owns the backend's write connection. Callers submit jobs from any
// thread; the writer takes everything queued (up to max_batch), runs it in ONE transaction
// (group commit), commits, and only then invokes each job's completion callback on the
// writer thread. A completion therefore means "durable" (SQLite with synchronous=full;
// PostgreSQL with synchronous_commit on).
// Callbacks must be cheap and must not block: post to your own executor from them.
// Thread-safe: every public member may be called from any thread.
#pragma once

#include "core/error.hpp"
#include "store/settings.hpp"

namespace cwhook::store {
struct claimed_delivery;
struct delivery_result;
struct destination_route;
struct destination_status;
struct sync_outcome;
struct synthesized_event;
enum class synthesis_outcome;
struct newest_event;
struct watermark;
struct catch_up_run;
struct heartbeat;
} // namespace cwhook::store

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::store {

// synthesized: made by catch-up from a record read back from Manage (store/catch_up.hpp);
// forwardable like verified.
enum class event_status { verified, pending, failed, unverified, synthesized };
std::string_view to_string(event_status s);
std::optional<event_status> parse_event_status(std::string_view s);

// Where a row came from: a callback Manage sent, or catch-up's REST reads.
enum class event_source { callback, catch_up };
std::string_view to_string(event_source s);
std::optional<event_source> parse_event_source(std::string_view s);

// One delivery as it is stored. body holds the exact bytes received.
struct event_record {
    std::int64_t received_at_us = 0;  // UTC, microseconds since the epoch
    event_status status = event_status::unverified;
    std::string verify_reason;        // why failed/pending/unverified ("" when verified)
    std::string dedupe_key;           // "m:<MessageId>" or "b:<sha256 hex of body>"
    std::string body_sha256;          // hex
    std::string body;
    std::string method;
    std::string path;
    std::string query;
    std::string client_addr;
    std::string headers;              // "Name: value\n" lines, Authorization/Cookie redacted
    std::string content_type;
    std::string signature;            // x-content-signature as received ("" when absent)
    // Parsed payload fields (nullopt = absent/null).
    std::optional<std::string> message_id;
    std::string type;
    std::string action;
    std::optional<std::int64_t> entity_id;
    std::optional<std::string> company_id;
    std::optional<std::string> member_id;
    std::optional<std::string> from_url;
    std::optional<std::string> product_instance_id;
    std::optional<std::string> partner_id;
    std::optional<std::int64_t> callback_id;
    std::string key_url;
    std::int64_t next_verify_at_us = 0;  // pending rows: when the re-verifier looks again
    event_source source = event_source::callback;
    // A callback that twins a synthesized event (store/catch_up.hpp): that row's id. Set by
    // the store, never by the ingest.
    std::optional<std::int64_t> twin_of;
    // The Entity's lastUpdated (us) of synthesized rows and their twins.
    std::optional<std::int64_t> entity_updated_at_us;
};

struct insert_outcome {
    std::int64_t id = 0;
    bool duplicate = false;      // a row with the same dedupe_key existed; its delivery count was bumped
    std::int64_t deliveries = 1;
    event_status status = event_status::unverified;  // status of the stored row
    // A verified delivery found its dedupe key held by a pending or failed row: that row now
    // holds this delivery (its bytes, headers and fields) as verified. Its former status.
    std::optional<event_status> upgraded_from;
};

// A request refused with 400/401/403/413/431; kept in a bounded table.
struct rejection_record {
    std::int64_t received_at_us = 0;
    int http_status = 0;
    std::string reason;       // bad_signature, malformed_payload, ...
    std::string detail;
    std::string client_addr;
    std::string path;
    std::string key_url;
    std::string body_sha256;  // hex of what was read
    std::int64_t body_size = 0;
    std::string body_head;    // first bytes of the body (at most 256)
};

// What the re-verifier needs of a pending row.
struct pending_event {
    std::int64_t id = 0;
    std::int64_t received_at_us = 0;
    std::string key_url;
    std::string signature;
    std::string body;
    std::int64_t verify_attempts = 0;
};

struct status_update {
    std::int64_t id = 0;
    event_status status = event_status::pending;
    std::string verify_reason;
    std::int64_t next_verify_at_us = 0;         // for rows that stay pending
    event_status from = event_status::pending;  // applied only while the row still has this status
};

// Rows not settled as genuine.
struct unsettled_counts {
    std::int64_t pending = 0;
    std::int64_t failed = 0;
};

// What a retention batch deleted.
struct prune_outcome {
    std::int64_t deleted = 0;
    std::int64_t failed = 0;  // of which had status failed
};

class event_store {
public:
    // Opens (SQLite: creating folder and file), applies settings and migrations, starts the
    // writer. Errors name the file or server (never a password) and the database's reason.
    // Called on the writer thread after every committed write transaction: the number of
    // jobs in it and how long BEGIN..COMMIT took (for metrics). Must not block.
    using commit_observer = std::function<void(std::size_t jobs, std::chrono::duration<double> took)>;

    static boost::system::result<std::unique_ptr<event_store>, std::string> open(const settings& s,
                                                                               commit_observer observer = {});

    ~event_store();  // stop()s
    event_store(const event_store&) = delete;
    event_store& operator=(const event_store&) = delete;

    using insert_callback = std::function<void(result<insert_outcome>)>;
    using done_callback = std::function<void(result<void>)>;
    using pending_callback = std::function<void(result<std::vector<pending_event>>)>;
    using prune_callback = std::function<void(result<prune_outcome>)>;
    using counts_callback = std::function<void(result<unsettled_counts>)>;

    // Queues an insert-or-bump-duplicate. On false (queue full or stopped) the callback is
    // NOT called; the caller answers 429.
    bool submit_event(event_record ev, insert_callback done);

    // Best effort: dropped (and counted by the caller) when the rejection queue (its own,
    // rejection_queue_limit) is full. Never takes room from submit_event.
    bool submit_rejection(rejection_record rej);

    // Applies status changes of unsettled rows (re-verification results) in one batch; an
    // update whose row no longer has status `from` changes nothing.
    bool submit_status_updates(std::vector<status_update> updates, done_callback done);

    // Counts the pending and failed rows (a read between write transactions).
    bool count_unsettled(counts_callback done);

    // Claims up to `limit` pending rows whose next_verify_at_us <= now_us, oldest first: their
    // next_verify_at_us moves to now_us + settings.claim_lease, so that no other instance (nor
    // the next round) takes them before the claimer settles them with submit_status_updates.
    bool claim_due_pending(std::int64_t now_us, std::size_t limit, pending_callback done);

    // Retention: deletes at most `limit` rows received before cutoff_us (oldest first, never
    // pending rows) inside one group-commit batch; the callback gets what was deleted. Rows
    // another instance is deleting at the same time are skipped, not waited for.
    bool submit_prune(std::int64_t cutoff_us, std::size_t limit, prune_callback done);

    // Readiness probe: proves a write could commit now (SQLite: takes and releases the write
    // lock; PostgreSQL: the server answers and is not read-only).
    bool probe(done_callback done);

    // ---- Forwarding (store/outbox.hpp). Each runs in a group-commit batch; callbacks after COMMIT.

    // An unverified event is forwardable (verify.mode = "off"): applies to events submitted from now on.
    void set_forward_unverified(bool on) noexcept;
    // Called on the writer thread after each COMMIT that made events forwardable (new
    // deliveries may be due). Must not block. Set before events are submitted.
    void on_forwardable(std::function<void()> listener);

    using claim_callback = std::function<void(result<std::vector<claimed_delivery>>)>;
    using sync_callback = std::function<void(result<sync_outcome>)>;
    using destinations_callback = std::function<void(result<std::vector<destination_status>>)>;

    // Makes the database's destinations the configured `routes`; undelivered rows of others are cancelled.
    bool sync_destinations(std::vector<destination_route> routes, std::int64_t now_us, sync_callback done);
    // Claims due deliveries of one destination (see outbox::claim).
    bool claim_deliveries(std::string destination, bool entity_ordering, std::int64_t now_us, std::size_t limit,
                          std::int64_t lease_until_us, claim_callback done);
    bool submit_delivery_results(std::vector<delivery_result> results, done_callback done);
    // Pauses a destination with a reason ("gone": it answered 410), as an operator would.
    bool pause_destination(std::string name, std::string reason, std::int64_t now_us, done_callback done);
    bool read_destinations(destinations_callback done);

    // ---- Catch-up (store/catch_up.hpp). Writes run in a group-commit batch; reads between batches.

    // Reads an Entity's lastUpdated (us) from a callback body (nullopt: absent or unreadable).
    // Called on the writer thread, only for a callback whose (type, entity id) has a
    // synthesized event. Set before events are submitted.
    using entity_updated_reader = std::function<std::optional<std::int64_t>(std::string_view body)>;
    void set_entity_updated_reader(entity_updated_reader f);

    // Stores each event (outcome per event, in order: synthesized, already, or seen) and, with
    // `advance`, moves that watermark forward (never back), all in one transaction. Synthesized
    // rows are forwardable at once.
    bool synthesize(std::vector<synthesized_event> events, std::optional<watermark> advance,
                    std::function<void(result<std::vector<synthesis_outcome>>)> done);
    // The newest row of each (type, entity id) that is not failed (ids without one are absent).
    bool newest_events(std::string type, std::vector<std::int64_t> entity_ids,
                       std::function<void(result<std::vector<newest_event>>)> done);
    // Entity ids of `type` whose newest row's action is not "deleted", ascending.
    bool known_entities(std::string type, std::function<void(result<std::vector<std::int64_t>>)> done);
    bool read_watermarks(std::function<void(result<std::vector<watermark>>)> done);
    // Takes the (company, type) lease until lease_until_us (creating its watermark at 0):
    // true when it was free, expired or already `holder`'s; false while another holder's lasts.
    bool claim_catch_up(std::string company, std::string type, std::string holder, std::int64_t now_us,
                        std::int64_t lease_until_us, std::function<void(result<bool>)> done);
    // Ends `holder`'s lease (nothing when another holds it).
    bool release_catch_up(std::string company, std::string type, std::string holder, done_callback done);
    // Inserts a run (id 0; the callback gets the new id) or updates every field of run.id.
    bool record_run(catch_up_run run, std::function<void(result<std::int64_t>)> done);
    // This instance is alive (clean_stop false: clean_stop_at_us back to 0) or stops cleanly.
    bool beat(std::string instance, std::int64_t now_us, bool clean_stop, done_callback done);
    bool read_heartbeats(std::function<void(result<std::vector<heartbeat>>)> done);

    // Other instances may write the same database (PostgreSQL): rows this process did not
    // store, pending ones included, can appear at any time.
    bool shared() const noexcept;

    // Pending and failed rows at open() (the caller tracks them from then on).
    unsettled_counts unsettled_at_open() const noexcept;
    std::size_t queue_depth() const noexcept;

    // Finishes every queued job, closes (SQLite: checkpoints the WAL first). Idempotent. Later submits fail.
    void stop();

    struct impl;

private:
    explicit event_store(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

} // namespace cwhook::store
