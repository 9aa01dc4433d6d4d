// Binding and reading an event_record for PostgreSQL statements, derived from
// store/event_fields.hpp like SQLite's detail/record_sql.hpp. Internal to lib/store.
#pragma once

#include "store/event_store.hpp"
#include "store/postgres.hpp"

namespace cwhook::store::detail {

// Adds every field of e (identity fields too, unless skip_identity) to p, in column order.
// Views e's bytes: e must outlive the statement.
void bind_record(pg::params& p, const event_record& e, bool skip_identity = false);

// A re-verification result, applied only to a row that still has status u.from: the
// statement and its parameters ($1..$5), for the writer's batches and event_db::settle.
extern const char* const update_status_sql;
void bind_status_update(pg::params& p, const status_update& u);

// Reads every field from row `row`, starting at column first; returns the next column.
int read_record(const pg::rows& r, int row, event_record& e, int first);

} // namespace cwhook::store::detail
