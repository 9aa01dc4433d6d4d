// The PostgreSQL schema and its migrations, shared by the backend's writer and its operators'
// connections. Internal to lib/store (PostgreSQL backend only).
#pragma once

#include "store/postgres.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cwhook::store::detail {

// The version cwhook_schema holds after migrate(); the same numbers as the SQLite schema
// (detail/schema.hpp) for the same tables, columns and indexes.
std::int64_t postgres_schema_version() noexcept;

// Upgrades in place, one version per transaction, each under a transaction-scoped advisory
// lock, so instances starting at once migrate one after the other; refuses a newer schema.
boost::system::result<void, std::string> postgres_migrate(pg::connection& c);

// The version the database holds (0: no cwhook schema yet). Reads only.
boost::system::result<std::int64_t, std::string> postgres_read_version(pg::connection& c);

// Names of the indexes migrate() creates, for check().
const std::vector<std::string>& postgres_index_names();

} // namespace cwhook::store::detail
