// How the forwarding outbox is shown to operators: the tables of `cwhook deliveries list` and
// `cwhook destinations list`, the text of `deliveries show` and of the forwarding section of
// `events show`, and the JSON of --json and the admin API. Pure functions, thread-safe.
//
// JSON of a delivery: {"id","event_id","destination","state","created_at","created_at_us",
// "next_attempt_at","next_attempt_at_us" (undelivered rows; 0 / null: due at once),
// "attempt_count" (all rounds),"tries" (since the last retry),"last_status" (null: none or no
// answer),"last_error","done_at","done_at_us" (done, dead, cancelled)} and, where the row's
// attempts were loaded, "attempts": [{"at","at_us","http_status","latency_ms","error"}],
// oldest first.
#pragma once

#include "store/outbox.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace cwhook::events {

// Header line plus one line per row: id, event, destination, state, attempts, last status,
// last error (shortened), next attempt or done time.
std::string deliveries_table(std::span<const store::delivery_row> rows);
// with_attempts: add "attempts" (the row's history as loaded).
std::string delivery_json(const store::delivery_row& d, bool with_attempts = false);
std::string attempt_json(const store::delivery_attempt& a);
// `deliveries show`: the row, then its attempts (time, status, latency, error).
std::string delivery_text(const store::delivery_row& d);

// The forwarding section of `events show`: each destination's delivery with its attempts.
std::string forwarding_text(std::span<const store::delivery_row> rows);
// The same as a JSON array of delivery objects with "attempts".
std::string forwarding_json(std::span<const store::delivery_row> rows);

// Header line plus one line per destination: name, configured, paused (with the reason),
// pending, failing, dead, done, cancelled, and the age of the oldest undelivered row at now_us.
std::string destinations_table(std::span<const store::destination_status> rows, std::int64_t now_us);
// {"name","configured","paused","pause_reason","changed_at","pending","failing","dead","done",
// "cancelled","oldest_undelivered_at","oldest_undelivered_age_s"} (the last two null when none).
std::string destination_json(const store::destination_status& s, std::int64_t now_us);

} // namespace cwhook::events
