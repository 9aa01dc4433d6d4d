// Operators' access to the stored events: filtered listing with keyset pagination, one event
// with its replay history, streaming scans for export and replay, import, prune, statistics
// and the rejected requests. One interface, two implementations (sqlite_db.cpp,
// postgres_db.cpp) that answer the same filters with the same order, cursors and rows. It
// opens its own connection, separate from the ingest writer of event_store (SQLite: WAL, so
// readers never block the daemon's writer, and writes here wait at most busy_timeout for its
// lock). Not thread-safe: one thread at a time per event_db.
#pragma once

#include "store/catch_up.hpp"
#include "store/event_store.hpp"
#include "store/outbox.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cwhook::store {

namespace detail {
class sql_runner;
} // namespace detail

// Failures carry one line naming what failed and SQLite's reason.
template <class T>
using db_result = boost::system::result<T, std::string>;

// Position in the newest-first order: the last row of a page.
struct event_cursor {
    std::int64_t received_at_us = 0;
    std::int64_t id = 0;
};

// Every set member narrows the selection (AND). Times are [since, until).
struct event_filter {
    std::optional<std::string> type;
    std::optional<std::string> action;
    std::optional<std::int64_t> entity_id;
    std::optional<std::string> company_id;
    std::optional<event_status> status;
    std::optional<event_source> source;
    std::optional<std::int64_t> since_us;
    std::optional<std::int64_t> until_us;
    std::optional<std::int64_t> callback_id;
    std::optional<event_cursor> after;  // continue after this row (in the scan's order)
    std::size_t limit = 50;             // 0: no limit
};

enum class scan_order { newest_first, oldest_first };

// A row of `events list`.
struct event_summary {
    std::int64_t id = 0;
    std::int64_t received_at_us = 0;
    std::string type;
    std::string action;
    std::optional<std::int64_t> entity_id;
    std::optional<std::string> company_id;
    event_status status = event_status::unverified;
    std::int64_t deliveries = 1;
    event_source source = event_source::callback;
    std::optional<std::int64_t> twin_of; // a callback twin of this synthesized event id
};

struct replay_attempt {
    std::int64_t event_id = 0;
    std::int64_t at_us = 0;
    std::string target;
    int http_status = 0;  // 0: no answer (connect, TLS, timeout)
    std::string error;
    std::string job;      // admin API replay job id, "" from the command line
};

// A whole stored row.
struct stored_event {
    std::int64_t id = 0;
    event_record record;
    std::int64_t deliveries = 1;
    std::int64_t last_delivery_at_us = 0;
    std::int64_t verify_attempts = 0;
    std::vector<replay_attempt> replays;  // filled by get() only, oldest first
};

struct count_row {
    std::string key;
    std::int64_t count = 0;
};

struct event_stats {
    std::int64_t total = 0;
    std::vector<count_row> by_type;    // most frequent first
    std::vector<count_row> by_action;
    std::vector<count_row> by_status;
    std::vector<count_row> by_day;     // "YYYY-MM-DD" (UTC), oldest first
};

// One window of time cut in equal buckets (the console's overview charts): rows of (bucket
// index, key, count), bucket index = (received_at_us - start) / bucket width; counted by the
// database (GROUP BY), so a busy window costs no rows copied out.
struct bucket_count {
    std::int64_t bucket = 0;
    std::string key;
    std::int64_t count = 0;
};

struct window_counts {
    std::vector<bucket_count> by_type;   // events
    std::vector<bucket_count> by_status; // events
    std::vector<bucket_count> by_reason; // rejections
};

struct import_outcome {
    std::int64_t inserted = 0;
    std::int64_t duplicates = 0;  // a row with the same dedupe_key existed; left as it was
};

struct rejection_filter {
    std::optional<std::string> reason;
    std::optional<std::int64_t> since_us;
    std::optional<std::int64_t> until_us;
    std::optional<std::int64_t> before_id;
    std::size_t limit = 50;
};

struct stored_rejection {
    std::int64_t id = 0;
    rejection_record record;
};

enum class db_access { read_only, read_write };

