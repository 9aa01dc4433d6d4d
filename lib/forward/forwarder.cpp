// Design: see forwarder.hpp. Each lane runs on the forwarder's strand, so a lane's breaker,
// bucket and counters need no locks. A lane claims at most its free request slots, so a row
// is leased only while a request for it can start at once (or after its rate wait, which the
// lease covers). Results go back to the outbox through the store's queue; a result that
// cannot be recorded (the database is down) is given up: the lease runs out and the delivery
// is sent again, which at-least-once allows.
#include "forward/forwarder.hpp"

#include "core/await.hpp"
#include "core/log.hpp"
#include "crypto/standard_webhooks.hpp"
#include "forward/breaker.hpp"
#include "forward/message.hpp"
#include "forward/rate_limit.hpp"
#include "forward/schedule.hpp"
#include "store/outbox.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <random>

namespace cwhook::forward {

namespace net = boost::asio;
using store::claimed_delivery;
using store::delivery_result;
using store::delivery_state;

namespace {

// Seconds a delivery waited from becoming forwardable to its successful attempt.
const std::vector<double> lag_bounds = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000};

circuit_breaker::time_point point(std::int64_t now_us)
{
    return circuit_breaker::time_point(std::chrono::microseconds(now_us));
}

std::string labels(const std::string& destination)
{
    return fmt::format("destination=\"{}\"", destination);
}

// The cause of a failed attempt as a metric label: the HTTP status, or the client's reason.
std::string failure_label(const client::fetch_result& r)
{
    if (r) {
        return std::to_string(r->status);
    }
    switch (static_cast<client::errc>(r.error().code.value())) {
    case client::errc::timed_out: return "timeout";
    case client::errc::connect_failed: return "connect";
    case client::errc::resolve_failed: return "resolve";
    case client::errc::certificate_rejected:
    case client::errc::tls_handshake_failed:
    case client::errc::tls_setup_failed: return "tls";
    default: return "error";
    }
}

} // namespace

struct lane {
    lane(const net::any_io_executor& ex, metrics::registry& m, const std::string& name)
        : timer(ex), attempts(m.get_counter("cwhook_forward_attempts_total", labels(name))),
          successes(m.get_counter("cwhook_forward_successes_total", labels(name))),
          dead(m.get_counter("cwhook_forward_dead_total", labels(name))),
          lag(m.get_histogram("cwhook_forward_lag_seconds", labels(name), lag_bounds)),
          circuit(m.get_gauge("cwhook_destination_circuit_open", labels(name)))
    {
    }

    destination dest;
    std::string key;      // the secret's key bytes
    client::request base; // the URL as a request
    retry_schedule retries;
    circuit_breaker breaker{0, std::chrono::milliseconds(1)};
    token_bucket bucket{0};
    std::size_t in_flight = 0;
    bool removed = false;
    bool woken = false;
    net::steady_timer timer;
    metrics::counter& attempts;
    metrics::counter& successes;
    metrics::counter& dead;
    metrics::histogram& lag;
    metrics::gauge& circuit;
};

struct forwarder::state : std::enable_shared_from_this<forwarder::state> {
    state(net::any_io_executor ex, store::event_store& s, client::https_client& c, metrics::registry& m, timing t)
        : strand(net::make_strand(ex)), store(s), client(c), registry(m), time(std::move(t)), stats_timer(strand)
    {
        if (!time.now_us) {
            time.now_us = [] {
                return std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                    .count();
            };
        }
        if (!time.random) {
            time.random = [rng = std::make_shared<std::minstd_rand>(std::random_device{}())] {
                return std::uniform_real_distribution<double>(0.0, 1.0)(*rng);
            };
        }
    }

    net::awaitable<void> sleep(net::steady_timer& timer, std::chrono::milliseconds d)
    {
        if (time.sleep) {
            co_await time.sleep(d);
            co_return;
        }
        timer.expires_after(d);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }

    void apply(const settings& s, const std::vector<destination>& destinations);
    void spawn(const std::shared_ptr<lane>& l);
    net::awaitable<void> run_lane(std::shared_ptr<lane> l);
    net::awaitable<void> send(std::shared_ptr<lane> l, claimed_delivery c);
    net::awaitable<void> refresh_stats();
    void wake_lane(lane& l)
    {
        l.woken = true;
        l.timer.cancel();
    }

