#include "store/detail/files.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cwhook::store::detail {

namespace {

std::string errno_text(int e)
{
    return std::error_code(e, std::generic_category()).message();
}

} // namespace

// The events hold what Manage sent (customer data) and the rejections what anyone sent: the
// database is nobody else's business on a shared machine, and a umask of 022 (or 000 in some
// containers) would otherwise leave it readable by every local user. mkdir/open take the mode
// masked by the umask, so the exact mode is set again on what was just created.
boost::system::result<void, std::string> create_private(const std::string& path)
{
    if (path.empty() || path == ":memory:") {
        return {};
    }
    const std::filesystem::path file(path);
    std::filesystem::path folder;
    for (const auto& part : file.parent_path()) {
        folder /= part;
        if (::mkdir(folder.c_str(), 0700) == 0) {
            if (::chmod(folder.c_str(), 0700) != 0) {
                return fmt::format("cannot set the mode of folder {}: {}", folder.string(), errno_text(errno));
            }
        } else if (errno != EEXIST) {
            return fmt::format("cannot create folder {}: {}", folder.string(), errno_text(errno));
        }
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return {};
        }
        return fmt::format("cannot create {}: {}", path, errno_text(errno));
    }
    const int rc = ::fchmod(fd, 0600);
    const int e = errno;
    ::close(fd);
    if (rc != 0) {
        return fmt::format("cannot set the mode of {}: {}", path, errno_text(e));
    }
    return {};
}

} // namespace cwhook::store::detail