class event_db {
public:
    // SQLite file. read_only: never creates or changes the file (a database of an older
    // schema is read as far as it goes). read_write: creates and migrates like the daemon does.
    static db_result<std::unique_ptr<event_db>> open(const std::string& path, db_access access,
                                                     std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));
    // The backend s names (s.path or s.url). PostgreSQL: read_write migrates like the daemon;
    // read_only opens a read-only session and refuses a schema this cwhook does not know.
    static db_result<std::unique_ptr<event_db>> open(const settings& s, db_access access);

    virtual ~event_db() = default;
    event_db(const event_db&) = delete;
    event_db& operator=(const event_db&) = delete;

    virtual db_result<std::vector<event_summary>> list(const event_filter& f,
                                                       scan_order order = scan_order::newest_first) = 0;
    virtual db_result<std::int64_t> count(const event_filter& f) = 0;
    // Ids of the matching rows (replay selects with it), in `order`.
    virtual db_result<std::vector<std::int64_t>> ids(const event_filter& f,
                                                     scan_order order = scan_order::oldest_first) = 0;
    // nullopt when no such row.
    virtual db_result<std::optional<stored_event>> get(std::int64_t id, bool with_replays = true) = 0;

    // Calls `each` for every matching row (f.limit caps the total, 0 = all) without holding
    // more than one page in memory; pages are separate read transactions, so a long export
    // never pins the WAL (or holds back PostgreSQL's vacuum). `each` returns false to stop.
    db_result<void> scan(const event_filter& f, scan_order order, const std::function<bool(const stored_event&)>& each,
                         std::size_t page_size = 500);

    // Inserts rows as given (received time, status, body ...); a dedupe_key already present
    // is a duplicate and leaves the existing row alone. One transaction for the whole span.
    virtual db_result<import_outcome> import(std::span<const stored_event> rows) = 0;

    // Deletes rows received before cutoff_us (optionally only of one status), oldest first, in
    // transactions of `batch` rows so the daemon's writer never waits long. Returns how many.
    virtual db_result<std::int64_t> prune(std::int64_t cutoff_us, std::optional<event_status> status,
                                          std::size_t batch = 1000) = 0;
    virtual db_result<std::int64_t> count_older(std::int64_t cutoff_us, std::optional<event_status> status) = 0;

    virtual db_result<event_stats> stats(std::optional<std::int64_t> since_us) = 0;
    // Events and rejections received in [start_us, end_us), counted per bucket of bucket_us (> 0).
    virtual db_result<window_counts> counts_in_window(std::int64_t start_us, std::int64_t end_us,
                                                      std::int64_t bucket_us) = 0;

    virtual db_result<void> record_replay(const replay_attempt& a) = 0;

    // Applies one re-verification result to a row that still has status u.from; false when
    // it no longer has (someone else settled it). A row settled verified gets its deliveries
    // and feed position in the same transaction.
    virtual db_result<bool> settle(const status_update& u) = 0;

    virtual db_result<std::vector<stored_rejection>> rejections(const rejection_filter& f) = 0;
    virtual db_result<std::optional<stored_rejection>> rejection(std::int64_t id) = 0;

    // The plan of the statement list() runs for f, one line per plan node (SQLite: EXPLAIN
    // QUERY PLAN's "detail"; PostgreSQL: EXPLAIN's text lines).
    virtual db_result<std::vector<std::string>> explain_list(const event_filter& f) = 0;

    // Integrity checks ("ok" or the problems found): SQLite's integrity_check and
    // foreign_key_check; PostgreSQL's catalog view of the tables and the schema version.
    virtual db_result<std::vector<std::string>> check() = 0;

    virtual std::int64_t schema_version() const noexcept = 0;

    // ---- Forwarding (store/outbox.hpp): the same on both backends.
    db_result<std::vector<delivery_row>> deliveries(const delivery_filter& f);
    // One delivery with its attempts; nullopt when no such row.
    db_result<std::optional<delivery_row>> delivery(std::int64_t id);
    // Every delivery of one event with its attempts, by destination.
    db_result<std::vector<delivery_row>> deliveries_of(std::int64_t event_id);
    // Makes the rows given by id (or, with no ids, those `f` selects; its before_id and limit
    // ignored) pending again and due at once, with a fresh schedule; rows already pending are
    // left alone. dry_run: only counts them.
    db_result<std::int64_t> retry_deliveries(std::span<const std::int64_t> ids, const delivery_filter& f, bool dry_run);
    db_result<std::vector<destination_status>> destinations();
    // false when the database knows no such destination (it was never configured).
    db_result<bool> set_destination_paused(std::string_view name, bool paused, std::string_view reason,
                                           std::int64_t now_us);
    // Positions of forwardable events after `after`, in commit order (a position is given in
    // the transaction that makes the event forwardable, so none appears later below one seen).
    db_result<std::vector<feed_position>> feed(std::int64_t after, std::size_t limit);
    // The end of the feed: the last position committed (0 before the first). feed() after it
    // returns only positions committed later.
    db_result<std::int64_t> feed_end();

    // ---- Catch-up (store/catch_up.hpp): the same on both backends.
    db_result<std::vector<watermark>> watermarks();
    // Newest first; of one type when given; limit 0: all.
    db_result<std::vector<catch_up_run>> catch_up_runs(std::optional<std::string> type, std::size_t limit);
    db_result<std::vector<heartbeat>> heartbeats();

protected:
    event_db() = default;

    // The runner of this connection (autocommit statements) and the name failures start with.
    virtual detail::sql_runner& runner() = 0;
    virtual const std::string& display_name() const noexcept = 0;

    // One page of whole rows for scan(): f.limit rows (never 0) after f.after in `order`.
    virtual db_result<std::vector<stored_event>> page(const event_filter& f, scan_order order) = 0;
};

} // namespace cwhook::store
