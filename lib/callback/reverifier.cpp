#include "callback/reverifier.hpp"

#include "core/await.hpp"
#include "core/log.hpp"
#include "core/task.hpp"
#include "crypto/signature.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <random>

namespace cwhook::callback {

namespace net = boost::asio;
using store::event_status;

namespace {

constexpr auto resync_interval = std::chrono::minutes(1);

} // namespace

struct reverifier::state : std::enable_shared_from_this<reverifier::state> {
    net::any_io_executor ex;
    const live_value<verify_settings>& settings;  // read at each use: a reload applies at once
    const key_url_policy& policy;
    key_cache& keys;
    store::event_store& store;
    status_counts& counts;
    metrics::registry& registry;
    metrics::counter& verified;
    metrics::counter& failed;
    metrics::counter& retried;
    metrics::gauge& pending_gauge;
    metrics::gauge& failed_gauge;
    net::steady_timer timer;
    timing time;
    std::atomic<bool> stopped{false};
    std::minstd_rand rng{std::random_device{}()};

    state(net::any_io_executor e, const live_value<verify_settings>& c, const key_url_policy& p, key_cache& k,
          store::event_store& s, status_counts& t, metrics::registry& m, timing tm)
        : ex(std::move(e)), settings(c), policy(p), keys(k), store(s), counts(t), registry(m),
          verified(m.get_counter("cwhook_reverify_total", "outcome=\"verified\"")),
          failed(m.get_counter("cwhook_reverify_total", "outcome=\"failed\"")),
          retried(m.get_counter("cwhook_reverify_total", "outcome=\"retry\"")),
          pending_gauge(m.get_gauge("cwhook_pending_events")), failed_gauge(m.get_gauge("cwhook_failed_events")),
          timer(ex), time(std::move(tm))
    {
        if (!time.now_us) {
            time.now_us = [] {
                return std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                    .count();
            };
        }
        if (!time.sleep) {
            time.sleep = [this](std::chrono::milliseconds d) { return sleep_on_timer(d); };
        }
    }

    std::int64_t now_us() const { return time.now_us(); }

    net::awaitable<void> sleep_on_timer(std::chrono::milliseconds d)
    {
        timer.expires_after(d);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }

