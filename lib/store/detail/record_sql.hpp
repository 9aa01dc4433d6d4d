// SQL text, bindings and reading of event_record, derived from store/event_fields.hpp.
// Internal to lib/store.
#pragma once

#include "store/event_store.hpp"
#include "store/sqlite.hpp"

#include <string>

namespace cwhook::store::detail {

// "received_at_us, status, ...": every field's column, in order.
std::string record_columns();

// "status = ?2, verify_reason = ?3, ...": every field but the identity ones, numbered from first.
std::string record_assignments(int first);

// "?first, ?first+1, ..." (count of them).
std::string placeholders(int first, int count);

// How many fields the record has (the number of record_columns()).
int record_field_count();

// Binds every field of e (identity fields too, unless skip_identity), numbered from first;
// returns the next free index.
int bind_record(sqlite::statement& s, const event_record& e, int first, bool skip_identity = false);

// Reads every field from the row's columns, starting at column first; returns the next column.
int read_record(const sqlite::statement& s, event_record& e, int first);

} // namespace cwhook::store::detail
