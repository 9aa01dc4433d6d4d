// The forwarder against a real downstream server (tests/support/sink.hpp) and a real SQLite
// store, with an injected clock: a lane's sleep advances the clock instead of waiting, so
// retry schedules of minutes and hours run in milliseconds. Requests themselves are real.
#include "forward/forwarder.hpp"

#include "core/time.hpp"
#include "crypto/standard_webhooks.hpp"
#include "crypto/tls.hpp"
#include "store/event_db.hpp"
#include "store/event_store.hpp"
#include "store/outbox.hpp"

#include "support/eventually.hpp"
#include "support/sink.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace cwhook;
namespace net = boost::asio;

namespace {

constexpr std::string_view secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::int64_t header_int(const test::sink_request& r, const std::string& name)
{
    return std::stoll(r.header(name));
}

class Forwarder : public ::testing::Test {
protected:
    void SetUp() override
    {
        store::settings s;
        s.path = dir_.file("events.db");
        auto st = store::event_store::open(s);
        ASSERT_TRUE(st) << st.error();
        store_ = std::move(*st);
        path_ = s.path;
        auto tls = crypto::make_client_context("");
        ASSERT_TRUE(tls);
        client_ = std::make_unique<client::https_client>(ioc_.get_executor(), *tls);
        thread_ = std::thread([this] { ioc_.run(); });
        cfg_.poll_interval = 60s;
        cfg_.jitter = 0.2;
        cfg_.breaker_threshold = 0;
    }

    void TearDown() override
    {
        if (fwd_) {
            fwd_->stop();
        }
        store_->stop();
        work_.reset();
        ioc_.stop();
        thread_.join();
        fwd_.reset();
    }

    forward::destination dest(const test::sink& s, std::string name = "sink")
    {
        forward::destination d;
        d.name = std::move(name);
        d.url = s.url();
        d.secret = std::string(secret);
        d.timeout = 2s;
        return d;
    }

    // The injected clock: starts now; a sleep moves it on once no request is on the wire (a
    // real request takes real time, which the clock must not outrun) and yields.
    forward::forwarder::timing timing()
    {
        forward::forwarder::timing t;
        t.now_us = [this] { return now_.load(); };
        t.sleep = [this](std::chrono::milliseconds d) -> net::awaitable<void> {
            auto ex = co_await net::this_coro::executor;
            while (fwd_ && fwd_->requests_in_flight() > 0) {
                net::steady_timer tick(ex, 1ms);
                co_await tick.async_wait(net::use_awaitable);
            }
            now_ += std::chrono::duration_cast<std::chrono::microseconds>(d).count();
            co_await net::post(ex, net::use_awaitable);
        };
        t.random = [] { return 0.5; }; // jitter factor exactly 1
        return t;
    }

    void start(std::vector<forward::destination> ds)
    {
        fwd_ = std::make_unique<forward::forwarder>(ioc_.get_executor(), *store_, *client_, metrics_, timing());
        auto r = fwd_->configure(cfg_, ds);
        ASSERT_TRUE(r) << r.error();
        store_->on_forwardable([f = fwd_.get()] { f->wake(); });
        fwd_->start();
    }

    std::int64_t insert(std::string key, std::string type = "ticket", std::int64_t entity = 1,
                        std::string action = "updated")
    {
        store::event_record ev;
        ev.received_at_us = now_us();
        ev.status = store::event_status::verified;
        ev.dedupe_key = "m:" + key;
        ev.body_sha256 = std::string(64, 'a');
        ev.body = fmt::format(R"({{"MessageId":"{}","Action":"{}","Type":"{}","ID":{},"Entity":"{{\"id\":{}}}"}})", key,
                              action, type, entity, entity);
        ev.method = "POST";
        ev.content_type = "application/json";
        ev.type = std::move(type);
        ev.action = std::move(action);
        ev.entity_id = entity;
        auto done = std::make_shared<std::promise<result<store::insert_outcome>>>();
        auto f = done->get_future();
        EXPECT_TRUE(store_->submit_event(ev, [done](result<store::insert_outcome> r) { done->set_value(r); }));
        auto r = f.get();
        EXPECT_TRUE(r);
        return r ? r->id : 0;
    }

