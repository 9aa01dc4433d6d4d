// Design: one mutex guards the entries, their LRU order and the per-host budgets; it is never
// held across a co_await. An entry keeps the last good key apart from the last failure, so a
// refresh that fails cannot replace a key that is still within its TTL. Every fetch passes
// the host's budget first (token bucket plus an in-flight cap): forged key_urls with fresh
// ids then cost ConnectWise at most key_fetch_rate requests a second per host, and a delivery
// that cannot get a fetch in time is deferred (429), which Manage retries. Waiting for a
// token or for the next allowed re-fetch uses the injected sleep, so tests drive time.
#include "callback/key_cache.hpp"

#include "core/await.hpp"
#include "core/log.hpp"
#include "json/signing_key.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cwhook::callback {

namespace net = boost::asio;
using clock = key_cache::clock;

key_failure classify(const boost::system::error_code& ec)
{
    if (ec == errc::key_fetch_failed) {
        return key_failure::transient;
    }
    if (ec == errc::key_fetch_busy) {
        return key_failure::busy;
    }
    return key_failure::no_key;
}

namespace {

// A fetch's outcome as its waiters get it: the result and when the fetch started.
struct fetched {
    result<crypto::key_digest> key{errc::key_fetch_failed};
    clock::time_point started{};
};

// While a host has every fetch slot busy, waiters look again this often (slots free within
// key_fetch_timeout; the wait is bounded by the caller's deadline).
constexpr auto slot_poll = std::chrono::milliseconds(25);

net::awaitable<void> sleep_on(const net::any_io_executor& ex, clock::duration d)
{
    net::steady_timer timer(ex, d);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
}

// The key verdict on a request that got no answer. Transport trouble may pass, and so may a
// rejected certificate (an operator fixes verify.ca_file, or the host renews it): the event
// waits as pending. An answer too large, or a key host that resolves only to special-purpose
// addresses, would be the same next time: the key is unavailable.
errc key_error(const client::failure& f)
{
    if (f.code.category() != client::error_category()) {
        return errc::key_fetch_failed;
    }
    switch (static_cast<client::errc>(f.code.value())) {
    case client::errc::special_address:
    case client::errc::response_too_large: return errc::key_unavailable;
    case client::errc::resolve_failed:
    case client::errc::tls_setup_failed:
    case client::errc::connect_failed:
    case client::errc::tls_handshake_failed:
    case client::errc::certificate_rejected:
    case client::errc::timed_out:
    case client::errc::connection_lost:
    case client::errc::bad_response: return errc::key_fetch_failed;
    }
    return errc::key_fetch_failed;
}

net::awaitable<result<crypto::key_digest>> fetch_over_https(client::https_client& client, metrics::histogram& seconds,
                                                            const verify_settings& cfg, const key_target& t)
{
    client::request req;
    req.host = t.host;
    req.port = t.port;
    req.target = t.target;
    req.headers.emplace_back("Accept", "application/json");
    client::options opt;
    opt.timeout = cfg.key_fetch_timeout;
    opt.max_response_bytes = cfg.key_max_bytes;
    opt.allow_private = t.operator_listed;
    const auto started = clock::now();
    auto res = co_await client.fetch(req, opt);
    const auto ms = std::chrono::duration<double, std::milli>(clock::now() - started).count();
    seconds.observe(ms / 1000);
    // Logged without the query: the id there names the key.
    const std::string where = t.host + ":" + std::to_string(t.port);
    if (!res) {
        log::warn("key fetch failed",
                  {{"host", where}, {"company", t.company}, {"error", res.error().detail}, {"ms", ms}});
        co_return key_error(res.error());
    }
    const auto status = res->status;
    if (status >= 300 && status < 400) {
        log::warn("key server redirected; not followed", {{"host", where}, {"company", t.company}, {"status", status}});
        co_return errc::redirect_refused;
    }
    if (status == 429 || status >= 500) {
        log::warn("key server failed", {{"host", where}, {"company", t.company}, {"status", status}});
        co_return errc::key_fetch_failed;
    }
    if (status != 200) {
        log::warn("key server refused", {{"host", where}, {"company", t.company}, {"status", status}});
        co_return errc::key_unavailable;
    }
    auto key = json::parse_signing_key(res->body);
    if (!key) {
        log::warn("key server answer holds no signing_key",
                  {{"host", where}, {"company", t.company}, {"bytes", res->body.size()}});
        co_return errc::key_unavailable;
    }
    log::debug("key fetched", {{"host", where}, {"company", t.company}, {"ms", ms}});
    co_return crypto::digest_signing_key(*key);
}

} // namespace

