// Design: one io_context run by `threads` workers serves every connection; the store's
// writer thread owns SQLite; the key cache and re-verifier share the outbound client.
// Shutdown order matters for "nothing acknowledged is lost": drain HTTP first (every
// in-flight request gets its committed answer), then stop the re-verifier, then flush and
// close the store, and only then stop the io_context that delivers store completions.
#include "callback/app.hpp"

#include "callback/admin_api.hpp"
#include "callback/admin_token.hpp"
#include "callback/ingest.hpp"
#include "callback/key_cache.hpp"
#include "callback/readiness.hpp"
#include "callback/reverifier.hpp"
#include "callback/subscription_check.hpp"
#include "callback/verifier.hpp"
#include "catchup/engine.hpp"
#include "catchup/service.hpp"
#include "catchup/sources.hpp"
#include "client/https_client.hpp"
#include "core/await.hpp"
#include "core/duration.hpp"
#include "core/log.hpp"
#include "core/task.hpp"
#include "core/time.hpp"
#include "crypto/tls.hpp"
#include "forward/forwarder.hpp"
#include "json/rest_records.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <condition_variable>
#include <pthread.h>
#include <sched.h>
#include <future>
#include <thread>

namespace cwhook::callback {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

struct app::impl {
    app_settings cfg;  // as started; what components were built from (never changed)
    // The [verify] settings in force: a reload replaces them, ingest and the re-verifier read
    // them per delivery, the key fetcher per fetch.
    live_value<verify_settings> verify{cfg.verify};
    metrics::registry metrics;
    net::io_context ioc;
    net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
    // Before the store: a probe in flight completes into it until the store has stopped.
    std::unique_ptr<readiness_cache> readiness;
    std::unique_ptr<store::event_store> store;
    std::shared_ptr<net::ssl::context> client_tls;
    std::unique_ptr<client::https_client> client;
    key_url_policy policy;
    std::unique_ptr<key_cache> keys;
    status_counts counts;
    std::unique_ptr<ingest> pipeline;
    std::unique_ptr<reverifier> rever;
    std::unique_ptr<http::server> server;
    // The admin listener: its own router and server (and connection metrics of its own, so
    // operators' traffic does not show up as callback connections).
    metrics::registry admin_server_metrics;
    std::string admin_token;  // in force: configured or generated ("" without an admin listener)
    std::unique_ptr<admin_api> admin;
    std::unique_ptr<http::server> admin_server;
    std::unique_ptr<net::steady_timer> retention_timer;  // retention_loop's, on its strand; abandoned by ioc.stop()
    std::unique_ptr<client::https_client> manage_client;  // its own CA bundle and pool
    std::unique_ptr<client::https_client> forward_client;
    std::unique_ptr<forward::forwarder> forwarder; // forward.ca_file's CA bundle, its own pool
    std::unique_ptr<manage::api> manage_api;
    std::unique_ptr<subscription_check> checker;
    std::unique_ptr<catchup::engine> catch_up; // when [manage] has credentials and types to read
    std::unique_ptr<catchup::service> catch_up_service;
    std::vector<std::thread> threads;
    std::atomic<bool> stopping{false};
    app::fatal_fn on_fatal; // set by start() before any worker runs
    std::atomic<bool> failed{false};

    // The configuration in force (cfg with what reloads applied), for settings().
    mutable std::mutex in_force_mutex;
    app_settings in_force{cfg};
    std::vector<std::string> restart_shown;  // keys whose cwhook_restart_needed is 1; reload thread only

    std::mutex mutex;
    std::condition_variable cv;
    bool finished = false;
    bool clean = true;

    impl(app_settings s, unsigned concurrency, const key_url_policy& p)
        : cfg(std::move(s)), ioc(static_cast<int>(concurrency)), policy(p)
    {
    }

    void fatal(const std::string& why)
    {
        if (failed.exchange(true)) {
            return;
        }
        if (on_fatal) {
            on_fatal(why);
        } else {
            log::error("the receiver cannot go on; restart it", {{"error", why}});
        }
    }