    net::strand<net::any_io_executor> strand;
    store::event_store& store;
    client::https_client& client;
    metrics::registry& registry;
    timing time;
    settings cfg;                                       // strand only
    std::map<std::string, std::shared_ptr<lane>> lanes; // strand only
    bool started = false;                               // strand only
    std::atomic<bool> stopped{false};
    std::atomic<std::size_t> on_wire{0};
    net::steady_timer stats_timer;
    bool store_failing = false; // strand only: a claim failure was logged
};

void forwarder::state::apply(const settings& s, const std::vector<destination>& destinations)
{
    cfg = s;
    std::map<std::string, std::shared_ptr<lane>> next;
    for (const destination& d : destinations) {
        auto it = lanes.find(d.name);
        std::shared_ptr<lane> l;
        const bool fresh = it == lanes.end();
        if (fresh) {
            l = std::make_shared<lane>(strand, registry, d.name);
        } else {
            l = it->second;
            lanes.erase(it);
        }
        const bool limits_changed = fresh || l->dest.rate != d.rate;
        l->dest = d;
        // The configuration checked both: an entry that fails here sends nothing (and says so).
        auto key = crypto::webhook_key(d.secret);
        auto base = client::request_for_url(d.url);
        if (!key || !base) {
            log::error("forward: destination not usable", {{"destination", d.name}});
        }
        l->key = key ? std::move(*key) : std::string();
        l->base = base ? std::move(*base) : client::request{};
        l->retries = d.retries.empty() ? s.retries : d.retries;
        if (fresh) {
            l->breaker = circuit_breaker(s.breaker_threshold, s.breaker_probe_interval);
        }
        if (limits_changed) {
            l->bucket = token_bucket(d.rate);
        }
        next.emplace(d.name, l);
        if (fresh && started) {
            spawn(l);
        } else if (!fresh) {
            wake_lane(*l);
        }
    }
    for (auto& [name, l] : lanes) {
        l->removed = true; // its loop ends at its next turn; requests in flight finish
        wake_lane(*l);
    }
    lanes = std::move(next);
}

void forwarder::state::spawn(const std::shared_ptr<lane>& l)
{
    net::co_spawn(strand, run_lane(l), [name = l->dest.name](const std::exception_ptr& e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("forward: lane ended by an exception", {{"destination", name}, {"error", ex.what()}});
            }
        }
    });
}

net::awaitable<void> forwarder::state::run_lane(std::shared_ptr<lane> l)
{
    auto self = shared_from_this();
    while (!stopped.load() && !l->removed) {
        const std::int64_t now = time.now_us();
        std::size_t want = l->dest.concurrency > l->in_flight ? l->dest.concurrency - l->in_flight : 0;
        bool probe = false;
        if (want > 0 && l->breaker.open()) {
            probe = l->breaker.allow(point(now));
            want = probe ? 1 : 0;
        }
        std::vector<claimed_delivery> rows;
        if (want > 0) {
            const auto rate_wait = l->dest.rate > 0
                                       ? std::chrono::duration<double>(static_cast<double>(want) / l->dest.rate)
                                       : std::chrono::duration<double>(0);
            const auto lease =
                std::chrono::duration_cast<std::chrono::microseconds>(l->dest.timeout + cfg.lease_margin + rate_wait);
            // A claim counts as on the wire while it runs: rows it leases are about to be sent.
            ++on_wire;
            auto claimed = co_await await_completion<result<std::vector<claimed_delivery>>>([&](auto done) {
                return store.claim_deliveries(l->dest.name, l->dest.order == ordering::entity, now, want,
                                              now + lease.count(), std::move(done));
            });
            --on_wire;
            if (claimed && *claimed) {
                rows = std::move(**claimed);
                store_failing = false;
            } else if (!store_failing) {
                store_failing = true;
                log::warn("forward: cannot claim deliveries; retrying", {{"destination", l->dest.name}});
            }
        }
        if (probe && rows.empty()) {
            l->breaker.release();
        }
        for (auto& c : rows) {
            ++l->in_flight;
            ++on_wire; // from the claim: the request starts at once, on this strand's next turn
            net::co_spawn(strand, send(l, std::move(c)), net::detached);
        }
        if (want > 0 && rows.size() == want) {
            continue; // all slots filled: more may be due once one frees (send() wakes the lane)
        }
        if (l->woken) {
            l->woken = false;
            if (!rows.empty() || want == 0) {
                continue;
            }
        }
        auto wait = cfg.poll_interval;
        if (l->breaker.open()) {
            wait = std::min(wait, cfg.breaker_probe_interval);
        }
        co_await sleep(l->timer, wait);
        l->woken = false;
    }
}