    std::unique_ptr<store::event_db> db()
    {
        auto d = store::event_db::open(path_, store::db_access::read_write);
        EXPECT_TRUE(d) << d.error();
        return std::move(*d);
    }

    std::optional<store::delivery_row> only_delivery(std::int64_t event_id)
    {
        auto rows = db()->deliveries_of(event_id);
        if (!rows || rows->size() != 1) {
            return std::nullopt;
        }
        return rows->front();
    }

    bool settles(std::int64_t event_id, store::delivery_state state)
    {
        return test::eventually([&] {
            auto d = only_delivery(event_id);
            return d && d->state == state;
        });
    }

    test::temp_dir dir_;
    std::string path_;
    std::unique_ptr<store::event_store> store_;
    net::io_context ioc_;
    net::executor_work_guard<net::io_context::executor_type> work_{ioc_.get_executor()};
    std::thread thread_;
    std::unique_ptr<client::https_client> client_;
    metrics::registry metrics_;
    forward::settings cfg_;
    std::unique_ptr<forward::forwarder> fwd_;
    std::atomic<std::int64_t> now_{now_us()};
};

} // namespace

TEST_F(Forwarder, ADestinationFailingItsFirstAttemptsGetsTheEventSignedOnTheSchedule)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t n) {
        test::sink_answer a;
        a.status = n <= 2 ? 500 : 204;
        return a;
    });
    start({dest(s)});
    const auto id = insert("e1");
    ASSERT_TRUE(settles(id, store::delivery_state::done));
    const auto got = s.requests();
    ASSERT_EQ(got.size(), 3u);
    const auto key = crypto::webhook_key(secret);
    ASSERT_TRUE(key);
    for (std::size_t i = 0; i < got.size(); ++i) {
        const auto& r = got[i];
        EXPECT_EQ(r.header("webhook-id"), got[0].header("webhook-id")); // stable across attempts
        EXPECT_EQ(header_int(r, "x-cwhook-attempt"), static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(header_int(r, "x-cwhook-event-id"), id);
        EXPECT_EQ(r.header("x-cwhook-type"), "ticket");
        const auto sig =
            crypto::webhook_signature(*key, r.header("webhook-id"), header_int(r, "webhook-timestamp"), r.body);
        EXPECT_EQ(r.header("webhook-signature"), sig);
    }
    // 0 s, then 5 s and 5 min (the default schedule, jitter factor 1): attempts are at least that far apart.
    const auto t1 = header_int(got[0], "webhook-timestamp");
    const auto t2 = header_int(got[1], "webhook-timestamp");
    const auto t3 = header_int(got[2], "webhook-timestamp");
    EXPECT_GE(t2 - t1, 5);
    EXPECT_GE(t3 - t2, 300);
    const auto row = only_delivery(id);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->attempts, 3);
    ASSERT_EQ(row->history.size(), 3u);
    EXPECT_EQ(row->history[0].http_status, 500);
    EXPECT_EQ(row->history[2].http_status, 204);
    EXPECT_EQ(metrics_.counter_value("cwhook_forward_successes_total", "destination=\"sink\""), 1u);
    EXPECT_EQ(metrics_.counter_value("cwhook_forward_failures_total", "destination=\"sink\",status=\"500\""), 2u);
}

TEST_F(Forwarder, RetryAfterIsHonouredWithinItsBound)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t n) {
        test::sink_answer a;
        if (n == 1) {
            a.status = 429;
            a.headers["Retry-After"] = "120";
        } else if (n == 2) {
            a.status = 503;
            a.headers["Retry-After"] = "999999"; // beyond max_retry_after: clamped
        }
        return a;
    });
    cfg_.max_retry_after = 600s;
    start({dest(s)});
    const auto id = insert("e1");
    ASSERT_TRUE(settles(id, store::delivery_state::done));
    const auto got = s.requests();
    ASSERT_EQ(got.size(), 3u);
    const auto t1 = header_int(got[0], "webhook-timestamp");
    const auto t2 = header_int(got[1], "webhook-timestamp");
    const auto t3 = header_int(got[2], "webhook-timestamp");
    EXPECT_GE(t2 - t1, 120); // not the schedule's 5 s
    EXPECT_GE(t3 - t2, 600);
    EXPECT_LT(t3 - t2, 999999);
}

