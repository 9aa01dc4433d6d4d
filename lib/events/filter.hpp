// Filters of `cwhook events` and the admin API, from the same names and spellings in both:
// type, action, entity-id, company, status, source, since, until, callback-id, limit (the API also
// takes entity_id / callback_id and a cursor); and those of the deliveries to destinations.
// Pure functions, thread-safe.
#pragma once

#include "store/event_db.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::events {

inline constexpr std::int64_t max_limit = 1'000'000;  // --limit / limit=
inline constexpr std::size_t max_api_page = 1000;     // the admin API pages at most this many rows

// Sets one filter term from text. Times: RFC 3339 or a duration back from now_us ("2h", "7d").
// Returns why the value is refused (the caller names the option), nullopt when accepted.
// Unknown names are refused too.
std::optional<std::string> set_filter(store::event_filter& f, std::string_view name, std::string_view value,
                                      std::int64_t now_us);

// Sets one term of a delivery selection (`cwhook deliveries`, /api/deliveries) from text:
// destination, state (pending, failing, done, dead, cancelled), event (an event id), before (a
// delivery id: the rows below it) or limit. Returns why the value is refused (the caller names
// the option), nullopt when accepted; unknown names are refused too.
std::optional<std::string> set_delivery_filter(store::delivery_filter& f, std::string_view name,
                                               std::string_view value);

// Whether a stored event is one `f` selects (its type, action, entity id, company, status,
// source, callback id and [since, until); cursor and limit are not about one event). Where a
// selection is made after reading, as `events tail` does with the feed.
bool matches(const store::event_filter& f, const store::stored_event& e);

// "<received_at_us>.<id>": opaque to clients, the position after the last row of a page.
std::string format_cursor(const store::event_cursor& c);
std::optional<store::event_cursor> parse_cursor(std::string_view text);

} // namespace cwhook::events
