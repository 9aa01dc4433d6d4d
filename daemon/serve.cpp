// `cwhook serve`: start-up errors are fatal (one line, exit 1); signals are taken by the
// main thread with sigwait so no handler runs in async-signal context. The first SIGTERM
// or SIGINT starts a graceful shutdown on a helper thread; a second one exits at once.
// SIGHUP re-reads the configuration. A fatal failure inside the receiver (an accept loop that
// died) is reported to the main thread as SIGUSR2: the same graceful shutdown, then exit 1.
// Under systemd (Type=notify) the same thread sends
// READY=1, STOPPING=1 and, when WatchdogSec= is set, WATCHDOG=1 pings.
#include "commands.hpp"

#include "callback/app.hpp"
#include "config/config.hpp"
#include "core/log.hpp"
#include "service_manager.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
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

std::string joined(const std::vector<std::string>& keys)
{
    std::string out;
    for (const auto& k : keys) {
        out += (out.empty() ? "" : ", ") + k;
    }
    return out.empty() ? "none" : out;
}

// SIGHUP: re-read the configuration; a bad one is refused and the running one stays.
// `running` is the configuration in force, updated when the reload succeeds.
void reload(const common_options& common, callback::app& app, config::settings& running)
{
    notify("RELOADING=1");
    auto loaded = config::load(config_path(common), config::process_env());
    if (!loaded) {
        app.reload_rejected();
        log::error("reload refused: invalid configuration; the running one stays in force",
                   {{"error", loaded.error()}});
    } else {
        auto plan = config::plan_reload(running, *loaded);
        if (auto r = app.reload(plan.in_force.app, plan.restart); !r) {
            log::error("reload refused; the running configuration stays in force", {{"error", r.error()}});
        } else {
            log::configure(plan.in_force.log.level, plan.in_force.log.format,
                           std::getenv("JOURNAL_STREAM") != nullptr);
            running = std::move(plan.in_force);
            log::info("configuration reloaded",
                      {{"applied", joined(plan.live)}, {"restart_needed", joined(plan.restart)}});
        }
    }
    notify("READY=1");
}

// The cause of a fatal failure: written by a worker thread, read by the main thread.
class fatal_report {
public:
    void set(const std::string& why)
    {
        std::lock_guard lock(mutex_);
        why_ = why;
    }
    std::string get() const
    {
        std::lock_guard lock(mutex_);
        return why_;
    }

private:
    mutable std::mutex mutex_;
    std::string why_;
};

// Graceful shutdown on a helper thread while this (main) thread keeps taking signals: a
// second SIGTERM or SIGINT exits at once, and the watchdog is pinged meanwhile.
void drain(callback::app& app, const sigset_t& set, std::optional<std::chrono::microseconds> ping_every)
{
    const pthread_t main_thread = pthread_self();
    std::thread stopper([&app, main_thread] {
        // A drain that hit its deadline still flushed storage: nothing acknowledged is lost.
        (void)app.shutdown();
        pthread_kill(main_thread, SIGUSR1);
    });
    for (;;) {
        const int sig = wait_signal(set, ping_every);
        if (sig == 0) {
            notify("WATCHDOG=1"); // draining is progress; TimeoutStopSec bounds it
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
    fatal_report fatal;
    (*app)->start([main_thread = pthread_self(), &fatal](const std::string& why) {
        fatal.set(why);
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
            reload(common, **app, *cfg);
            continue;
        }
        break;
    }
    if (sig == SIGUSR1) {
        return 1;
    }
    if (sig == SIGUSR2) {
        const std::string why = fatal.get();
        notify("STOPPING=1\nSTATUS=fatal error: " + why);
        log::error("cannot go on; shutting down to exit 1", {{"error", why}});
        drain(**app, set, ping_every);
        std::fprintf(stderr, "cwhook: stopped after a fatal error: %s\n", why.c_str());
        return 1;
    }
    notify("STOPPING=1\nSTATUS=draining");
    log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    drain(**app, set, ping_every);
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
