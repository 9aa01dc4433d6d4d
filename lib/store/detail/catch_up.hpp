// Catch-up's SQL (store/catch_up.hpp), written once for both backends on a sql_runner, like
// the outbox's (detail/outbox.hpp). Every function runs inside the caller's transaction (the
// writer's batch, or an event_db statement) unless it says otherwise. Types are compared
// exactly as stored: Manage sends callback Types in lower case, and the engine asks in lower
// case, so the indexes on type serve every lookup. Internal to lib/store.
#pragma once

#include "store/catch_up.hpp"
#include "store/detail/sql_runner.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::store::detail::catch_up {

// "s:<company>:<type>:<id>:<last_updated_us>".
std::string dedupe_key(const synthesized_event& e);

// Stores each event as a synthesized events row unless its dedupe key exists (already) or a
// newer row of its (type, entity id) than e.newest_seen_id does (seen); the ids stored are
// appended to `forwardable` (the caller makes them forwardable in the same transaction). With
// `advance`, its watermark moves to max(stored, advance.last_updated_us).
outcome<std::vector<synthesis_outcome>> synthesize(sql_runner& db, std::span<const synthesized_event> events,
                                                   const std::optional<watermark>& advance, std::int64_t now_us,
                                                   std::vector<std::int64_t>& forwardable);

// The synthesized row a callback of (type, entity id) would twin: the one with the newest
// entity_updated_at_us (then the highest id); nullopt when there is none.
struct synthesized_twin {
    std::int64_t id = 0;
    std::int64_t entity_updated_at_us = 0;
};
inline constexpr std::string_view newest_synthesized_sql = R"sql(
SELECT id, entity_updated_at_us FROM events
WHERE status = 'synthesized' AND type = ?1 AND entity_id = ?2
ORDER BY entity_updated_at_us DESC, id DESC
LIMIT 1)sql";
outcome<std::optional<synthesized_twin>> newest_synthesized(sql_runner& db, std::string_view type,
                                                            std::int64_t entity_id);

// A pending (or failed) callback row just settled verified: when a synthesized event of its
// (type, entity id) is not older than its Entity, the row becomes that event's twin (twin_of,
// entity_updated_at_us set) and the caller must not make it forwardable. True when linked.
// The same rule as a callback stored verified (the writers' find_twin), applied later.
outcome<bool> link_settled_twin(sql_runner& db, std::int64_t id,
                                const event_store::entity_updated_reader& entity_updated);

outcome<std::vector<newest_event>> newest_events(sql_runner& db, std::string_view type,
                                                 std::span<const std::int64_t> entity_ids);
outcome<std::vector<std::int64_t>> known_entities(sql_runner& db, std::string_view type);

outcome<std::vector<watermark>> watermarks(sql_runner& db);
outcome<bool> claim(sql_runner& db, std::string_view company, std::string_view type, std::string_view holder,
                    std::int64_t now_us, std::int64_t lease_until_us);
outcome<void> release(sql_runner& db, std::string_view company, std::string_view type, std::string_view holder);

// Inserts (run.id 0: returns the new id) or updates every field of run.id (returns run.id).
outcome<std::int64_t> record_run(sql_runner& db, const catch_up_run& run);
// Newest first (started_at_us, then id); limit 0: all.
outcome<std::vector<catch_up_run>> runs(sql_runner& db, const std::optional<std::string>& type, std::size_t limit);

outcome<void> beat(sql_runner& db, std::string_view instance, std::int64_t now_us, bool clean_stop);
outcome<std::vector<heartbeat>> heartbeats(sql_runner& db);

} // namespace cwhook::store::detail::catch_up
