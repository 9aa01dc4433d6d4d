#include "callback/reverifier.hpp"

#include "callback/detail/await.hpp"
#include "core/log.hpp"
#include "crypto/signature.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <random>

namespace cwhook::callback {

namespace net = boost::asio;
using store::event_status;

struct reverifier::state : std::enable_shared_from_this<reverifier::state> {
    net::any_io_executor ex;
    const verify_settings& cfg;
    const key_url_policy& policy;
    key_cache& keys;
    store::event_store& store;
    pending_tracker& pending;
    metrics::counter& verified;
    metrics::counter& failed;
    metrics::counter& retried;
    metrics::gauge& pending_gauge;
    net::steady_timer timer;
    std::atomic<bool> stopped{false};
    std::minstd_rand rng{std::random_device{}()};

    state(net::any_io_executor e, const verify_settings& c, const key_url_policy& p, key_cache& k,
          store::event_store& s, pending_tracker& t, metrics::registry& m)
        : ex(std::move(e)), cfg(c), policy(p), keys(k), store(s), pending(t),
          verified(m.get_counter("cwhook_reverify_total", "outcome=\"verified\"")),
          failed(m.get_counter("cwhook_reverify_total", "outcome=\"failed\"")),
          retried(m.get_counter("cwhook_reverify_total", "outcome=\"retry\"")),
          pending_gauge(m.get_gauge("cwhook_pending_events")), timer(ex)
    {
    }

    static std::int64_t now_us()
    {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    // min * 2^attempts, capped, with +-20% jitter so a recovering key server is not hit by
    // every pending row in the same millisecond.
    std::chrono::microseconds backoff(std::int64_t attempts)
    {
        const auto min = std::chrono::duration_cast<std::chrono::microseconds>(cfg.pending_retry_min).count();
        const auto max = std::chrono::duration_cast<std::chrono::microseconds>(cfg.pending_retry_max).count();
        const auto shift = std::min<std::int64_t>(attempts, 30);
        const auto base = std::min<std::int64_t>(max, min << shift);
        std::uniform_real_distribution<double> jitter(0.8, 1.2);
        return std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(base) * jitter(rng)));
    }

    net::awaitable<store::status_update> decide(const store::pending_event& row)
    {
        store::status_update u;
        u.id = row.id;
        auto target = policy.check(row.key_url);
        const auto sig = crypto::decode_signature_header(row.signature);
        if (!target || !sig) {
            // The allowlist changed since the row was stored, or it was never verifiable.
            u.status = event_status::failed;
            u.verify_reason = !target ? "key_url_not_allowed" : "bad_signature";
            co_return u;
        }
        auto outcome = co_await verify_body(keys, *target, row.key_url, row.body, *sig);
        u.status = outcome.status;
        u.verify_reason = outcome.reason;
        if (u.status == event_status::pending) {
            const auto age = std::chrono::microseconds(now_us() - row.received_at_us);
            if (age > cfg.pending_max_age) {
                u.status = event_status::failed;
                u.verify_reason = "key_fetch_gave_up";
            } else {
                u.next_verify_at_us = now_us() + backoff(row.verify_attempts + 1).count();
            }
        }
        co_return u;
    }

    net::awaitable<void> run()
    {
        auto self = shared_from_this();
        while (!stopped) {
            pending_gauge.set(pending.count.load());
            if (pending.count.load() > 0) {
                auto rows = co_await detail::await_completion<result<std::vector<store::pending_event>>>(
                    [&](auto done) { return store.load_due_pending(now_us(), 100, std::move(done)); });
                if (rows && *rows && !(*rows)->empty()) {
                    std::vector<store::status_update> updates;
                    std::int64_t resolved = 0;
                    for (const auto& row : **rows) {
                        auto u = co_await decide(row);
                        if (u.status == event_status::verified) {
                            verified.inc();
                            ++resolved;
                        } else if (u.status == event_status::failed) {
                            failed.inc();
                            ++resolved;
                            log::warn("pending event failed verification", {{"event", row.id}, {"reason", u.verify_reason}});
                        } else {
                            retried.inc();
                        }
                        updates.push_back(std::move(u));
                    }
                    auto done = co_await detail::await_completion<result<void>>(
                        [&](auto cb) { return store.submit_status_updates(std::move(updates), std::move(cb)); });
                    if (done && *done) {
                        pending.count.fetch_sub(resolved);
                        if (resolved > 0) {
                            log::info("pending events re-verified", {{"resolved", resolved}});
                        }
                        continue;  // more may be due right away
                    }
                }
            }
            timer.expires_after(std::min<std::chrono::milliseconds>(cfg.pending_retry_min, std::chrono::milliseconds(1000)));
            co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        }
    }
};

reverifier::reverifier(net::any_io_executor ex, const verify_settings& cfg, const key_url_policy& policy,
                       key_cache& keys, store::event_store& store, pending_tracker& pending, metrics::registry& metrics)
    : state_(std::make_shared<state>(std::move(ex), cfg, policy, keys, store, pending, metrics))
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
    net::co_spawn(state_->ex, state_->run(), net::detached);
}

void reverifier::stop()
{
    state_->stopped = true;
    net::post(state_->ex, [st = state_] { st->timer.cancel(); });
}

} // namespace cwhook::callback