TEST_F(Forwarder, TheLastFailedAttemptMakesADeadLetter)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t) {
        test::sink_answer a;
        a.status = 500;
        return a;
    });
    auto d = dest(s);
    d.retries = {0ms, 5s, 5min};
    start({d});
    const auto id = insert("e1");
    ASSERT_TRUE(settles(id, store::delivery_state::dead));
    EXPECT_EQ(s.count(), 3u);
    EXPECT_EQ(metrics_.counter_value("cwhook_forward_dead_total", "destination=\"sink\""), 1u);
    // An operator retries it: a fresh schedule.
    s.respond([](const test::sink_request&, std::size_t) { return test::sink_answer{}; });
    auto n = db()->retry_deliveries(
        {},
        [] {
            store::delivery_filter f;
            f.state = store::delivery_state::dead;
            return f;
        }(),
        false);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1);
    fwd_->wake();
    ASSERT_TRUE(settles(id, store::delivery_state::done));
    EXPECT_EQ(s.count(), 4u);
}

TEST_F(Forwarder, ADestinationSlowerThanItsTimeoutIsRetried)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t n) {
        test::sink_answer a;
        if (n == 1) {
            a.delay = 3s;
        }
        return a;
    });
    auto d = dest(s);
    d.timeout = 300ms;
    start({d});
    const auto id = insert("e1");
    ASSERT_TRUE(settles(id, store::delivery_state::done));
    const auto row = only_delivery(id);
    ASSERT_TRUE(row);
    ASSERT_EQ(row->history.size(), 2u);
    EXPECT_EQ(row->history[0].http_status, 0);
    EXPECT_FALSE(row->history[0].error.empty());
    EXPECT_EQ(metrics_.counter_value("cwhook_forward_failures_total", "destination=\"sink\",status=\"timeout\""), 1u);
}

TEST_F(Forwarder, ADestinationThatIsDownGetsItsEventsOnceItIsBack)
{
    std::uint16_t port = 0;
    {
        test::sink probe;
        port = probe.port();
    } // nothing listens there now
    forward::destination d;
    d.name = "sink";
    d.url = fmt::format("http://127.0.0.1:{}/hook", port);
    d.secret = std::string(secret);
    d.timeout = 1s;
    start({d});
    const auto id = insert("e1");
    ASSERT_TRUE(test::eventually([&] {
        auto r = only_delivery(id);
        return r && r->attempts >= 2 && r->state == store::delivery_state::failing;
    }));
    test::sink back(port);
    ASSERT_TRUE(settles(id, store::delivery_state::done));
    EXPECT_EQ(back.count(), 1u);
    EXPECT_GE(metrics_.counter_value("cwhook_forward_failures_total", "destination=\"sink\",status=\"connect\""), 2u);
}

TEST_F(Forwarder, GonePausesTheDestinationUntilAnOperatorResumesIt)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t n) {
        test::sink_answer a;
        a.status = n == 1 ? 410 : 200;
        return a;
    });
    start({dest(s)});
    const auto first = insert("e1");
    ASSERT_TRUE(test::eventually([&] {
        auto ds = db()->destinations();
        return ds && !ds->empty() && ds->front().paused && ds->front().pause_reason == "gone";
    }));
    const auto second = insert("e2");
    fwd_->wake();
    // Paused: a full poll round (the clock moves on a minute each) sends nothing more.
    const auto before = now_.load();
    ASSERT_TRUE(test::eventually([&] { return now_.load() > before + 600'000'000; }));
    EXPECT_EQ(s.count(), 1u);
    ASSERT_TRUE(db()->set_destination_paused("sink", false, "", now_us()));
    fwd_->wake();
    ASSERT_TRUE(settles(first, store::delivery_state::done));
    ASSERT_TRUE(settles(second, store::delivery_state::done));
}

