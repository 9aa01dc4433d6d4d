// `cwhook serve`: start-up errors are fatal (one line, exit 1); signals are taken by the
// main thread with sigwait so no handler runs in async-signal context. The first SIGTERM
// or SIGINT starts a graceful shutdown on a helper thread; a second one exits at once.
#include "commands.hpp"

#include "config/config.hpp"

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace cwhook::daemon {

namespace {

int serve(const common_options& common)
{
    // Block the signals before any thread exists so every thread inherits the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);  // "shutdown finished", sent to ourselves
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
        return 1;
    }
    log::configure(cfg->log.level, cfg->log.format, std::getenv("JOURNAL_STREAM") != nullptr);

    auto app = callback::app::create(cfg->app);
    if (!app) {
        log::error("cannot start", {{"error", app.error()}});
        std::fprintf(stderr, "cwhook: %s\n", app.error().c_str());
        return 1;
    }
    (*app)->start();

    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) {
        return 1;
    }
    log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    const pthread_t main_thread = pthread_self();
    bool clean = false;
    std::thread stopper([&] {
        clean = (*app)->shutdown();
        pthread_kill(main_thread, SIGUSR1);
    });
    for (;;) {
        sigwait(&set, &sig);
        if (sig == SIGUSR1) {
            break;
        }
        log::warn("second signal; exiting now");
        std::_Exit(128 + sig);
    }
    stopper.join();
    // A drain that hit its deadline still flushed storage: nothing acknowledged is lost.
    (void)clean;
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