net::awaitable<void> forwarder::state::send(std::shared_ptr<lane> l, claimed_delivery c)
{
    auto self = shared_from_this();
    if (!l->bucket.unlimited()) {
        const auto wait = l->bucket.take(point(time.now_us()));
        if (wait.count() > 0) {
            // Waiting for its turn is not being on the wire (the lease covers the wait).
            --on_wire;
            net::steady_timer timer(strand);
            co_await sleep(timer, std::chrono::ceil<std::chrono::milliseconds>(wait));
            ++on_wire;
        }
    }
    outgoing o;
    o.event_id = c.event_id;
    o.webhook_id = stable_webhook_id(c.dedupe_key);
    o.type = c.type;
    o.action = c.action;
    o.entity_id = c.entity_id;
    o.company_id = c.company_id;
    o.status = c.status;
    o.received_at_us = c.received_at_us;
    o.content_type = c.content_type;
    o.body = std::move(c.body);
    o.source = std::string(store::to_string(c.source));
    const std::int64_t started = time.now_us();
    const auto attempt = static_cast<std::size_t>(c.attempts + 1);
    const auto req = signed_request(l->base, l->dest, l->key, o, attempt, started / 1'000'000);
    client::options opt;
    opt.timeout = l->dest.timeout;
    opt.connect_timeout = l->dest.timeout;
    opt.handshake_timeout = l->dest.timeout;
    opt.exchange_timeout = l->dest.timeout;
    opt.max_response_bytes = std::size_t{64} * 1024;
    opt.allow_private = true; // destinations are the operator's own, often internal, services
    l->attempts.inc();
    const auto r = co_await client.fetch(req, opt);
    const std::int64_t finished = time.now_us();

    delivery_result res;
    res.id = c.id;
    res.lease_until_us = c.lease_until_us;
    res.at_us = started;
    res.latency_us = std::max<std::int64_t>(finished - started, 0);
    res.http_status = r ? static_cast<int>(r->status) : 0;
    const bool ok = r && r->status >= 200 && r->status < 300;
    if (ok) {
        res.state = delivery_state::done;
        l->breaker.success();
        l->successes.inc();
        l->lag.observe(static_cast<double>(std::max<std::int64_t>(finished - c.created_at_us, 0)) / 1e6);
    } else {
        res.error = r ? fmt::format("HTTP {}", r->status) : r.error().detail;
        registry
            .get_counter("cwhook_forward_failures_total",
                         fmt::format("destination=\"{}\",status=\"{}\"", l->dest.name, failure_label(r)))
            .inc();
        const bool was_open = l->breaker.open();
        l->breaker.failure(point(finished));
        if (!was_open && l->breaker.open()) {
            log::warn("forward: destination failing; circuit open, probing",
                      {{"destination", l->dest.name}, {"failures", l->breaker.consecutive_failures()}});
        }
        if (r && r->status == 410) {
            log::warn("forward: destination answered 410 Gone; paused until resumed", {{"destination", l->dest.name}});
            store.pause_destination(l->dest.name, "gone", finished, {});
        }
        std::optional<std::chrono::milliseconds> retry_after;
        if (r && (r->status == 429 || r->status == 503)) {
            retry_after = client::parse_retry_after(r->header("Retry-After"));
        }
        const auto decision = after_failure(l->retries, static_cast<std::size_t>(c.tries + 1), cfg.jitter,
                                            time.random(), retry_after, cfg.max_retry_after);
        if (decision.dead) {
            res.state = delivery_state::dead;
            l->dead.inc();
            log::warn("forward: delivery dead after its last attempt", {{"destination", l->dest.name},
                                                                        {"delivery", c.id},
                                                                        {"event", c.event_id},
                                                                        {"attempts", c.attempts + 1},
                                                                        {"error", res.error}});
        } else {
            res.state = delivery_state::failing;
            res.next_attempt_at_us =
                finished + std::chrono::duration_cast<std::chrono::microseconds>(decision.delay).count();
        }
    }
    l->circuit.set(l->breaker.open() ? 1 : 0);
    // Off the wire once its result is queued: the store runs the queue in order, so the lane's
    // next claim cannot see the row before its result.
    auto recorded = co_await await_completion<result<void>>([&](auto done) {
        const bool queued = store.submit_delivery_results({res}, std::move(done));
        --on_wire;
        return queued;
    });
    if (!recorded || !*recorded) {
        log::warn("forward: cannot record a delivery's result; it is sent again after its lease",
                  {{"destination", l->dest.name}, {"delivery", c.id}});
    }
    --l->in_flight;
    wake_lane(*l);
}

