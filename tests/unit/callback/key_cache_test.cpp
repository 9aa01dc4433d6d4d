// The key cache with an injected clock whose sleep advances it and a fetcher that answers from
// a script: TTLs, the negative cache, single flight, LRU eviction, the refetch interval and
// the per-host budget, without waiting through any of them.
#include "callback/key_cache.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>

#include <deque>
#include <future>
#include <optional>

namespace cwhook::callback {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using clock = key_cache::clock;

crypto::key_digest digest_of(std::uint8_t n)
{
    crypto::key_digest d{};
    d[0] = n;
    return d;
}

key_target target(std::string id, std::string host = "na.myconnectwise.net")
{
    key_target t;
    t.host = std::move(host);
    t.target = "/v2025_1//system/callbackkey/index.rails?companyName=cobalt&id=" + id;
    t.company = "cobalt";
    t.key_id = std::move(id);
    return t;
}

class KeyCache : public ::testing::Test {
protected:
    net::io_context ioc;
    metrics::registry metrics;
    verify_settings cfg;
    clock::time_point now{std::chrono::hours(1000)};
    int fetches = 0;
    std::deque<result<crypto::key_digest>> script;    // answers in order; then `answer`
    result<crypto::key_digest> answer{digest_of(1)};
    net::steady_timer* hold = nullptr;  // set: the next fetch waits until it is cancelled
    std::optional<net::steady_timer> gate;  // hold_fetches()' timer

    std::unique_ptr<key_cache> make()
    {
        key_cache::timing t;
        t.now = [this] { return now; };
        t.sleep = [this](clock::duration d) { return advance(d); };
        return std::make_unique<key_cache>(
            ioc.get_executor(), [this](const key_target&) { return fetch(); }, cfg, metrics, t);
    }

    net::awaitable<void> advance(clock::duration d)
    {
        now += d;
        co_return;
    }

    net::awaitable<result<crypto::key_digest>> fetch()
    {
        ++fetches;
        if (hold != nullptr) {
            net::steady_timer* h = hold;
            hold = nullptr;
            co_await h->async_wait(net::as_tuple(net::use_awaitable));
        }
        if (!script.empty()) {
            auto r = script.front();
            script.pop_front();
            co_return r;
        }
        co_return answer;
    }

    // Runs one awaitable to completion on the test's io_context.
    template <class T>
    T run(net::awaitable<T> a)
    {
        auto f = spawn(std::move(a));
        ioc.restart();
        ioc.run();
        return f.get();
    }

    key_cache::lookup get(key_cache& c, const key_target& t, clock::duration budget = 4s)
    {
        return run(c.get(t, now + budget));
    }

    // Starts a lookup without waiting for it (its target must outlive it).
    template <class T>
    std::future<T> spawn(net::awaitable<T> a)
    {
        return net::co_spawn(ioc, std::move(a), net::use_future);
    }

    // Runs the io_context until every started lookup waits.
    void settle()
    {
        ioc.restart();
        while (ioc.poll() > 0) {
        }
    }

    // Runs a lookup while other fetches are held (settle(), not run()): it must not need them.
    template <class T> T done_at_once(net::awaitable<T> a)
    {
        auto f = spawn(std::move(a));
        settle();
        EXPECT_EQ(f.wait_for(0s), std::future_status::ready);
        return f.get();
    }

    // The next fetch waits until release_fetches().
    void hold_fetches()
    {
        gate.emplace(ioc, clock::time_point::max());
        hold = &*gate;
    }