    // min * 2^attempts, capped, with +-20% jitter so a recovering key server is not hit by
    // every pending row in the same millisecond.
    std::chrono::microseconds backoff(std::int64_t attempts)
    {
        const auto cfg = settings.get();
        const auto min = std::chrono::duration_cast<std::chrono::microseconds>(cfg->pending_retry_min).count();
        const auto max = std::chrono::duration_cast<std::chrono::microseconds>(cfg->pending_retry_max).count();
        const auto shift = std::min<std::int64_t>(attempts, 30);
        const auto base = std::min<std::int64_t>(max, min << shift);
        std::uniform_real_distribution<double> jitter(0.8, 1.2);
        return std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(base) * jitter(rng)));
    }

    net::awaitable<store::status_update> decide(const store::pending_event& row)
    {
        store::status_update u;
        u.id = row.id;
        u.from = event_status::pending;
        // The background has time: a fetch and a refetch interval, whatever the answer deadline.
        const std::shared_ptr<const verify_settings> cfg = settings.get();
        const auto wait = cfg->key_fetch_timeout + cfg->key_refetch_interval + cfg->answer_deadline;
        const auto v = co_await recheck(keys, policy, row, wait);
        u.verify_reason = std::string(v.reason());
        switch (v.what) {
        case key_verdict::kind::verified: u.status = event_status::verified; break;
        case key_verdict::kind::bad_signature:
        case key_verdict::kind::no_key:
        case key_verdict::kind::refused: u.status = event_status::failed; break;
        case key_verdict::kind::transient:
        case key_verdict::kind::busy: {
            const auto age = std::chrono::microseconds(now_us() - row.received_at_us);
            if (age > cfg->pending_max_age) {
                u.status = event_status::failed;
                u.verify_reason = "key_fetch_gave_up";
            } else {
                u.status = event_status::pending;
                u.next_verify_at_us = now_us() + backoff(row.verify_attempts + 1).count();
            }
            break;
        }
        }
        co_return u;
    }

    // Re-reads the counts ingest bounds itself with (imports and prunes by other processes
    // change them behind the daemon's back).
    net::awaitable<void> resync()
    {
        auto r = co_await await_completion<result<store::unsettled_counts>>(
            [this](auto done) { return store.count_unsettled(std::move(done)); });
        if (r && *r) {
            counts.pending.store((*r)->pending);
            counts.failed.store((*r)->failed);
        }
        co_return;
    }

    net::awaitable<void> run()
    {
        auto self = shared_from_this();
        const std::int64_t resync_us = std::chrono::duration_cast<std::chrono::microseconds>(resync_interval).count();
        auto next_resync = now_us() + resync_us;
        while (!stopped) {
            // A wall clock set back also brings the next resync (it would wait for ever).
            if (const auto now = now_us(); now >= next_resync || now < next_resync - resync_us) {
                co_await resync();
                next_resync = now_us() + resync_us;
            }
            pending_gauge.set(counts.pending.load());
            failed_gauge.set(counts.failed.load());
            // A shared database may hold pending rows another instance stored (and died
            // before settling): look every round, not only when this process knows of some.
            if (counts.pending.load() > 0 || store.shared()) {
                auto rows = co_await await_completion<result<std::vector<store::pending_event>>>(
                    [&](auto done) { return store.claim_due_pending(now_us(), 100, std::move(done)); });
                if (rows && *rows && !(*rows)->empty()) {
                    std::vector<store::status_update> updates;
                    std::int64_t verified_now = 0;
                    std::int64_t failed_now = 0;
                    for (const auto& row : **rows) {
                        auto u = co_await decide(row);
                        if (u.status == event_status::verified) {
                            verified.inc();
                            ++verified_now;
                        } else if (u.status == event_status::failed) {
                            failed.inc();
                            ++failed_now;
                            log::warn("pending event failed verification", {{"event", row.id}, {"reason", u.verify_reason}});
                        } else {
                            retried.inc();
                        }
                        updates.push_back(std::move(u));
                    }
                    auto done = co_await await_completion<result<void>>(
                        [&](auto cb) { return store.submit_status_updates(std::move(updates), std::move(cb)); });
                    if (done && *done) {
                        // Rows another instance stored are not in this count: never below 0
                        // (the next resync brings the exact figure).
                        if (counts.pending.fetch_sub(verified_now + failed_now) < verified_now + failed_now) {
                            std::int64_t n = counts.pending.load();
                            while (n < 0 && !counts.pending.compare_exchange_weak(n, 0)) {
                            }
                        }
                        counts.failed.fetch_add(failed_now);
                        if (verified_now + failed_now > 0) {
                            log::info("pending events re-verified", {{"verified", verified_now}, {"failed", failed_now}});
                        }
                        continue;  // more may be due right away
                    }
                }
            }
            co_await time.sleep(
                std::min<std::chrono::milliseconds>(settings.get()->pending_retry_min, std::chrono::milliseconds(1000)));
        }
    }
};

reverifier::reverifier(net::any_io_executor ex, const live_value<verify_settings>& cfg, const key_url_policy& policy,
                       key_cache& keys, store::event_store& store, status_counts& counts, metrics::registry& metrics,
                       timing t)
    : state_(std::make_shared<state>(std::move(ex), cfg, policy, keys, store, counts, metrics, std::move(t)))
{
}

reverifier::~reverifier()
{
    // stop() allocates to post the timer cancel; a destructor must not throw. `stopped` is set
    // before anything can throw, so the loop still ends at its next wake-up.
    try {
        stop();
    } catch (...) {
    }
}

void reverifier::start()
{
    // A failed round must not end re-verification for good: restarted after a backoff.
    task::policy p;
    p.metrics = &state_->registry;
    task::spawn_supervised(
        state_->ex, "reverifier", [st = state_] { return st->run(); }, std::move(p));
}

void reverifier::stop()
{
    state_->stopped = true;
    net::post(state_->ex, [st = state_] { st->timer.cancel(); });
}

} // namespace cwhook::callback
