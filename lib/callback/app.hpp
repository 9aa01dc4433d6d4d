// The receiver application: wires the store, key cache, ingest pipeline, re-verifier and
// HTTP server onto one io_context run by a pool of threads.
// Thread-safe: start()/shutdown() may be called from any thread (signal handlers post here).
#pragma once

#include "callback/settings.hpp"
#include "core/metrics.hpp"
#include "http/server.hpp"
#include "store/event_store.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cwhook::callback {

class app {
public:
    // Opens the store, loads TLS material, binds every listener. Errors are one clear line.
    static boost::system::result<std::unique_ptr<app>, std::string> create(app_settings s);
    ~app();

    // Called (once, from a worker thread) when the receiver cannot go on, e.g. an accept loop
    // failed: the daemon should shut down and exit non-zero. `why` names the task and cause.
    using fatal_fn = std::function<void(const std::string& why)>;

    // Starts the background loops and the worker threads and returns at once. Without
    // `on_fatal` a fatal failure is only logged.
    void start(fatal_fn on_fatal = {});
    // Graceful: stop accepting, drain in-flight requests, flush and close the store.
    // Blocks until done; safe to call twice. Returns true when the drain was clean.
    bool shutdown();
    // Blocks until shutdown() has finished (from another thread, e.g. a signal watcher).
    void wait();

    // True when the worker threads ran a posted task within `timeout` (the watchdog ping).
    bool responsive(std::chrono::milliseconds timeout);

    // Configuration reload. `in_force` becomes the configuration in force: every setting that
    // needs a restart must hold its running value (config::plan_reload() makes such settings
    // from a newly loaded file); `restart_needed` names the keys whose newer value waits for a
    // restart (warned, and shown as cwhook_restart_needed{key="..."} 1 until a later reload no
    // longer names them). Applied: the TLS certificate and key are re-read; listeners are
    // rebound; the server limits, deadlines and trusted proxies apply to connections accepted
    // from now on (open ones keep theirs; the admin listener takes the same deadlines and
    // sizes); the [verify] settings apply to the next delivery, re-verification and key fetch.
    // Counts cwhook_reloads_total{result="applied"|"restart_needed"|"rejected"}. On error
    // nothing changes. Call from one thread at a time.
    boost::system::result<void, std::string> reload(const app_settings& in_force,
                                                    const std::vector<std::string>& restart_needed = {});
    // A reload whose configuration could not be loaded: counted as rejected.
    void reload_rejected();

    std::vector<boost::asio::ip::tcp::endpoint> plain_endpoints() const;
    std::vector<boost::asio::ip::tcp::endpoint> tls_endpoints() const;
    // The admin listener's endpoint(s); empty when admin.listen is "".
    std::vector<boost::asio::ip::tcp::endpoint> admin_endpoints() const;
    // The admin listener's bearer token: admin.token, else the generated one
    // (admin_token_file(storage.path)); "" when admin.listen is "".
    const std::string& admin_token() const noexcept;
    metrics::registry& metrics() noexcept;
    // Prometheus text of every metric, with the sampled gauges (store queue depth) updated.
    std::string render_metrics();
    // The configuration in force: as started, with what reloads applied (a copy; thread-safe).
    app_settings settings() const;

    struct impl;
    static std::string render_metrics(impl& p);

private:
    explicit app(std::unique_ptr<impl> p);
    boost::system::result<void, std::string> apply(const app_settings& next);
    std::unique_ptr<impl> impl_;
};

} // namespace cwhook::callback