    // Lets the held fetch answer and runs everything to completion.
    void release_fetches()
    {
        gate->cancel();
        ioc.restart();
        ioc.run();
    }
};

TEST_F(KeyCache, KeyIsReusedWithinItsTtlAndFetchedAgainAfter)
{
    cfg.key_cache_ttl = 1h;
    auto c = make();
    const auto t = target("a");
    EXPECT_FALSE(get(*c, t).from_cache);
    now += 59min;
    const auto hit = get(*c, t);
    EXPECT_TRUE(hit.from_cache);
    ASSERT_TRUE(hit.key);
    EXPECT_EQ(*hit.key, digest_of(1));
    EXPECT_EQ(fetches, 1);
    now += 1min;
    EXPECT_FALSE(get(*c, t).from_cache);
    EXPECT_EQ(fetches, 2);
}

TEST_F(KeyCache, FailureIsCachedForTheFailureTtlOnly)
{
    cfg.key_failure_ttl = 5s;
    answer = errc::key_unavailable;
    auto c = make();
    const auto t = target("a");
    EXPECT_EQ(get(*c, t).key.error(), errc::key_unavailable);
    now += 4s;
    const auto cached = get(*c, t);
    EXPECT_TRUE(cached.from_cache);
    EXPECT_EQ(cached.key.error(), errc::key_unavailable);
    EXPECT_EQ(fetches, 1);
    now += 1s;
    answer = digest_of(2);
    EXPECT_EQ(*get(*c, t).key, digest_of(2));
    EXPECT_EQ(fetches, 2);
}

TEST_F(KeyCache, ConcurrentLookupsShareOneFetch)
{
    auto c = make();
    hold_fetches();
    const auto t = target("a");
    auto first = spawn(c->get(t, now + 4s));
    auto second = spawn(c->get(t, now + 4s));
    while (ioc.poll() > 0) {
    }  // both are waiting now: the first in its fetch, the second on the first
    EXPECT_EQ(fetches, 1);
    release_fetches();
    EXPECT_EQ(*first.get().key, digest_of(1));
    EXPECT_EQ(*second.get().key, digest_of(1));
    EXPECT_EQ(fetches, 1);
    EXPECT_EQ(metrics.get_counter("cwhook_key_fetch_coalesced_total").value(), 1u);
}

TEST_F(KeyCache, LeastRecentlyUsedGoesFirst)
{
    cfg.key_cache_entries = 2;
    auto c = make();
    get(*c, target("a"));
    get(*c, target("b"));
    get(*c, target("a"));  // a is now the most recently used
    get(*c, target("c"));  // evicts b
    EXPECT_EQ(fetches, 3);
    EXPECT_TRUE(get(*c, target("a")).from_cache);
    EXPECT_FALSE(get(*c, target("b")).from_cache);
    EXPECT_EQ(metrics.get_counter("cwhook_key_cache_evictions_total").value(), 2u);
}

// Invented ids only push out each other: a good key stays, however many come after it.
TEST_F(KeyCache, FailuresNeverEvictAGoodKey)
{
    cfg.key_cache_entries = 3;
    cfg.key_fetch_rate = 1000;
    auto c = make();
    get(*c, target("genuine"));
    answer = errc::key_unavailable;
    for (int i = 0; i < 50; ++i) {
        get(*c, target("forged-" + std::to_string(i)));
    }
    const auto r = get(*c, target("genuine"));
    EXPECT_TRUE(r.from_cache);
    EXPECT_EQ(*r.key, digest_of(1));
    EXPECT_LE(c->size(), 3u);
}

// Invented ids waiting for their fetch at the same moment (a flood, the budget spent) do not
// push a good key out either: only a key fetched with success can, and one key pushes out
// one, however far the lookups in flight hold the cache above its bound.
TEST_F(KeyCache, LookupsInFlightNeverEvictAGoodKey)
{
    cfg.key_cache_entries = 3;
    cfg.key_fetch_rate = 1000;
    cfg.key_fetch_concurrency = 16;
    auto c = make();
    get(*c, target("old"));
    get(*c, target("genuine"));
    answer = errc::key_unavailable;
    hold_fetches();
    std::vector<key_target> targets;
    for (int i = 0; i < 4; ++i) {
        targets.push_back(target("forged-" + std::to_string(i)));
    }
    std::vector<std::future<key_cache::lookup>> forged;
    for (const auto& t : targets) {
        hold = &*gate; // every forged fetch waits for release_fetches()
        forged.push_back(spawn(c->get(t, now + 4s)));
        settle();
    }
    EXPECT_EQ(fetches, 6);
    // settle(), not run(), from here: the forged fetches are held.
    const auto lookup_now = [&](const key_target& t) { return done_at_once(c->get(t, now + 4s)); };
    const auto genuine = target("genuine");
    const auto r = lookup_now(genuine);
    EXPECT_TRUE(r.from_cache);
    EXPECT_EQ(*r.key, digest_of(1));
    // A new genuine key, fetched with success, takes the place of the least recently used one.
    answer = digest_of(2);
    const auto fresh_target = target("new");
    EXPECT_EQ(*lookup_now(fresh_target).key, digest_of(2));
    answer = errc::key_unavailable;
    EXPECT_TRUE(lookup_now(genuine).from_cache);
    const auto old = target("old");
    EXPECT_GT(c->size(), 3u); // the forged lookups still hold it above its bound
    release_fetches();
    for (auto& f : forged) {
        EXPECT_EQ(f.get().key.error(), errc::key_unavailable);
    }
    EXPECT_LE(c->size(), 3u); // back within the bound once the fetches are over
    EXPECT_TRUE(get(*c, genuine).from_cache);
    EXPECT_TRUE(get(*c, fresh_target).from_cache);
    EXPECT_FALSE(get(*c, old).from_cache);
}

// A refresh (a delivery whose signature did not match the cached key) keeps the key's place:
// while forged lookups hold the cache above its bound, it must not push out another good key.
TEST_F(KeyCache, ARefreshedKeyPushesOutNoOtherKey)
{
    cfg.key_cache_entries = 2;
    cfg.key_fetch_rate = 1000;
    cfg.key_fetch_concurrency = 16;
    auto c = make();
    const auto a = target("a");
    const auto b = target("b");
    get(*c, a);
    get(*c, b);
    answer = errc::key_unavailable;
    hold_fetches();
    std::vector<key_target> targets{target("forged-0"), target("forged-1")};
    std::vector<std::future<key_cache::lookup>> forged;
    for (const auto& t : targets) {
        hold = &*gate;
        forged.push_back(spawn(c->get(t, now + 4s)));
        settle();
    }
    EXPECT_EQ(c->size(), 4u);
    now += cfg.key_refetch_interval;
    answer = digest_of(2);
    const auto refreshed = done_at_once(c->get_fresh(a, now, now + 4s));
    EXPECT_FALSE(refreshed.from_cache);
    EXPECT_EQ(*refreshed.key, digest_of(2));
    answer = errc::key_unavailable;
    const auto kept = done_at_once(c->get(b, now + 4s));
    EXPECT_TRUE(kept.from_cache);
    EXPECT_EQ(*kept.key, digest_of(1));
    release_fetches();
    for (auto& f : forged) {
        EXPECT_EQ(f.get().key.error(), errc::key_unavailable);
    }
    EXPECT_TRUE(get(*c, a).from_cache);
    EXPECT_TRUE(get(*c, b).from_cache);
}

TEST_F(KeyCache, FreshKeyWaitsForTheRefetchInterval)
{
    cfg.key_refetch_interval = 1s;
    auto c = make();
    const auto t = target("a");
    const auto first_fetch = now;
    get(*c, t);
    now += 100ms;
    const auto arrived = now;
    answer = digest_of(2);
    const auto fresh = run(c->get_fresh(t, arrived, now + 4s));
    ASSERT_TRUE(fresh.key);
    EXPECT_EQ(*fresh.key, digest_of(2));
    EXPECT_EQ(fresh.fetched_at, first_fetch + 1s);  // waited for the interval, then fetched
    EXPECT_EQ(fetches, 2);
    // A key fetched after the delivery arrived settles it from the cache.
    const auto again = run(c->get_fresh(t, arrived, now + 4s));
    EXPECT_TRUE(again.from_cache);
    EXPECT_EQ(fetches, 2);
}

TEST_F(KeyCache, FreshKeyBeyondTheDeadlineIsBusy)
{
    cfg.key_refetch_interval = 10s;
    auto c = make();
    const auto t = target("a");
    get(*c, t);
    now += 1s;
    const auto r = run(c->get_fresh(t, now, now + 4s));
    ASSERT_FALSE(r.key);
    EXPECT_EQ(r.key.error(), errc::key_fetch_busy);
    EXPECT_EQ(classify(r.key.error()), key_failure::busy);
    EXPECT_EQ(fetches, 1);
}

TEST_F(KeyCache, FailedRefreshKeepsTheLastGoodKey)
{
    cfg.key_refetch_interval = 0ms;
    auto c = make();
    const auto t = target("a");
    get(*c, t);
    now += 1s;
    answer = errc::key_fetch_failed;
    const auto fresh = run(c->get_fresh(t, now, now + 4s));
    EXPECT_EQ(fresh.key.error(), errc::key_fetch_failed);
    const auto kept = get(*c, t);
    EXPECT_TRUE(kept.from_cache);
    ASSERT_TRUE(kept.key);
    EXPECT_EQ(*kept.key, digest_of(1));
}

// key_fetch_rate per second per host, with a burst of one second's worth: the sixth fetch
// of a burst waits for its token; one that cannot have it before its deadline is busy.
TEST_F(KeyCache, FetchesPerHostFollowTheTokenBucket)
{
    cfg.key_fetch_rate = 5;
    auto c = make();
    const auto start = now;
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(get(*c, target("burst-" + std::to_string(i))).key);
    }
    EXPECT_EQ(now, start);
    ASSERT_TRUE(get(*c, target("sixth")).key);
    EXPECT_EQ(now, start + 200ms);  // waited for the next token
    const auto busy = get(*c, target("seventh"), 100ms);
    EXPECT_EQ(busy.key.error(), errc::key_fetch_busy);
    EXPECT_EQ(fetches, 6);
    // Another host has a bucket of its own.
    EXPECT_TRUE(get(*c, target("other", "eu.myconnectwise.net"), 0ms).key);
    EXPECT_EQ(metrics.get_counter("cwhook_key_fetch_busy_total").value(), 1u);
}

