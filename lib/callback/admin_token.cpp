// Design: the file is written under a temporary name and published with link(2), which fails
// when the name exists: a second daemon (or a racing start) never sees a half-written token
// and never replaces one that clients already use. It is opened with O_NOFOLLOW so a
// symlink planted in the state folder cannot redirect the read or the write. Group
// permissions are the operator's business (chmod 640 lets an admin group run `cwhook admin
// token`); permissions for every other user are refused, since anyone who reads the token
// drives the API.
#include "callback/admin_token.hpp"

#include "crypto/digest.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace cwhook::callback {

namespace {

using text_result = boost::system::result<std::string, std::string>;

text_result fail(std::string why)
{
    return text_result(boost::system::in_place_error, std::move(why));
}

std::string errno_text(int e)
{
    return std::strerror(e);  // NOLINT(concurrency-mt-unsafe): start-up and CLI only
}

// The token as stored: one line; a trailing newline (editors add one) is not part of it.
text_result read_token(const std::string& path, bool* missing)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        if (missing != nullptr) {
            *missing = e == ENOENT;
        }
        if (e == EACCES) {
            return fail(fmt::format("{}: {} (readable by the daemon's user only)", path, errno_text(e)));
        }
        return fail(fmt::format("{}: {}", path, errno_text(e)));
    }
    struct stat st {};
    std::string text;
    const bool stat_ok = ::fstat(fd, &st) == 0;
    if (stat_ok && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO) == 0) {
        char buf[512];
        for (;;) {
            const auto n = ::read(fd, buf, sizeof buf);
            if (n <= 0 || text.size() > 4096) {
                break;
            }
            text.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    if (!stat_ok || !S_ISREG(st.st_mode)) {
        return fail(fmt::format("{}: not a regular file", path));
    }
    if ((st.st_mode & S_IRWXO) != 0) {
        return fail(fmt::format("{}: mode {:04o} gives every user access to the admin token; chmod 600 it", path,
                                st.st_mode & 07777));
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
        text.pop_back();
    }
    if (text.empty()) {
        return fail(fmt::format("{}: empty", path));
    }
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) {
            return fail(fmt::format("{}: the token must be printable ASCII without spaces", path));
        }
    }
    return text_result(boost::system::in_place_value, std::move(text));
}

} // namespace

std::string admin_token_file(std::string_view storage_path)
{
    return (std::filesystem::path(storage_path).parent_path() / "admin-token").string();
}

text_result read_admin_token(const std::string& path)
{
    bool missing = false;
    auto t = read_token(path, &missing);
    if (!t && missing) {
        return fail(fmt::format("{}: no admin token yet (cwhook serve makes it at first start)", path));
    }
    return t;
}

text_result load_or_create_admin_token(const std::string& path)
{
    bool missing = false;
    if (auto t = read_token(path, &missing); t || !missing) {
        return t;
    }
    const auto folder = std::filesystem::path(path).parent_path();
    if (!folder.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(folder, ec);
        if (ec) {
            return fail(fmt::format("{}: cannot create folder {}: {}", path, folder.string(), ec.message()));
        }
    }
    const std::string token = crypto::random_hex(32);
    const std::string temp = fmt::format("{}.{}.{}", path, ::getpid(), crypto::random_hex(4));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return fail(fmt::format("{}: cannot create: {}", temp, errno_text(errno)));
    }
    const std::string line = token + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                         ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
    const int write_errno = errno;
    ::close(fd);
    if (!written) {
        ::unlink(temp.c_str());
        return fail(fmt::format("{}: cannot write: {}", temp, errno_text(write_errno)));
    }
    const int linked = ::link(temp.c_str(), path.c_str());
    const int link_errno = errno;
    ::unlink(temp.c_str());
    if (linked != 0 && link_errno != EEXIST) {
        return fail(fmt::format("{}: cannot create: {}", path, errno_text(link_errno)));
    }
    if (linked == 0) {
        // The name itself must survive a crash, or the next start would make another token.
        const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            ::fsync(dir);
            ::close(dir);
        }
        return text_result(boost::system::in_place_value, token);
    }
    // Another process published its token first: use that one.
    return read_token(path, nullptr);
}

} // namespace cwhook::callback
