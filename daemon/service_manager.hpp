// The service manager (systemd) protocol, through libsystemd: readiness and stopping
// notifications, watchdog pings, and sockets passed by socket activation. Everything is a
// no-op when the process was not started by systemd (no NOTIFY_SOCKET / LISTEN_FDS).
#pragma once

#include "http/server.hpp"

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

namespace cwhook::daemon {

// Sends one notification ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."); ignores errors.
void notify(std::string_view state);

// The watchdog period systemd expects pings within (WatchdogSec=), if enabled for this process.
std::optional<std::chrono::microseconds> watchdog_period();

// Sockets passed by socket activation (LISTEN_FDS), unset from the environment afterwards.
// FileDescriptorName "https" = TLS listener; anything else = plain HTTP. Each fd is made
// close-on-exec. Empty when there are none.
std::vector<http::settings::inherited_socket> inherited_sockets();

} // namespace cwhook::daemon