// A lookup that found no budget leaves nothing cached: the next one with time fetches.
TEST_F(KeyCache, BusyIsNotCached)
{
    cfg.key_fetch_rate = 1;
    auto c = make();
    ASSERT_TRUE(get(*c, target("first")).key);
    EXPECT_EQ(get(*c, target("a"), 0ms).key.error(), errc::key_fetch_busy);
    EXPECT_EQ(fetches, 1);
    const auto later = get(*c, target("a"), 4s);  // waits for the next token, then fetches
    ASSERT_TRUE(later.key);
    EXPECT_FALSE(later.from_cache);
    EXPECT_EQ(fetches, 2);
}

// key_fetch_concurrency fetches in flight per host: another lookup waits for a slot and is
// busy when none frees before its deadline.
TEST_F(KeyCache, LookupWithoutAFreeSlotIsBusyAtItsDeadline)
{
    cfg.key_fetch_concurrency = 1;
    auto c = make();
    hold_fetches();
    // The lookups take their targets by reference: they must outlive the spawned coroutines.
    const auto a = target("a");
    const auto b = target("b");
    auto held = spawn(c->get(a, now + 4s));
    settle();
    EXPECT_EQ(fetches, 1);
    const auto start = now;
    auto waiting = spawn(c->get(b, now + 1s));
    settle();
    EXPECT_EQ(waiting.get().key.error(), errc::key_fetch_busy);
    EXPECT_GE(now, start + 1s);  // it waited (in simulated time) until its deadline
    EXPECT_EQ(fetches, 1);
    release_fetches();
    EXPECT_TRUE(held.get().key);
}

