// `cwhook serve`: start-up errors are fatal (one line, exit 1); signals are taken by the
// main thread with sigwait so no handler runs in async-signal context. The first SIGTERM
// or SIGINT starts a graceful shutdown on a helper thread; a second one exits at once.
// SIGHUP re-reads the configuration. A fatal failure inside the receiver (an accept loop that
// died) is reported to the main thread as SIGUSR2: the same graceful shutdown, then exit 1.
// Under systemd (Type=notify) the same thread sends
// READY=1, STOPPING=1 and, when WatchdogSec= is set, WATCHDOG=1 pings.
#include "commands.hpp"

#include "config/config.hpp"
#include "core/log.hpp"
#include "service_manager.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <mutex>
#include <optional>
#include <string>
#include <cstdio>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace cwhook::daemon {

namespace {

// Waits for one of `set`; 0 when `timeout` passed first.
int wait_signal(const sigset_t& set, std::optional<std::chrono::microseconds> timeout)
{
    for (;;) {
        if (!timeout) {
            int sig = 0;
            if (sigwait(&set, &sig) == 0) {
                return sig;
            }
            continue;
        }
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*timeout);
        const timespec ts{static_cast<time_t>(secs.count()),
                          static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout - secs).count())};
        const int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig > 0) {
            return sig;
        }
        if (errno == EAGAIN) {
            return 0;
        }
    }
}

// SIGHUP: re-read the configuration; a bad one is refused and the running one stays.
void reload(const common_options& common, callback::app& app)
{
    notify("RELOADING=1");
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        log::error("reload refused: invalid configuration; the running one stays in force",
                   {{"error", cfg.error()}});
    } else if (auto r = app.reload(cfg->app); !r) {
        log::error("reload refused; the running configuration stays in force", {{"error", r.error()}});
    } else {
        log::configure(cfg->log.level, cfg->log.format, std::getenv("JOURNAL_STREAM") != nullptr);
        log::info("configuration reloaded");
    }
    notify("READY=1");
}

int serve(const common_options& common)
{
    // Block the signals before any thread exists so every thread inherits the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);  // "shutdown finished", sent to ourselves
    sigaddset(&set, SIGUSR2);  // "the receiver cannot go on", sent to ourselves
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
        return 1;
    }
    log::configure(cfg->log.level, cfg->log.format, std::getenv("JOURNAL_STREAM") != nullptr);
    cfg->app.server.inherited = inherited_sockets();
    if (!cfg->app.server.inherited.empty()) {
        log::info("using sockets passed by the service manager", {{"count", cfg->app.server.inherited.size()}});
    }

    auto app = callback::app::create(cfg->app);
    if (!app) {
        log::error("cannot start", {{"error", app.error()}});
        std::fprintf(stderr, "cwhook: %s\n", app.error().c_str());
        return 1;
    }
    const pthread_t main_thread = pthread_self();
    std::mutex fatal_mutex;
    std::string fatal_error;  // guarded by fatal_mutex
    (*app)->start([main_thread, &fatal_mutex, &fatal_error](const std::string& why) {
        {
            std::lock_guard lock(fatal_mutex);
            fatal_error = why;
        }
        pthread_kill(main_thread, SIGUSR2);
    });
    notify("READY=1\nSTATUS=receiving callbacks");

    // Watchdog pings only while the worker threads still run queued work.
    const auto watchdog = watchdog_period();
    const auto ping_every = watchdog ? std::optional(*watchdog / 2) : std::nullopt;
    int sig = 0;
    for (;;) {
        sig = wait_signal(set, ping_every);
        if (sig == 0) {
            if ((*app)->responsive(std::chrono::duration_cast<std::chrono::milliseconds>(*ping_every / 2))) {
                notify("WATCHDOG=1");
            } else {
                log::warn("worker threads did not answer in time; withholding the watchdog ping");
            }
            continue;
        }
        if (sig == SIGHUP) {
            reload(common, **app);
            continue;
        }
        break;
    }
    if (sig == SIGUSR1) {
        return 1;
    }
    const bool fatal = sig == SIGUSR2;
    if (fatal) {
        std::lock_guard lock(fatal_mutex);
        notify("STOPPING=1\nSTATUS=fatal error: " + fatal_error);
        log::error("cannot go on; shutting down to exit 1", {{"error", fatal_error}});
    } else {
        notify("STOPPING=1\nSTATUS=draining");
        log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    }
    bool clean = false;
    std::thread stopper([&] {
        clean = (*app)->shutdown();
        pthread_kill(main_thread, SIGUSR1);
    });
    for (;;) {
        sig = wait_signal(set, ping_every);
        if (sig == 0) {
            notify("WATCHDOG=1");  // draining is progress; TimeoutStopSec bounds it
            continue;
        }
        if (sig == SIGUSR1) {
            break;
        }
        if (sig == SIGHUP || sig == SIGUSR2) {
            continue;
        }
        log::warn("second signal; exiting now");
        std::_Exit(128 + sig);
    }
    stopper.join();
    // A drain that hit its deadline still flushed storage: nothing acknowledged is lost.
    (void)clean;
    if (fatal) {
        std::lock_guard lock(fatal_mutex);
        log::error("cwhook stopped after a fatal error", {{"error", fatal_error}});
        std::fprintf(stderr, "cwhook: %s\n", fatal_error.c_str());
        return 1;
    }
    return 0;
}

} // namespace

command add_serve(CLI::App& app, common_options& common)
{
    auto* cmd = app.add_subcommand("serve", "Run the receiver (HTTP/HTTPS listeners, verification, storage)");
    add_config_option(*cmd, common);
    return {cmd, [&common] { return serve(common); }};
}

} // namespace cwhook::daemon
