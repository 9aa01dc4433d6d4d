#include "service_manager.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <fcntl.h>
#include <string>

namespace cwhook::daemon {

void notify(std::string_view state)
{
    const std::string text(state);
    (void)sd_notify(0, text.c_str());
}

std::optional<std::chrono::microseconds> watchdog_period()
{
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        return std::chrono::microseconds(usec);
    }
    return std::nullopt;
}

std::vector<http::settings::inherited_socket> inherited_sockets()
{
    char** names = nullptr;
    const int n = sd_listen_fds_with_names(1, &names);
    std::vector<http::settings::inherited_socket> out;
    for (int i = 0; i < n; ++i) {
        const int fd = SD_LISTEN_FDS_START + i;
        (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
        const bool tls = names != nullptr && names[i] != nullptr && std::string_view(names[i]) == "https";
        out.push_back({fd, tls});
    }
    if (names != nullptr) {
        for (int i = 0; i < n; ++i) {
            std::free(names[i]);  // NOLINT(cppcoreguidelines-no-malloc): allocated by libsystemd
        }
        std::free(names);  // NOLINT(cppcoreguidelines-no-malloc)
    }
    return out;
}

} // namespace cwhook::daemon