// Waiters joined to a fetch that fails all get that failure; it is then cached for them all.
TEST_F(KeyCache, ConcurrentLookupsShareOneFailure)
{
    answer = errc::key_fetch_failed;
    auto c = make();
    hold_fetches();
    const auto t = target("a");
    auto first = spawn(c->get(t, now + 4s));
    auto second = spawn(c->get(t, now + 4s));
    settle();
    release_fetches();
    EXPECT_EQ(first.get().key.error(), errc::key_fetch_failed);
    EXPECT_EQ(second.get().key.error(), errc::key_fetch_failed);
    EXPECT_TRUE(get(*c, t).from_cache);
    EXPECT_EQ(fetches, 1);
}

// Deliveries that all found the cached key wrong share one refetch.
TEST_F(KeyCache, ConcurrentFreshLookupsShareOneRefetch)
{
    cfg.key_refetch_interval = 0ms;
    auto c = make();
    const auto t = target("a");
    get(*c, t);
    now += 1s;
    answer = digest_of(2);
    hold_fetches();
    auto first = spawn(c->get_fresh(t, now, now + 4s));
    auto second = spawn(c->get_fresh(t, now, now + 4s));
    settle();
    release_fetches();
    EXPECT_EQ(*first.get().key, digest_of(2));
    EXPECT_EQ(*second.get().key, digest_of(2));
    EXPECT_EQ(fetches, 2);
    EXPECT_EQ(metrics.get_counter("cwhook_key_refreshes_total").value(), 1u);
}

// Past its TTL a key is not served stale when the fetch that should replace it fails.
TEST_F(KeyCache, ExpiredKeyIsNotServedWhenItsRefetchFails)
{
    cfg.key_cache_ttl = 1h;
    cfg.key_failure_ttl = 5s;
    auto c = make();
    const auto t = target("a");
    get(*c, t);
    now += 1h;
    answer = errc::key_fetch_failed;
    EXPECT_EQ(get(*c, t).key.error(), errc::key_fetch_failed);
    const auto cached = get(*c, t);
    EXPECT_TRUE(cached.from_cache);
    EXPECT_EQ(cached.key.error(), errc::key_fetch_failed);
    EXPECT_EQ(fetches, 2);
}

// An entry whose fetch is in flight is never evicted: the fetch completes into it.
TEST_F(KeyCache, EntryBeingFetchedIsNotEvicted)
{
    cfg.key_cache_entries = 1;
    auto c = make();
    hold_fetches();
    const auto a = target("a");
    const auto b = target("b");
    auto held = spawn(c->get(a, now + 4s));
    settle();
    auto other = spawn(c->get(b, now + 4s));
    settle();
    EXPECT_TRUE(other.get().key);
    EXPECT_EQ(c->size(), 2u);  // over the bound for as long as a's fetch runs
    release_fetches();
    EXPECT_TRUE(held.get().key);
    EXPECT_TRUE(get(*c, target("a")).from_cache);
    EXPECT_EQ(fetches, 2);
}

} // namespace
} // namespace cwhook::callback