struct key_cache::state {
    net::any_io_executor ex;
    fetch_fn fetch;
    verify_settings cfg;
    timing time;
    metrics::counter& hits;
    metrics::counter& misses;
    metrics::counter& fetches;
    metrics::counter& fetch_errors;
    metrics::counter& coalesced;
    metrics::counter& refreshes;
    metrics::counter& evictions;
    metrics::counter& busy;

    struct entry {
        std::string host;  // budget key: "host:port"
        bool has_key = false;
        crypto::key_digest digest{};
        clock::time_point key_fetched{};
        clock::time_point key_expires{};
        boost::system::error_code failure;  // negative cache, only while no good key is held
        clock::time_point failure_expires{};
        clock::time_point failure_fetched{};
        bool fetching = false;
        bool ever_fetched = false;
        clock::time_point last_fetch{};  // start of the newest fetch (refetch interval)
        std::vector<std::function<void(fetched)>> waiters;
        bool in_keyed = false;  // which LRU list holds it
        std::list<std::string>::iterator lru;
    };
    struct budget {
        double tokens = 0;
        clock::time_point refilled{};
        std::size_t in_flight = 0;
    };

    mutable std::mutex mutex;
    std::unordered_map<std::string, entry> entries;  // guarded by mutex
    // Most recently used first, in two lists: entries holding a good key, and the rest
    // (failures, lookups that never got a fetch). A new lookup only pushes out idle entries of
    // the second list; a good key is pushed out only by another good key, when its fetch
    // succeeds. So invented ids, however many and however many at once, only ever push out
    // each other. Entries whose fetch is in flight are never evicted: the bound may be
    // exceeded by them for as long as they run. Guarded by mutex.
    std::list<std::string> keyed;
    std::list<std::string> other;
    std::unordered_map<std::string, budget> budgets;  // per key host; guarded by mutex

    state(net::any_io_executor e, fetch_fn f, const verify_settings& s, metrics::registry& m, timing t)
        : ex(std::move(e)), fetch(std::move(f)), cfg(s), time(std::move(t)),
          hits(m.get_counter("cwhook_key_cache_hits_total")), misses(m.get_counter("cwhook_key_cache_misses_total")),
          fetches(m.get_counter("cwhook_key_fetches_total")),
          fetch_errors(m.get_counter("cwhook_key_fetch_errors_total")),
          coalesced(m.get_counter("cwhook_key_fetch_coalesced_total")),
          refreshes(m.get_counter("cwhook_key_refreshes_total")),
          evictions(m.get_counter("cwhook_key_cache_evictions_total")),
          busy(m.get_counter("cwhook_key_fetch_busy_total"))
    {
        if (!time.now) {
            time.now = [] { return clock::now(); };
        }
        if (!time.sleep) {
            time.sleep = [this](clock::duration d) { return sleep_on(ex, d); };
        }
    }

    std::size_t bound() const { return std::max<std::size_t>(cfg.key_cache_entries, 1); }

    // Back towards the bound after `key`'s fetch settled: idle entries without a key go first;
    // then, for an entry that just got its first key, ONE entry with a key (it took one place).
    // Never more: the bound may be exceeded by lookups in flight, and those must not cost good
    // keys. Mutex held.
    void trim(const std::string& key, bool newly_keyed)
    {
        while (entries.size() > bound() && evict_one(other, &key)) {
        }
        if (newly_keyed && entries.size() > bound()) {
            evict_one(keyed, &key);
        }
    }

    double rate() const { return static_cast<double>(std::max<std::size_t>(cfg.key_fetch_rate, 1)); }
    double burst() const { return rate(); }

    std::list<std::string>& list_of(const entry& e) { return e.in_keyed ? keyed : other; }

    // Moves an entry to the front of the list its key state calls for. Mutex held.
    void place(entry& e)
    {
        auto& from = list_of(e);
        e.in_keyed = e.has_key;
        list_of(e).splice(list_of(e).begin(), from, e.lru);
    }

    // Drops the least recently used idle entry of `l` but `spare`; false when there is none.
    // Mutex held.
    bool evict_one(std::list<std::string>& l, const std::string* spare = nullptr)
    {
        for (auto victim = l.end(); victim != l.begin();) {
            --victim;
            const auto found = entries.find(*victim);
            if (found->second.fetching || (spare != nullptr && *victim == *spare)) {
                continue; // its fetch completes into it, or it is the one just settled
            }
            entries.erase(found);
            l.erase(victim);
            evictions.inc();
            return true;
        }
        return false;
    }