    // A listener whose accept loop failed takes no more connections: a receiver that lingers
    // without accepting looks alive to its service manager, so the daemon stops instead.
    task::policy fatal_policy()
    {
        task::policy p;
        p.action = task::on_failure::stop;
        p.metrics = &metrics;
        p.stop = [this](const std::string& why) { fatal(why); };
        return p;
    }
};

std::vector<std::string> trusted_companies(const app_settings& s)
{
    auto out = s.verify.companies;
    if (!s.manage.company_id.empty()) {
        out.push_back(s.manage.company_id);
    }
    return out;
}

namespace {

// 0 = one worker per CPU this process may run on (taskset, container cpusets), which
// hardware_concurrency() does not see.
unsigned worker_threads(unsigned configured)
{
    if (configured != 0) {
        return configured;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        return std::max(1, CPU_COUNT(&set));
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// The admin listener: [server]'s deadlines and sizes, its own address, plain HTTP, no proxies.
http::settings admin_http_settings(const app_settings& s)
{
    http::settings out = s.server;
    out.listen = {s.admin.listen};
    out.tls_listen.clear();
    out.inherited.clear();  // sockets from the service manager are the callback listener's
    out.trusted_proxies.clear();
    out.max_connections = 64;
    return out;
}

// Retention: every retention_interval, delete what is older than `retention` in batches of
// retention_batch rows. Each batch is one job in the writer's queue, committed together with
// whatever callbacks are queued, and the loop pauses between batches, so a large backlog is
// worked off without ever holding the writer for long.
net::awaitable<void> retention_loop(app::impl* p)
{
    const auto& cfg = p->cfg.storage;
    net::steady_timer& timer = *p->retention_timer;
    auto& pruned = p->metrics.get_counter("cwhook_events_pruned_total");
    auto& counts = p->counts;
    const auto retention_us = std::chrono::duration_cast<std::chrono::microseconds>(cfg.retention).count();
    const auto batch = std::max<std::size_t>(cfg.retention_batch, 1);
    while (!p->stopping) {
        const std::int64_t cutoff = now_us() - retention_us;
        std::int64_t total = 0;
        // A named callable, not a temporary inside co_await (GCC 12: docs/STYLE.md).
        const auto submit = [p, cutoff, batch](auto done) {
            return p->store->submit_prune(cutoff, batch, std::move(done));
        };
        for (;;) {
            auto r = co_await await_completion<result<store::prune_outcome>>(submit);
            if (!r || !*r) {
                log::warn("retention: prune batch failed; trying again next interval",
                          {{"error", !r ? std::string("storage queue is full") : r->error().message()}});
                break;
            }
            const auto deleted = (*r)->deleted;
            total += deleted;
            counts.failed.fetch_sub((*r)->failed);
            pruned.inc(static_cast<std::uint64_t>(deleted));
            if (deleted < static_cast<std::int64_t>(batch) || p->stopping) {
                break;
            }
            timer.expires_after(std::chrono::milliseconds(20));
            auto [ec] = co_await timer.async_wait(use_tuple);
            if (ec || p->stopping) {
                co_return;
            }
        }
        if (total > 0) {
            log::info("retention: pruned old events", {{"deleted", total}, {"older_than", format_time(cutoff)}});
        }
        timer.expires_after(cfg.retention_interval);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec) {
            co_return;
        }
    }
}

// The callback listener's TLS context: for tls_listen, or for inherited TLS sockets.
boost::system::result<std::shared_ptr<net::ssl::context>, std::string> listener_tls(const app_settings& cfg)
{
    const bool inherited_tls = std::any_of(cfg.server.inherited.begin(), cfg.server.inherited.end(),
                                           [](const auto& in) { return in.tls; });
    if (!cfg.server.tls_listen.empty() || (inherited_tls && !cfg.server.tls_cert.empty())) {
        auto ctx = crypto::make_server_context(cfg.server.tls_cert, cfg.server.tls_key);
        if (!ctx) {
            return "server.tls_cert/tls_key: " + ctx.error().message;
        }
        return *ctx;
    }
    return std::shared_ptr<net::ssl::context>();
}

// The event store, its commit metrics, the readiness probe and the unsettled counts.
boost::system::result<void, std::string> open_store(app::impl* raw)
{
    auto& p = *raw;
    const auto& cfg = p.cfg;
    auto& batch_sizes = p.metrics.get_histogram("cwhook_store_commit_batch_size", {}, metrics::size_buckets());
    auto& commit_seconds =
        p.metrics.get_histogram("cwhook_store_commit_duration_seconds", {}, metrics::latency_buckets());
    auto st = store::event_store::open(cfg.storage, [&batch_sizes, &commit_seconds](std::size_t n, auto took) {
        batch_sizes.observe(static_cast<double>(n));
        commit_seconds.observe(took.count());
    });
    if (!st) {
        return (cfg.storage.backend == store::backend::postgres ? "storage.url: " : "storage.path: ") + st.error();
    }
    p.store = std::move(*st);
    {
        auto& probes = p.metrics.get_counter("cwhook_readiness_probes_total");
        p.readiness = std::make_unique<readiness_cache>([raw, &probes](readiness_cache::done_fn done) {
            probes.inc();
            return raw->store->probe(std::move(done));
        });
    }
    const auto unsettled = p.store->unsettled_at_open();
    p.counts.pending = unsettled.pending;
    p.counts.failed = unsettled.failed;
    return {};
}

// The Manage client when [manage] has REST credentials (the console's subscriptions view uses
// it), with the subscription check (manage.check_interval) and catch-up (catch_up.enabled, with
// types) on it. Nothing is sent to Manage until one of them asks.
boost::system::result<void, std::string> make_manage(app::impl& p)
{
    const auto& cfg = p.cfg;
    const auto missing = manage::missing_keys(cfg.manage);
    if (cfg.manage.check_interval.count() > 0 && missing) {
        return "manage.check_interval is set, but " + *missing;
    }
    auto types = catchup::types_to_read(cfg.catch_up.types, cfg.subscriptions);
    const bool catch_up =
        cfg.catch_up.enabled && !missing && (!types.empty() || !cfg.catch_up.reconcile_deletes.empty());
    if (missing) {
        return {}; // the console's subscriptions view names the missing keys
    }
    auto manage_tls = crypto::make_client_context(cfg.manage.ca_file);
    if (!manage_tls) {
        return "manage.ca_file: " + manage_tls.error().message;
    }
    p.manage_client = std::make_unique<client::https_client>(p.ioc.get_executor(), *manage_tls, &p.metrics);
    p.manage_api = std::make_unique<manage::api>(*p.manage_client, cfg.manage);
    if (cfg.manage.check_interval.count() > 0) {
        p.checker = std::make_unique<subscription_check>(net::make_strand(p.ioc), *p.manage_api, cfg.subscriptions,
                                                         cfg.manage.check_interval, cfg.manage.auto_heal, p.metrics);
    }
    if (catch_up) {
        auto settings = cfg.catch_up;
        settings.types = std::move(types);
        const auto instance = catchup::default_instance_name();
        auto strand = net::make_strand(p.ioc);
        p.catch_up = std::make_unique<catchup::engine>(strand, *p.store, *p.manage_api, settings, cfg.manage.company_id,
                                                       instance, p.metrics);
        p.catch_up_service = std::make_unique<catchup::service>(strand, *p.store, *p.catch_up, settings, instance);
    }
    return {};
}

// POST callback_path, /healthz and /readyz; 413s on the callback path reach the rejections.
std::shared_ptr<http::router> callback_routes(app::impl* raw)
{
    const auto& cfg = raw->cfg;
    auto routes = std::make_shared<http::router>();
    routes->add(bhttp::verb::post, cfg.callback_path,
                [raw](http::request& req) { return raw->pipeline->handle(req); }, true);
    routes->set_rejection_hook([raw](http::request& req, unsigned status, std::string_view reason) {
        if (req.path() == raw->cfg.callback_path || req.path().starts_with(raw->cfg.callback_path + "/")) {
            if (status == 413) {
                raw->pipeline->record_rejection(req, refusal::body_too_large, "body exceeds server.max_body_bytes");
            }
        }
    });
    raw->metrics.get_gauge("cwhook_build_info", "version=\"" CWHOOK_VERSION "\"").set(1);
    for (const auto* result : {"applied", "restart_needed", "rejected"}) {
        raw->metrics.get_counter("cwhook_reloads_total", fmt::format("result=\"{}\"", result));
    }

    routes->add(bhttp::verb::get, "/healthz", [](http::request&) -> net::awaitable<http::response> {
        co_return http::json_response(200, R"({"status":"ok"})");
    });
    routes->add(bhttp::verb::get, "/readyz", [raw](http::request&) -> net::awaitable<http::response> {
        if (raw->stopping) {
            co_return http::error_response(503, "shutting_down");
        }
        // Cached for a second and shared by concurrent requests (readiness.hpp): a probe is a
        // job in the writer's queue, and each one would split a group-commit batch.
        auto r = co_await await_completion<result<void>>([raw](auto done) {
            raw->readiness->check(std::move(done));
            return true;
        });
        if (!r || !*r) {
            co_return http::error_response(503, "storage_unavailable",
                                           !r ? std::string("storage queue is full") : r->error().message());
        }
        co_return http::json_response(200, R"({"status":"ready"})");
    });
    return routes;
}

// POST /api/destinations/{name}/test: the configuration in force names the destination (a
// reload changes the list), and it is sent as the forwarder sends, with forward.ca_file.
net::awaitable<std::optional<forward::ping_result>> test_destination(app::impl* p, std::string name)
{
    std::optional<forward::destination> d;
    {
        std::lock_guard lock(p->in_force_mutex);
        for (const auto& x : p->in_force.destinations) {
            if (x.name == name) {
                d = x;
            }
        }
    }
    if (!d) {
        co_return std::nullopt;
    }
    co_return co_await forward::ping(*p->forward_client, std::move(*d), now_us());
}

// The admin API on its own listener, with /metrics, behind its token.
boost::system::result<void, std::string> start_admin(app::impl* raw)
{
    auto& p = *raw;
    const auto& cfg = p.cfg;
    if (cfg.admin.listen.empty()) {
        return {};
    }
    // A token always, loopback included: any local process, and any web page the operator
    // opens, can reach a loopback port.
    p.admin_token = cfg.admin.token;
    if (p.admin_token.empty()) {
        const auto file = admin_token_file(cfg.storage.path);
        auto token = load_or_create_admin_token(file);
        if (!token) {
            return "admin token: " + token.error() + " (or set admin.token_file)";
        }
        p.admin_token = std::move(*token);
        log::info("admin token (none configured) is in a file; `cwhook admin token` prints it", {{"file", file}});
    }
    auto admin = admin_api::create(cfg.admin, p.admin_token, cfg.storage, p.ioc, *p.client, p.metrics);
    if (!admin) {
        return admin.error();
    }
    p.admin = std::move(*admin);
    auto admin_routes = std::make_shared<http::router>();
    p.admin->set_reverifier(
        *p.keys, p.policy, cfg.verify.key_fetch_timeout + cfg.verify.key_refetch_interval + cfg.verify.answer_deadline);
    p.admin->set_destination_test([raw](std::string name) { return test_destination(raw, std::move(name)); });
    const auto missing = manage::missing_keys(cfg.manage);
    p.admin->set_subscriptions(p.manage_api.get(), cfg.subscriptions,
                               missing ? "[manage] has no REST credentials (" + *missing + ")" : std::string());
    p.admin->add_routes(*admin_routes);
    // Prometheus scrape endpoint (text format 0.0.4), behind the admin gate and token.
    admin_routes->add(bhttp::verb::get, "/metrics", [raw](http::request&) -> net::awaitable<http::response> {
        auto res = http::json_response(200, app::render_metrics(*raw));
        res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        co_return res;
    });
    p.admin_server =
        std::make_unique<http::server>(p.ioc, admin_http_settings(cfg), admin_routes, nullptr, p.admin_server_metrics);
    p.admin_server->supervise_accept("admin_accept", p.fatal_policy());
    if (auto r = p.admin_server->start(); !r) {
        // The server names its own key; this listener's is admin.listen.
        std::string why = r.error();
        constexpr std::string_view own = "server.listen: ";
        if (why.starts_with(own)) {
            why.erase(0, own.size());
        }
        return "admin.listen: " + why;
    }
    p.admin->set_listener(p.admin_server->plain_endpoints());
    return {};
}

} // namespace

boost::system::result<std::unique_ptr<app>, std::string> app::create(app_settings s)
{
    const unsigned threads = worker_threads(s.server.threads);
    auto policy = key_url_policy::make(s.verify.allowed_key_hosts, trusted_companies(s));
    if (!policy) {
        return "verify.allowed_key_hosts/companies: " + policy.error();
    }
    auto p = std::make_unique<impl>(std::move(s), threads, std::move(*policy));
    auto& cfg = p->cfg;
    auto server_tls = listener_tls(cfg);
    if (!server_tls) {
        return server_tls.error();
    }
    auto client_ctx = crypto::make_client_context(cfg.verify.ca_file);
    if (!client_ctx) {
        return "verify.ca_file: " + client_ctx.error().message;
    }
    p->client_tls = *client_ctx;

    if (auto r = open_store(p.get()); !r) {
        return r.error();
    }
    p->client = std::make_unique<client::https_client>(p->ioc.get_executor(), p->client_tls, &p->metrics);
    p->keys = std::make_unique<key_cache>(
        p->ioc.get_executor(), key_cache::https_fetcher(*p->client, p->verify, p->metrics), cfg.verify, p->metrics);
    p->pipeline = std::make_unique<ingest>(p->verify, p->policy, *p->keys, *p->store, p->counts, p->metrics);
    p->rever = std::make_unique<reverifier>(net::make_strand(p->ioc), p->verify, p->policy, *p->keys, *p->store,
                                            p->counts, p->metrics);

    // Forwarding: the destinations are in the database before the first event is accepted,
    // so that every acknowledged event gets its deliveries.
    auto forward_tls = crypto::make_client_context(cfg.forward.ca_file);
    if (!forward_tls) {
        return "forward.ca_file: " + forward_tls.error().message;
    }
    p->forward_client = std::make_unique<client::https_client>(p->ioc.get_executor(), *forward_tls, &p->metrics);
    p->forwarder =
        std::make_unique<forward::forwarder>(p->ioc.get_executor(), *p->store, *p->forward_client, p->metrics);
    if (auto r = p->forwarder->configure(cfg.forward, cfg.destinations); !r) {
        return "destinations: " + r.error();
    }
    // Forwardable events: those stored verified, and unverified ones when verify.mode = "off".
    p->store->set_forward_unverified(cfg.verify.mode == verify_mode::off);

    // A callback that arrives after its synthesized twin is linked to it, not forwarded again.
    p->store->set_entity_updated_reader([](std::string_view body) { return json::entity_last_updated(body); });
    if (auto r = make_manage(*p); !r) {
        return r.error();
    }
    auto routes = callback_routes(p.get());
    p->server = std::make_unique<http::server>(p->ioc, cfg.server, routes, *server_tls, p->metrics);
    p->server->supervise_accept("accept", p->fatal_policy());
    if (auto r = p->server->start(); !r) {
        return r.error();
    }
    if (auto r = start_admin(p.get()); !r) {
        return r.error();
    }
    // The store has one listener slot, called on its writer thread after each commit that made
    // events forwardable: the forwarder's lanes and the feed's long-polls wake from it.
    p->store->on_forwardable([fwd = p->forwarder.get(), admin = p->admin.get()] {
        fwd->wake();
        if (admin != nullptr) {
            admin->notify_feed();
        }
    });
    p->retention_timer = std::make_unique<net::steady_timer>(p->ioc);
    return std::unique_ptr<app>(new app(std::move(p)));
}

app::app(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

app::~app()
{
    shutdown();
}

void app::start(fatal_fn on_fatal)
{
    auto& p = *impl_;
    p.on_fatal = std::move(on_fatal);
    const unsigned n = worker_threads(p.cfg.server.threads);
    p.rever->start();
    p.forwarder->start();
    if (p.cfg.storage.retention.count() > 0) {
        task::policy retention;
        retention.metrics = &p.metrics;
        task::spawn_supervised(
            net::make_strand(p.ioc), "retention", [raw = &p] { return retention_loop(raw); }, std::move(retention));
    }
    if (p.checker) {
        p.checker->start();
    }
    if (p.catch_up_service) {
        p.catch_up_service->start();
    }
    for (unsigned i = 0; i < n; ++i) {
        p.threads.emplace_back([&p] {
            pthread_setname_np(pthread_self(), "cwhook-io");  // shown by top -H, perf, gdb
            p.ioc.run();
        });
    }
    log::info("cwhook started", {{"threads", n},
                                 {"mode", p.cfg.verify.mode == verify_mode::enforce  ? "enforce"
                                          : p.cfg.verify.mode == verify_mode::report ? "report"
                                                                                      : "off"},
                                 {"database", store::describe(p.cfg.storage)}});
    for (const auto& ep : admin_endpoints()) {
        log::info("admin listening (http)", {{"address", ep.address().to_string()}, {"port", ep.port()}});
    }
    if (p.cfg.verify.mode != verify_mode::off && !p.policy.has_companies()) {
        log::warn("no Manage company is configured: every callback is refused with 403 company_not_allowed; "
                  "set verify.companies (or manage.company_id) to the company ids whose callbacks you receive");
    }
}

bool app::shutdown()
{
    auto& p = *impl_;
    if (p.stopping.exchange(true)) {
        wait();
        std::lock_guard lock(p.mutex);
        return p.clean;
    }
    bool clean = true;
    if (!p.threads.empty() && p.cfg.server.drain_grace.count() > 0) {
        // /readyz already says 503 (stopping); everything else is still served. A second
        // signal ends the wait at once (serve.cpp).
        log::info("shutting down: /readyz answers 503; listeners close after the grace",
                  {{"grace", format_duration(p.cfg.server.drain_grace)}});
        std::this_thread::sleep_for(p.cfg.server.drain_grace);
    }
    if (!p.threads.empty()) {
        std::promise<bool> drained;
        auto fut = drained.get_future();
        p.server->shutdown([&drained](bool ok) { drained.set_value(ok); });
        std::promise<bool> admin_drained;
        auto admin_fut = admin_drained.get_future();
        if (p.admin_server) {
            p.admin->end_feed_waits(); // a long-poll would hold the drain for up to its wait
            p.admin_server->shutdown([&admin_drained](bool ok) { admin_drained.set_value(ok); });
        } else {
            admin_drained.set_value(true);
        }
        clean = fut.get();
        admin_fut.get();
    }
    if (p.checker) {
        p.checker->stop();
    }
    if (p.catch_up_service) {
        p.catch_up_service->stop(); // records the clean stop: the next start knows it missed nothing before it
    }
    p.rever->stop();
    p.forwarder->stop();
    p.store->stop();
    p.work.reset();
    p.ioc.stop();
    for (auto& t : p.threads) {
        t.join();
    }
    p.threads.clear();
    log::info("cwhook stopped", {{"clean", clean ? "yes" : "no"}});
    {
        std::lock_guard lock(p.mutex);
        p.finished = true;
        p.clean = clean;
    }
    p.cv.notify_all();
    return clean;
}

void app::wait()
{
    std::unique_lock lock(impl_->mutex);
    impl_->cv.wait(lock, [this] { return impl_->finished; });
}

bool app::responsive(std::chrono::milliseconds timeout)
{
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    net::post(impl_->ioc, [done] { done->set_value(); });
    return fut.wait_for(timeout) == std::future_status::ready;
}

namespace {

std::string joined(const std::vector<std::string>& keys)
{
    std::string out;
    for (const auto& k : keys) {
        out += (out.empty() ? "" : ", ") + k;
    }
    return out;
}

} // namespace

boost::system::result<void, std::string> app::reload(const app_settings& in_force,
                                                     const std::vector<std::string>& restart_needed)
{
    auto& p = *impl_;
    auto r = apply(in_force);
    if (!r) {
        p.metrics.get_counter("cwhook_reloads_total", "result=\"rejected\"").inc();
        return r;
    }
    for (const auto& key : p.restart_shown) {
        p.metrics.get_gauge("cwhook_restart_needed", fmt::format("key=\"{}\"", key)).set(0);
    }
    for (const auto& key : restart_needed) {
        p.metrics.get_gauge("cwhook_restart_needed", fmt::format("key=\"{}\"", key)).set(1);
    }
    p.restart_shown = restart_needed;
    p.metrics.get_counter("cwhook_reloads_total",
                          restart_needed.empty() ? "result=\"applied\"" : "result=\"restart_needed\"")
        .inc();
    if (!restart_needed.empty()) {
        log::warn("changed settings need a restart; running values kept", {{"keys", joined(restart_needed)}});
    }
    return {};
}

void app::reload_rejected()
{
    impl_->metrics.get_counter("cwhook_reloads_total", "result=\"rejected\"").inc();
}

boost::system::result<void, std::string> app::apply(const app_settings& next)
{
    auto& p = *impl_;
    if (p.stopping) {
        return std::string("shutting down");
    }
    auto policy = key_url_policy::make(next.verify.allowed_key_hosts, trusted_companies(next));
    if (!policy) {
        return "verify.allowed_key_hosts/companies: " + policy.error();
    }
    std::shared_ptr<net::ssl::context> server_tls;
    if (!next.server.tls_listen.empty() || !p.server->tls_endpoints().empty()) {
        auto ctx = crypto::make_server_context(next.server.tls_cert, next.server.tls_key);
        if (!ctx) {
            return "server.tls_cert/tls_key: " + ctx.error().message;
        }
        server_tls = *ctx;
    }
    // Everything validated: apply. First the two steps that can still fail: the destinations
    // (recorded in the database, which may be down: then nothing is applied and the reload is
    // rejected, so it never counts as applied with the old destinations still in force), and
    // the listeners (a port taken: the destinations go back to the ones in force).
    if (auto r = p.forwarder->configure(next.forward, next.destinations); !r) {
        return "destinations: " + r.error();
    }
    std::shared_ptr<net::ssl::context> previous_tls;
    if (server_tls) {
        previous_tls = p.server->set_tls_context(server_tls);
    }
    if (auto r = p.server->rebind(next.server.listen, next.server.tls_listen); !r) {
        if (server_tls) {
            p.server->set_tls_context(previous_tls);
        }
        forward::settings forward_before;
        std::vector<forward::destination> destinations_before;
        {
            std::lock_guard lock(p.in_force_mutex);
            forward_before = p.in_force.forward;
            destinations_before = p.in_force.destinations;
        }
        if (destinations_before != next.destinations) {
            log::warn("forward: the reload failed after its destinations were recorded; the previous ones are "
                      "restored (rows the reload cancelled stay cancelled: cwhook deliveries retry)");
        }
        if (auto back = p.forwarder->configure(forward_before, destinations_before); !back) {
            log::error("forward: the previous destinations could not be restored", {{"error", back.error()}});
        }
        return r.error();
    }
    if (server_tls) {
        log::info("TLS certificate reloaded", {{"cert", next.server.tls_cert}});
    }
    p.policy = *policy;
    p.server->set_limits(next.server);
    if (p.admin_server) {
        p.admin_server->set_limits(admin_http_settings(next));
    }
    p.verify.set(next.verify);
    p.keys->set_settings(next.verify);
    p.store->set_forward_unverified(next.verify.mode == verify_mode::off);
    std::lock_guard lock(p.in_force_mutex);
    const auto inherited = std::move(p.in_force.server.inherited);
    p.in_force = next;
    p.in_force.server.inherited = inherited;  // runtime, not configuration
    return {};
}

std::vector<net::ip::tcp::endpoint> app::plain_endpoints() const { return impl_->server->plain_endpoints(); }
std::vector<net::ip::tcp::endpoint> app::tls_endpoints() const { return impl_->server->tls_endpoints(); }
std::vector<net::ip::tcp::endpoint> app::admin_endpoints() const
{
    return impl_->admin_server ? impl_->admin_server->plain_endpoints() : std::vector<net::ip::tcp::endpoint>{};
}
metrics::registry& app::metrics() noexcept { return impl_->metrics; }
const std::string& app::admin_token() const noexcept { return impl_->admin_token; }

std::string app::render_metrics() { return render_metrics(*impl_); }

std::string app::render_metrics(impl& p)
{
    p.metrics.get_gauge("cwhook_store_queue_depth").set(static_cast<std::int64_t>(p.store->queue_depth()));
    p.metrics.get_gauge("cwhook_pending_events").set(p.counts.pending.load());
    p.metrics.get_gauge("cwhook_failed_events").set(p.counts.failed.load());
    return p.metrics.render();
}
app_settings app::settings() const
{
    std::lock_guard lock(impl_->in_force_mutex);
    return impl_->in_force;
}

} // namespace cwhook::callback
