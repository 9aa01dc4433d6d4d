// The background re-verifier on an injected clock: its sleeps advance the clock, the key
// cache shares that clock and answers from a script, and the store is a real one in a temp
// directory. The retry schedule and the give-up after pending_max_age are checked in
// simulated time; no test waits for a real backoff or TTL.
#include "callback/reverifier.hpp"

#include "core/live_value.hpp"
#include "crypto/signature.hpp"
#include "store/event_db.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <deque>
#include <future>

namespace cwhook::callback {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using store::event_status;

constexpr std::int64_t t0 = 1'764'302'400'000'000;  // 2025-11-28T04:00:00Z, microseconds
constexpr std::int64_t second = 1'000'000;
constexpr std::string_view signing_key = "the-signing-key";
constexpr std::string_view key_url =
    "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName=cobalt&id=k1";

class Reverifier : public ::testing::Test {
protected:
    test::temp_dir dir;
    net::io_context ioc;
    metrics::registry metrics;
    verify_settings cfg;
    std::unique_ptr<live_value<verify_settings>> live;
    key_url_policy policy = *key_url_policy::make({}, {"cobalt"});
    std::unique_ptr<store::event_store> events;
    status_counts counts;
    std::int64_t now_us = t0;
    std::vector<std::int64_t> fetched_at;               // the clock at every key fetch
    std::deque<result<crypto::key_digest>> script;      // fetch answers in order; then `answer`
    result<crypto::key_digest> answer{errc::key_fetch_failed};
    std::function<bool()> done;                         // checked at every sleep: stop when true
    std::int64_t give_up_at = t0 + 24 * 3600 * second;  // a test that never ends fails here
    std::unique_ptr<key_cache> keys;
    std::unique_ptr<reverifier> rev;

    void SetUp() override
    {
        cfg.pending_retry_min = 1s;
        cfg.pending_retry_max = 8s;
        cfg.key_failure_ttl = 0ms;  // every attempt asks the key server
        store::settings s;
        s.path = dir.file("events.db");
        auto opened = store::event_store::open(s);
        ASSERT_TRUE(opened) << opened.error();
        events = std::move(*opened);
    }

    void TearDown() override
    {
        rev.reset();
        if (events) {
            events->stop();
        }
    }

    net::awaitable<void> advance(std::chrono::milliseconds d)
    {
        now_us += std::chrono::duration_cast<std::chrono::microseconds>(d).count();
        if ((done && done()) || now_us > give_up_at) {
            rev->stop();
        }
        co_return;
    }

    net::awaitable<result<crypto::key_digest>> fetch()
    {
        fetched_at.push_back(now_us);
        if (!script.empty()) {
            auto r = script.front();
            script.pop_front();
            co_return r;
        }
        co_return answer;
    }

    // A pending row received now, due at once.
    std::int64_t add_pending()
    {
        const std::string body = R"({"MessageId":"m1","Action":"updated","Type":"ticket","ID":42})";
        store::event_record ev;
        ev.received_at_us = now_us;
        ev.status = event_status::pending;
        ev.verify_reason = "key_fetch_failed";
        ev.dedupe_key = "m:m1";
        ev.body_sha256 = std::string(64, 'a');
        ev.body = body;
        ev.method = "POST";
        ev.path = "/callbacks";
        ev.client_addr = "192.0.2.10";
        ev.content_type = "application/json";
        ev.signature = crypto::sign(signing_key, body);
        ev.message_id = "m1";
        ev.type = "ticket";
        ev.action = "updated";
        ev.entity_id = 42;
        ev.key_url = std::string(key_url);
        ev.next_verify_at_us = now_us;
        std::promise<result<store::insert_outcome>> inserted;
        EXPECT_TRUE(events->submit_event(std::move(ev), [&](result<store::insert_outcome> r) { inserted.set_value(r); }));
        const auto r = inserted.get_future().get();
        EXPECT_TRUE(r);
        counts.pending.fetch_add(1);
        return r ? r->id : 0;
    }

    // Runs the re-verifier until `done` holds at one of its sleeps.
    void run(std::function<bool()> until)
    {
        done = std::move(until);
        key_cache::timing kt;
        kt.now = [this] { return key_cache::clock::time_point(std::chrono::microseconds(now_us)); };
        kt.sleep = [this](key_cache::clock::duration d) {
            return advance(std::chrono::duration_cast<std::chrono::milliseconds>(d));
        };
        keys = std::make_unique<key_cache>(
            ioc.get_executor(),
            [this](const key_target&) { return fetch(); },
            cfg, metrics, kt);
        reverifier::timing rt;
        rt.now_us = [this] { return now_us; };
        rt.sleep = [this](std::chrono::milliseconds d) { return advance(d); };
        live = std::make_unique<live_value<verify_settings>>(cfg);  // cfg as the test left it
        rev = std::make_unique<reverifier>(ioc.get_executor(), *live, policy, *keys, *events, counts, metrics, rt);
        rev->start();
        ioc.run();
        EXPECT_LE(now_us, give_up_at) << "the condition never held";
    }