    // The entry for `key`, made most recently used; created (evicting beyond the bound) when
    // absent. Mutex held.
    entry& touch(const std::string& key, const key_target& t)
    {
        if (auto it = entries.find(key); it != entries.end()) {
            place(it->second);
            return it->second;
        }
        while (entries.size() >= bound() && evict_one(other)) {
        }
        other.push_front(key);
        auto& e = entries[key];
        e.host = t.host + ":" + std::to_string(t.port);
        e.lru = other.begin();
        return e;
    }

    // A fetch slot of the host, now or within the deadline. Mutex not held.
    net::awaitable<bool> acquire(const std::string& host, clock::time_point deadline)
    {
        for (;;) {
            clock::duration wait{};
            {
                std::lock_guard lock(mutex);
                const auto now = time.now();
                auto [it, fresh] = budgets.try_emplace(host);
                auto& b = it->second;
                if (fresh) {
                    b.tokens = burst();
                    b.refilled = now;
                }
                const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
                b.tokens = std::min(burst(), b.tokens + elapsed * rate());
                b.refilled = now;
                const std::size_t cap = std::max<std::size_t>(cfg.key_fetch_concurrency, 1);
                if (b.tokens >= 1 && b.in_flight < cap) {
                    b.tokens -= 1;
                    ++b.in_flight;
                    co_return true;
                }
                if (b.tokens < 1) {
                    // The next token comes at a known time: give up now if it comes too late.
                    wait = std::chrono::duration_cast<clock::duration>(
                        std::chrono::duration<double>((1 - b.tokens) / rate()));
                    if (now + wait > deadline) {
                        co_return false;
                    }
                } else {
                    if (now >= deadline) {
                        co_return false;
                    }
                    wait = std::min<clock::duration>(slot_poll, deadline - now);
                }
            }
            co_await time.sleep(wait);
        }
    }

    void release(const std::string& host)
    {
        std::lock_guard lock(mutex);
        auto& b = budgets[host];
        if (b.in_flight > 0) {
            --b.in_flight;
        }
    }

    // Runs the one fetch of `key` (the caller set entry.fetching) and completes its waiters.
    net::awaitable<fetched> run_fetch(const key_target& t, const std::string& key, const std::string& host,
                                      clock::time_point deadline)
    {
        fetched out;
        if (!co_await acquire(host, deadline)) {
            busy.inc();
            out.key = errc::key_fetch_busy;
            out.started = time.now();
        } else {
            {
                std::lock_guard lock(mutex);
                out.started = time.now();
                auto& e = entries.at(key);
                e.ever_fetched = true;
                e.last_fetch = out.started;
            }
            fetches.inc();
            out.key = co_await fetch(t);
            release(host);
            if (!out.key) {
                fetch_errors.inc();
            }
        }
        std::vector<std::function<void(fetched)>> waiters;
        {
            std::lock_guard lock(mutex);
            auto& e = entries.at(key);
            const auto now = time.now();
            e.fetching = false;
            if (out.key) {
                e.has_key = true;
                e.digest = *out.key;
                e.key_fetched = out.started;
                e.key_expires = now + cfg.key_cache_ttl;
                e.failure = {};
            } else if (out.key.error() != errc::key_fetch_busy) {
                if (e.has_key && now >= e.key_expires) {
                    e.has_key = false;
                }
                if (!e.has_key) {
                    // Only without a good key: a failed refresh must not replace one.
                    e.failure = out.key.error();
                    e.failure_fetched = out.started;
                    e.failure_expires = now + cfg.key_failure_ttl;
                }
            }
            // A key new to the keyed list took a place; a refreshed one (or a failed refresh
            // that keeps its key) already had one and pushes nobody out.
            const bool newly_keyed = e.has_key && !e.in_keyed;
            place(e);
            waiters.swap(e.waiters);
            trim(key, newly_keyed);
        }
        for (auto& w : waiters) {
            w(out);
        }
        co_return out;
    }

    // Joins the fetch in flight for `key`.
    net::awaitable<fetched> join(const std::string& key)
    {
        coalesced.inc();
        auto r = co_await await_completion<fetched>([&](auto done) {
            std::lock_guard lock(mutex);
            const auto it = entries.find(key);
            if (it == entries.end()) {
                return false;
            }
            if (!it->second.fetching) {
                // It finished between our two looks: answer from what it left (a fetch that
                // never got its budget leaves neither a key nor a failure).
                auto& e = it->second;
                if (e.has_key) {
                    done(fetched{e.digest, e.key_fetched});
                } else if (e.failure) {
                    done(fetched{e.failure, e.failure_fetched});
                } else {
                    done(fetched{errc::key_fetch_busy, time.now()});
                }
                return true;
            }
            it->second.waiters.push_back(std::move(done));
            return true;
        });
        co_return r ? *r : fetched{errc::key_fetch_failed, time.now()};
    }
};