net::awaitable<void> forwarder::state::refresh_stats()
{
    auto self = shared_from_this();
    while (!stopped.load()) {
        auto rows = co_await await_completion<result<std::vector<store::destination_status>>>(
            [&](auto done) { return store.read_destinations(std::move(done)); });
        if (rows && *rows) {
            const std::int64_t now = time.now_us();
            for (const auto& d : **rows) {
                if (!d.configured) {
                    continue;
                }
                const auto l = labels(d.name);
                registry.get_gauge("cwhook_outbox_depth", l).set(d.pending + d.failing);
                registry.get_gauge("cwhook_outbox_dead", l).set(d.dead);
                registry.get_gauge("cwhook_outbox_oldest_seconds", l)
                    .set(d.oldest_due_created_at_us
                             ? std::max<std::int64_t>(now - *d.oldest_due_created_at_us, 0) / 1'000'000
                             : 0);
                registry.get_gauge("cwhook_destination_paused", l).set(d.paused ? 1 : 0);
            }
        }
        co_await sleep(stats_timer, std::max(cfg.poll_interval * 5, std::chrono::milliseconds(1000)));
    }
}

forwarder::forwarder(net::any_io_executor ex, store::event_store& store, client::https_client& client,
                     metrics::registry& metrics, timing t)
    : state_(std::make_shared<state>(std::move(ex), store, client, metrics, std::move(t)))
{
}

forwarder::~forwarder()
{
    stop();
}

boost::system::result<void, std::string> forwarder::configure(const settings& s,
                                                              const std::vector<destination>& destinations)
{
    std::vector<store::destination_route> routes;
    routes.reserve(destinations.size());
    for (const auto& d : destinations) {
        store::destination_route r;
        r.name = d.name;
        r.types = d.types;
        r.actions = d.actions;
        routes.push_back(std::move(r));
    }
    auto done = std::make_shared<std::promise<result<store::sync_outcome>>>();
    auto future = done->get_future();
    if (!state_->store.sync_destinations(std::move(routes), state_->time.now_us(),
                                         [done](result<store::sync_outcome> r) { done->set_value(std::move(r)); })) {
        return std::string("the store is not accepting work");
    }
    auto synced = future.get();
    if (!synced) {
        return fmt::format("cannot record the destinations in the database: {}", synced.error().message());
    }
    if (synced->cancelled > 0) {
        log::warn("forward: destinations left the configuration; their undelivered rows are cancelled (retry them "
                  "with cwhook deliveries retry)",
                  {{"cancelled", synced->cancelled}});
    }
    net::post(state_->strand, [self = state_, s, destinations] { self->apply(s, destinations); });
    return {};
}

std::size_t forwarder::requests_in_flight() const noexcept
{
    return state_->on_wire.load();
}

void forwarder::start()
{
    net::post(state_->strand, [self = state_] {
        if (self->started || self->stopped.load()) {
            return;
        }
        self->started = true;
        for (auto& [name, l] : self->lanes) {
            self->spawn(l);
        }
        net::co_spawn(self->strand, self->refresh_stats(), net::detached);
    });
}

void forwarder::wake()
{
    net::post(state_->strand, [self = state_] {
        for (auto& [name, l] : self->lanes) {
            self->wake_lane(*l);
        }
    });
}

void forwarder::stop()
{
    if (state_->stopped.exchange(true)) {
        return;
    }
    net::post(state_->strand, [self = state_] {
        for (auto& [name, l] : self->lanes) {
            self->wake_lane(*l);
        }
        self->stats_timer.cancel();
    });
}

} // namespace cwhook::forward
