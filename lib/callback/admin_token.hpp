// The admin API's bearer token when none is configured: made at first start (32 random bytes,
// hex) into a file readable only by the daemon's user, next to the database, and read back
// on every later start, so the token survives restarts and `cwhook admin token` can print it.
// Functions on the file system; thread-safe (two processes starting at once get one token).
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace cwhook::callback {

// "<folder of storage_path>/admin-token" ("./var/cwhook.db" -> "./var/admin-token").
std::string admin_token_file(std::string_view storage_path);

// The token in `path`, made first when the file does not exist (mode 0600, folder created).
// Errors are one line naming the file: unreadable, not a regular file, open to every user
// (mode bits for others), empty or holding characters a header cannot carry.
boost::system::result<std::string, std::string> load_or_create_admin_token(const std::string& path);

// The token in `path` without making one; the error says when the file does not exist yet.
boost::system::result<std::string, std::string> read_admin_token(const std::string& path);

} // namespace cwhook::callback
