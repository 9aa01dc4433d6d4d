// The receiver application: wires the store, key cache, ingest pipeline, re-verifier and
// HTTP server onto one io_context run by a pool of threads.
// Thread-safe: start()/shutdown() may be called from any thread (signal handlers post here).
#pragma once

#include "callback/settings.hpp"
#include "core/metrics.hpp"
#include "http/server.hpp"
#include "manage/settings.hpp"
#include "store/event_store.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

namespace cwhook::callback {

struct app_settings {
    http::settings server;
    std::string callback_path = "/callbacks";
    verify_settings verify;
    store::settings storage;
    manage::settings manage;
    std::vector<manage::subscription> subscriptions;  // [[subscriptions]]
};

class app {
public:
    // Opens the store, loads TLS material, binds every listener. Errors are one clear line.
    static boost::system::result<std::unique_ptr<app>, std::string> create(app_settings s);
    ~app();

    // Starts the worker threads and returns at once.
    void start();
    // Graceful: stop accepting, drain in-flight requests, flush and close the store.
    // Blocks until done; safe to call twice. Returns true when the drain was clean.
    bool shutdown();
    // Blocks until shutdown() has finished (from another thread, e.g. a signal watcher).
    void wait();

    std::vector<boost::asio::ip::tcp::endpoint> plain_endpoints() const;
    std::vector<boost::asio::ip::tcp::endpoint> tls_endpoints() const;
    metrics::registry& metrics() noexcept;
    const app_settings& settings() const noexcept;

    struct impl;

private:
    explicit app(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

} // namespace cwhook::callback
