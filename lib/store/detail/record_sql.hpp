// Binding and reading an event_record on a SQLite statement, derived from
// store/event_fields.hpp (the column text is in detail/query.hpp). Internal to lib/store.
#pragma once

#include "store/event_store.hpp"
#include "store/sqlite.hpp"


namespace cwhook::store::detail {

// Binds every field of e (identity fields too, unless skip_identity), numbered from first;
// returns the next free index.
int bind_record(sqlite::statement& s, const event_record& e, int first, bool skip_identity = false);

// Reads every field from the row's columns, starting at column first; returns the next column.
int read_record(const sqlite::statement& s, event_record& e, int first);

} // namespace cwhook::store::detail
