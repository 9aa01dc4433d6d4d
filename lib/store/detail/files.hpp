// Creating the database's folder and file with private modes. Internal to lib/store.
// Thread-safe: it touches only the file system (the umask is not changed).
#pragma once

#include <boost/system/result.hpp>

#include <string>

namespace cwhook::store::detail {

// Creates every missing folder of `path`'s parent with mode 0700 and, when `path` does not
// exist, an empty database file with mode 0600, whatever the process umask. Folders and a file
// that already exist keep their modes (they are the operator's choice). SQLite creates the
// -wal and -shm files with the mode of the database file, so they are 0600 too.
// ":memory:" is left alone. The error says which path and why.
boost::system::result<void, std::string> create_private(const std::string& path);

} // namespace cwhook::store::detail
