// The SQL text both backends share: column lists derived from store/event_fields.hpp, the
// WHERE clauses of operators' filters and their order. Values are always bound, never spliced
// into the text; only the placeholder spelling differs (SQLite "?N", PostgreSQL "$N").
// Internal to lib/store. Thread-safe (pure functions).
#pragma once

#include "store/event_db.hpp"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace cwhook::store::detail {

enum class dialect { sqlite, postgres };

// "?n" or "$n".
std::string placeholder(dialect d, int n);

// "received_at_us, status, ...": every field's column, in order.
std::string record_columns();

// "status = ?2, verify_reason = ?3, ...": every field but the identity ones, numbered from first.
std::string record_assignments(dialect d, int first);

// "?first, ?first+1, ..." (count of them).
std::string placeholders(dialect d, int first, int count);

// How many fields the record has (the number of record_columns()).
int record_field_count();

// id and the delivery counters, then the record's fields: what read_full() of each backend reads.
const std::string& full_columns();

inline constexpr std::string_view summary_columns =
    "id, received_at_us, type, action, entity_id, company_id, status, deliveries, source, twin_of";

// `columns` as a database of schema `version` answers them: a column added by a later version
// reads as its default (a read-only look at an older file reads as far as it goes).
std::string columns_for(std::string_view columns, std::int64_t version);

inline constexpr std::string_view rejection_columns =
    "id, received_at_us, http_status, reason, detail, client_addr, path, key_url, body_sha256, body_size, body_head";

using param = std::variant<std::int64_t, std::string>;

struct where_clause {
    explicit where_clause(dialect spelling) : d(spelling) {}

    dialect d;
    std::string sql;  // "" or " WHERE ..."
    std::vector<param> params;

    // ANDs `term`, whose every '?' stands for the next of `values`, in order.
    void add(std::string_view term, std::initializer_list<param> values);
};

// The filter's terms (and, with_cursor, the keyset cursor for `order`). Every term has an
// index that starts with its column and continues with (received_at_us, id).
where_clause event_where(const event_filter& f, scan_order order, dialect d, bool with_cursor = true);

// " ORDER BY received_at_us DESC, id DESC" or ascending.
std::string_view order_by(scan_order order);

where_clause rejection_where(const rejection_filter& f, dialect d);

// Rows `prune` and `count_older` select: received before the cutoff, of one status or, without
// one, any but pending (the daemon's re-verifier owns those).
where_clause prune_where(std::int64_t cutoff_us, std::optional<event_status> status, dialect d);

// event_db::stats's statements, each bound with since.params: (key, count) rows by type, by
// action and by status, most frequent first, and (day number, count) rows oldest first.
struct stats_statements {
    where_clause since;
    std::vector<std::pair<std::string, std::vector<count_row> event_stats::*>> by_key;
    std::string by_day;
};
stats_statements stats_sql(std::optional<std::int64_t> since_us, dialect d);

// event_db::counts_in_window's statements, each bound with range.params: (bucket, key, count)
// rows by event type, by event status and by rejection reason.
struct window_statements {
    where_clause range;
    std::vector<std::pair<std::string, std::vector<bucket_count> window_counts::*>> queries;
};
window_statements window_sql(std::int64_t start_us, std::int64_t end_us, std::int64_t bucket_us, dialect d);

// "YYYY-MM-DD" of a day number since the epoch (UTC).
std::string day_of(std::int64_t day_number);

} // namespace cwhook::store::detail
