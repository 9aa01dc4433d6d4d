// The two backends' entry points: each is defined in that backend's own files (sqlite_*.cpp,
// postgres_*.cpp), the only ones that include its client library. Internal to lib/store.
#pragma once

#include "store/detail/writer.hpp"
#include "store/event_db.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace cwhook::store::detail {

// Errors say what failed and the database's reason; the caller prefixes the file or server.
boost::system::result<std::unique_ptr<writer>, std::string> open_sqlite_writer(const settings& s);
boost::system::result<std::unique_ptr<writer>, std::string> open_postgres_writer(const settings& s);

// Errors name the file or server themselves.
db_result<std::unique_ptr<event_db>> open_sqlite_db(const std::string& path, db_access access,
                                                   std::chrono::milliseconds busy_timeout);
db_result<std::unique_ptr<event_db>> open_postgres_db(const settings& s, db_access access);

} // namespace cwhook::store::detail