key_cache::key_cache(net::any_io_executor ex, fetch_fn fetch, const verify_settings& cfg, metrics::registry& metrics,
                     timing t)
    : state_(std::make_shared<state>(std::move(ex), std::move(fetch), cfg, metrics, std::move(t)))
{
}

key_cache::~key_cache() = default;

clock::time_point key_cache::now() const { return state_->time.now(); }

std::size_t key_cache::size() const
{
    std::lock_guard lock(state_->mutex);
    return state_->entries.size();
}

net::awaitable<key_cache::lookup> key_cache::get(const key_target& target, clock::time_point deadline)
{
    auto st = state_;
    const std::string key = target.cache_key();
    bool join = false;
    std::string host;
    {
        std::lock_guard lock(st->mutex);
        const auto now = st->time.now();
        auto& e = st->touch(key, target);
        if (e.has_key && now < e.key_expires) {
            st->hits.inc();
            co_return lookup{e.digest, e.key_fetched, true};
        }
        if (!e.has_key && e.failure && now < e.failure_expires) {
            st->hits.inc();
            co_return lookup{e.failure, e.failure_fetched, true};
        }
        st->misses.inc();
        join = e.fetching;
        e.fetching = true;
        host = e.host;
    }
    if (join) {
        const auto f = co_await st->join(key);
        co_return lookup{f.key, f.started, false};
    }
    const auto f = co_await st->run_fetch(target, key, host, deadline);
    co_return lookup{f.key, f.started, false};
}

net::awaitable<key_cache::lookup> key_cache::get_fresh(const key_target& target, clock::time_point since,
                                                       clock::time_point deadline)
{
    auto st = state_;
    const std::string key = target.cache_key();
    for (;;) {
        enum class step { join, fetch, wait } next = step::fetch;
        clock::duration wait{};
        std::string host;
        {
            std::lock_guard lock(st->mutex);
            const auto now = st->time.now();
            auto& e = st->touch(key, target);
            if (e.has_key && e.key_fetched >= since && now < e.key_expires) {
                st->hits.inc();
                co_return lookup{e.digest, e.key_fetched, true};
            }
            if (e.fetching) {
                next = step::join;
            } else {
                const auto allowed = e.ever_fetched ? e.last_fetch + st->cfg.key_refetch_interval : now;
                if (now < allowed) {
                    if (allowed > deadline) {
                        st->busy.inc();
                        co_return lookup{errc::key_fetch_busy, now, false};
                    }
                    next = step::wait;
                    wait = allowed - now;
                } else {
                    e.fetching = true;
                    st->refreshes.inc();
                }
            }
            host = e.host;
        }
        if (next == step::wait) {
            co_await st->time.sleep(wait);
            continue;
        }
        fetched f;
        if (next == step::join) {
            f = co_await st->join(key);
        } else {
            f = co_await st->run_fetch(target, key, host, deadline);
        }
        if (f.started >= since || f.key.error() == errc::key_fetch_busy) {
            co_return lookup{f.key, f.started, false};
        }
        // That fetch began before the delivery arrived: it cannot settle it. Look again.
    }
}

key_cache::fetch_fn key_cache::https_fetcher(client::https_client& client, const verify_settings& cfg,
                                             metrics::registry& metrics)
{
    auto& seconds = metrics.get_histogram("cwhook_key_fetch_duration_seconds", {}, metrics::latency_buckets());
    return [&client, &seconds, cfg](const key_target& t) { return fetch_over_https(client, seconds, cfg, t); };
}

namespace {

// Holds the settings version one fetch started with for as long as the fetch runs.
net::awaitable<result<crypto::key_digest>> fetch_with(client::https_client& client, metrics::histogram& seconds,
                                                      std::shared_ptr<const verify_settings> cfg,
                                                      const key_target& t)
{
    co_return co_await fetch_over_https(client, seconds, *cfg, t);
}

} // namespace

key_cache::fetch_fn key_cache::https_fetcher(client::https_client& client, const live_value<verify_settings>& cfg,
                                             metrics::registry& metrics)
{
    auto& seconds = metrics.get_histogram("cwhook_key_fetch_duration_seconds", {}, metrics::latency_buckets());
    return [&client, &seconds, &cfg](const key_target& t) { return fetch_with(client, seconds, cfg.get(), t); };
}

void key_cache::set_settings(const verify_settings& cfg)
{
    std::lock_guard lock(state_->mutex);
    state_->cfg = cfg;
}

} // namespace cwhook::callback
