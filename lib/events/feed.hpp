// The feed for consumers who pull (GET /api/feed, `cwhook events tail`): forwardable events in
// the order they became forwardable, each with its position as an opaque cursor. A position is
// given in the transaction that makes an event forwardable, from a counter taken last, so a
// reader that resumes after the last cursor it saw never skips an event that committed late.
// Pure functions over an event_db; thread-safe as far as the event_db passed is.
#pragma once

#include "store/event_db.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::events {

inline constexpr std::size_t max_feed_page = 1000;

struct feed_event {
    std::int64_t seq = 0; // the position: its cursor
    store::stored_event event;
};

struct feed_page {
    std::vector<feed_event> events;
    // The last position read (the `after` asked for when there was none). An event deleted
    // (retention) between the read of its position and its load is left out, its position
    // passed.
    std::int64_t last = 0;
    std::size_t positions = 0; // read: 0 when nothing after `after` is committed yet
};

// Up to `limit` positions after `after` and their events (loaded one by one: a page is at
// most max_feed_page rows, each found by its primary key).
store::db_result<feed_page> read_feed(store::event_db& db, std::int64_t after, std::size_t limit);

// Cursors are the decimal position today; clients must treat them as opaque. "0" is the start.
std::string format_feed_cursor(std::int64_t seq);
std::optional<std::int64_t> parse_feed_cursor(std::string_view text);

// One event of the feed as compact JSON:
//   {"cursor":"<seq>","id":N,"type":"..","action":"..","entity_id":N|null,"company_id":".."|null,
//    "status":"verified","source":"callback","received_at":"2026-11-28T04:05:06.123456Z","payload":{...}|null}
// payload: the body with its top-level Entity string decoded, numbers as sent; null when the
// body is not JSON.
std::string feed_json(const feed_event& e);

// The columns of `events list` for one event.
store::event_summary summary_of(const store::stored_event& e);
// One line of `events tail`: the columns of `events list` (id, received, type, action, entity,
// company, status, deliveries, source) padded to fixed widths, with a newline.
std::string summary_line(const store::event_summary& e);

} // namespace cwhook::events