    store::stored_event row(std::int64_t id)
    {
        auto db = store::event_db::open(dir.file("events.db"), store::db_access::read_only);
        EXPECT_TRUE(db);
        auto r = (*db)->get(id, false);
        EXPECT_TRUE(r && *r);
        return r && *r ? **r : store::stored_event{};
    }

    std::uint64_t outcome(std::string_view what) const
    {
        return metrics.counter_value("cwhook_reverify_total", "outcome=\"" + std::string(what) + "\"");
    }
};

// min * 2^attempts, capped at max, +-20% jitter; a due row is picked up at the loop's next
// wake-up (every pending_retry_min, at most a second), so never early and at most that late.
TEST_F(Reverifier, TransientFailuresAreRetriedWithCappedExponentialBackoff)
{
    cfg.pending_max_age = 3600s;
    const auto id = add_pending();
    run([&] { return fetched_at.size() >= 7; });
    ASSERT_GE(fetched_at.size(), 7u);
    EXPECT_EQ(fetched_at[0], t0);  // due at once
    const std::int64_t base[] = {2, 4, 8, 8, 8, 8};
    for (std::size_t i = 0; i + 1 < 7; ++i) {
        SCOPED_TRACE(i);
        const auto gap = fetched_at[i + 1] - fetched_at[i];
        EXPECT_GE(gap, base[i] * second * 8 / 10);
        EXPECT_LE(gap, base[i] * second * 12 / 10 + second);
    }
    EXPECT_GE(outcome("retry"), 6u);
    EXPECT_EQ(outcome("failed"), 0u);
    EXPECT_EQ(counts.pending.load(), 1);
    const auto r = row(id);
    EXPECT_EQ(r.record.status, event_status::pending);
    EXPECT_EQ(r.record.verify_reason, "key_fetch_failed");
    EXPECT_GE(r.verify_attempts, 6);
}

TEST_F(Reverifier, PendingRowFailsOnceOlderThanPendingMaxAge)
{
    cfg.pending_max_age = 30s;
    const auto id = add_pending();
    std::int64_t settled_at = 0;
    run([&] {
        if (settled_at == 0 && counts.pending.load() == 0) {
            settled_at = now_us;
        }
        return settled_at != 0 && now_us > settled_at + 600 * second;  // and then some quiet time
    });
    ASSERT_NE(settled_at, 0);
    ASSERT_GE(fetched_at.size(), 2u);
    // Every attempt but the last was within the age; the last found the row too old.
    EXPECT_LE(fetched_at[fetched_at.size() - 2], t0 + 30 * second);
    EXPECT_GT(fetched_at.back(), t0 + 30 * second);
    EXPECT_LE(fetched_at.back(), t0 + (30 + 8 * 12 / 10 + 1) * second);
    EXPECT_EQ(outcome("failed"), 1u);
    EXPECT_EQ(outcome("retry"), fetched_at.size() - 1);
    EXPECT_EQ(counts.failed.load(), 1);
    const auto r = row(id);
    EXPECT_EQ(r.record.status, event_status::failed);
    EXPECT_EQ(r.record.verify_reason, "key_fetch_gave_up");
}

TEST_F(Reverifier, RowIsVerifiedOnceTheKeyServerAnswers)
{
    cfg.pending_max_age = 3600s;
    script = {result<crypto::key_digest>{errc::key_fetch_failed}, result<crypto::key_digest>{errc::key_fetch_failed}};
    answer = crypto::digest_signing_key(signing_key);
    const auto id = add_pending();
    run([&] { return counts.pending.load() == 0; });
    EXPECT_EQ(fetched_at.size(), 3u);
    EXPECT_EQ(outcome("retry"), 2u);
    EXPECT_EQ(outcome("verified"), 1u);
    EXPECT_EQ(row(id).record.status, event_status::verified);
}

// A definitive answer (the key server has no such key) settles the row at once.
TEST_F(Reverifier, KeyUnavailableFailsTheRowWithoutRetry)
{
    cfg.pending_max_age = 3600s;
    answer = errc::key_unavailable;
    const auto id = add_pending();
    run([&] { return counts.pending.load() == 0; });
    EXPECT_EQ(fetched_at.size(), 1u);
    EXPECT_EQ(outcome("retry"), 0u);
    EXPECT_EQ(outcome("failed"), 1u);
    const auto r = row(id);
    EXPECT_EQ(r.record.status, event_status::failed);
    EXPECT_EQ(r.record.verify_reason, "key_unavailable");
}

} // namespace
} // namespace cwhook::callback
