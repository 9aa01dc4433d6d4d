// The outbox's SQL, written once for both backends on a sql_runner. Every function runs
// inside the caller's transaction (the writer's batch, or an event_db transaction) unless it
// says otherwise. Internal to lib/store.
#pragma once

#include "store/detail/sql_runner.hpp"
#include "store/outbox.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace cwhook::store::detail::outbox {

// The events (ids in the order they became forwardable in this transaction) get one delivery
// row per configured destination whose filters take them (none twice), and the next feed
// positions. Call once per transaction, after its other writes: the feed counter's row lock
// (PostgreSQL) is then held only until COMMIT, so feed positions follow commit order.
outcome<void> make_forwardable(sql_runner& db, std::span<const std::int64_t> event_ids, std::int64_t now_us);

// Makes the destinations table hold exactly `routes` as configured (others stay, not
// configured) and cancels the undelivered rows of those no longer configured.
outcome<sync_outcome> sync_destinations(sql_runner& db, std::span<const destination_route> routes, std::int64_t now_us);

// Up to `limit` due deliveries of one destination (none while it is paused), most overdue
// first; with entity_ordering only the oldest undelivered row of each (type, entity id). Their
// next attempt moves to lease_until_us.
outcome<std::vector<claimed_delivery>> claim(sql_runner& db, std::string_view destination, bool entity_ordering,
                                             std::int64_t now_us, std::size_t limit, std::int64_t lease_until_us);

// Applies each result to its row while the row still holds the claim's lease (a retry or
// another claim since then wins); every attempt is recorded in the history either way.
outcome<void> apply_results(sql_runner& db, std::span<const delivery_result> results);

outcome<std::vector<destination_status>> destinations(sql_runner& db);

// false when no such destination is known.
outcome<bool> set_paused(sql_runner& db, std::string_view name, bool paused, std::string_view reason,
                         std::int64_t now_us);

outcome<std::vector<delivery_row>> list(sql_runner& db, const delivery_filter& f);
outcome<std::optional<delivery_row>> get(sql_runner& db, std::int64_t id);
// Every delivery of one event, with its attempts.
outcome<std::vector<delivery_row>> of_event(sql_runner& db, std::int64_t event_id);

// Makes the selected rows (ids, or the filter; never those already pending) pending again, due
// at once, with a fresh schedule. dry_run: only counts them.
outcome<std::int64_t> retry(sql_runner& db, std::span<const std::int64_t> ids, const delivery_filter& f, bool dry_run);

// Feed positions after `after`, in order.
outcome<std::vector<feed_position>> feed(sql_runner& db, std::int64_t after, std::size_t limit);
// The last position given (0 before the first): every position up to it is committed.
outcome<std::int64_t> feed_end(sql_runner& db);

} // namespace cwhook::store::detail::outbox
