// How stored events and rejections are shown and moved: the aligned table of `events list`,
// JSON for --json/--jsonl and the admin API, the text of `events show`, and the export line
// format that `events import` reads back. Pure functions, thread-safe.
//
// Export line (one JSON object per event): every column of the row, times as integer
// microseconds (plus a readable "received_at"), the body as "body_base64" (the exact bytes,
// whatever their encoding), body_sha256 checked on import. Other text columns are UTF-8; a
// byte of invalid UTF-8 in them (possible only in raw header values) is exported as '?'.
#pragma once

#include "store/event_db.hpp"
#include "store/outbox.hpp"

#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace cwhook::events {

// Header line plus one line per row, columns padded to the widest value.
std::string table(std::span<const store::event_summary> rows);
std::string summary_json(const store::event_summary& e);

// `events show`: metadata, headers, the body with Entity decoded (or the raw body shown as text
// when it is not JSON), and the replay history.
std::string detail_text(const store::stored_event& e);
// The same as one JSON object ("payload": the body as JSON with Entity decoded, or null).
std::string detail_json(const store::stored_event& e, int indent = 0);
// Both with the event's deliveries to destinations (event_db::deliveries_of, with their
// attempts): a "forwarding:" section; a "forwarding" array of delivery objects
// (deliveries_render.hpp). "deliveries" stays what it always was: how often Manage sent it.
std::string detail_text(const store::stored_event& e, std::span<const store::delivery_row> forwarding);
std::string detail_json(const store::stored_event& e, std::span<const store::delivery_row> forwarding, int indent = 0);

std::string export_line(const store::stored_event& e);
// The error names the problem ("field status: ..."); the caller adds the line number.
std::variant<store::stored_event, std::string> parse_export_line(std::string_view line);

std::string stats_text(const store::event_stats& s);
std::string stats_json(const store::event_stats& s);

std::string rejections_table(std::span<const store::stored_rejection> rows);
std::string rejection_json(const store::stored_rejection& r);
std::string rejection_text(const store::stored_rejection& r);

std::string replay_json(const store::replay_attempt& a);

} // namespace cwhook::events