TEST_F(Forwarder, EntityOrderingDeliversOneEntitysEventsInOrder)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t n) {
        test::sink_answer a;
        a.status = n == 1 ? 500 : 200; // the first event fails once: its successors wait
        return a;
    });
    auto d = dest(s);
    d.order = forward::ordering::entity;
    d.concurrency = 8;
    start({d});
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 6; ++i) {
        ids.push_back(insert(fmt::format("o{}", i), "ticket", 77));
    }
    for (auto id : ids) {
        ASSERT_TRUE(settles(id, store::delivery_state::done));
    }
    std::vector<std::int64_t> order;
    for (const auto& r : s.requests()) {
        const auto id = header_int(r, "x-cwhook-event-id");
        if (order.empty() || order.back() != id) {
            order.push_back(id);
        }
    }
    EXPECT_EQ(order, ids);
}

TEST_F(Forwarder, FiltersChooseWhatEachDestinationGets)
{
    test::sink tickets;
    test::sink companies;
    auto a = dest(tickets, "tickets");
    a.types = {"ticket"};
    auto b = dest(companies, "companies");
    b.types = {"company"};
    b.actions = {"added"};
    start({a, b});
    const auto t = insert("t1", "ticket", 1);
    const auto c1 = insert("c1", "company", 2, "added");
    const auto c2 = insert("c2", "company", 3, "updated");
    ASSERT_TRUE(settles(t, store::delivery_state::done));
    ASSERT_TRUE(settles(c1, store::delivery_state::done));
    EXPECT_TRUE(db()->deliveries_of(c2)->empty());
    EXPECT_EQ(tickets.count(), 1u);
    EXPECT_EQ(companies.count(), 1u);
}

TEST_F(Forwarder, AReloadAddsAndRemovesDestinationsWithoutDroppingRows)
{
    test::sink one;
    test::sink two;
    start({dest(one, "one")});
    const auto e1 = insert("e1");
    ASSERT_TRUE(settles(e1, store::delivery_state::done));
    auto r = fwd_->configure(cfg_, {dest(one, "one"), dest(two, "two")});
    ASSERT_TRUE(r) << r.error();
    const auto e2 = insert("e2");
    ASSERT_TRUE(test::eventually([&] { return two.count() == 1u && one.count() == 2u; }));
    // "two" leaves; an event it still owed is cancelled, not dropped.
    two.respond([](const test::sink_request&, std::size_t) {
        test::sink_answer a;
        a.status = 500;
        return a;
    });
    const auto e3 = insert("e3");
    ASSERT_TRUE(test::eventually([&] { return two.count() >= 2u; }));
    r = fwd_->configure(cfg_, {dest(one, "one")});
    ASSERT_TRUE(r) << r.error();
    auto rows = db()->deliveries_of(e3);
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[1].destination, "two");
    EXPECT_EQ((*rows)[1].state, store::delivery_state::cancelled);
    static_cast<void>(e2);
}

TEST_F(Forwarder, TheRateBoundsRequestsPerSecond)
{
    test::sink s;
    auto d = dest(s);
    d.rate = 2; // burst 2, then one every 500 ms (of the injected clock)
    d.concurrency = 16;
    start({d});
    for (int i = 0; i < 8; ++i) {
        insert(fmt::format("r{}", i), "ticket", i);
    }
    ASSERT_TRUE(s.wait_for(8));
    std::vector<std::int64_t> at;
    for (const auto& r : s.requests()) {
        at.push_back(header_int(r, "webhook-timestamp"));
    }
    std::sort(at.begin(), at.end());
    // 8 requests at 2/s with a burst of 2 span at least 3 s.
    EXPECT_GE(at.back() - at.front(), 3);
}
