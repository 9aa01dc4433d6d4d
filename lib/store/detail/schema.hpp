// The schema migrations shared by the ingest writer (event_store) and operators' connections
// (event_db). Internal to lib/store.
#pragma once

#include "store/sqlite.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook::store::detail {

// PRAGMA user_version this cwhook writes.
//   1: events, rejections and their indexes
//   2: events (type, received_at_us) and (action, received_at_us), rejections (reason, ...),
//      replays (replay history of events)
//   3: forwarding: events.feed_seq, counters, destinations, deliveries, delivery_attempts
//   4: catch-up: events status 'synthesized', events.source, twin_of, entity_updated_at_us,
//      catch_up_watermarks, catch_up_runs, heartbeats
inline constexpr std::int64_t schema_version = 4;

// The SQL that takes user_version `from` to from + 1 (tests build files of older versions).
std::string_view sqlite_migration(std::int64_t from);

// Upgrades the database in place, one version per write transaction; refuses a newer schema.
boost::system::result<void, std::string> migrate(sqlite::database& db);

} // namespace cwhook::store::detail
