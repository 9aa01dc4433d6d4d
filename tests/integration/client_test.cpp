// The shared outbound client against a scripted server (the project's own http::server on
// 127.0.0.1:0): keep-alive reuse, per-step deadlines, and the retry policy (which answers are
// retried, how often, how long it waits - recorded through an injected sleep, so no test
// waits for real backoff).
#include "support/harness.hpp"

#include "client/https_client.hpp"
#include "core/metrics.hpp"
#include "crypto/tls.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace cwhook::test {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Answers /r with the next scripted status (200 once the script is empty).
class scripted_server {
public:
    struct step {
        unsigned status = 200;
        std::string retry_after;
        milliseconds delay{0};

        step() = default;
        step(unsigned s, std::string after = {}, milliseconds d = milliseconds{0}) // NOLINT(google-explicit-constructor)
            : status(s), retry_after(std::move(after)), delay(d)
        {
        }
    };

    explicit scripted_server(milliseconds idle_timeout = 60s)
    {
        routes_ = std::make_shared<cwhook::http::router>();
        for (const auto verb : {bhttp::verb::get, bhttp::verb::post, bhttp::verb::patch, bhttp::verb::delete_}) {
            routes_->add(verb, "/r", [this](cwhook::http::request& req) { return answer(req); });
        }
        cwhook::http::settings s;
        s.listen = {"127.0.0.1:0"};
        s.idle_timeout = idle_timeout;
        server_ = std::make_unique<cwhook::http::server>(ioc_, s, routes_, nullptr, metrics_);
        auto started = server_->start();
        CWHOOK_CHECK(started.has_value());
        port_ = server_->plain_endpoints().at(0).port();
        thread_ = std::thread([this] { ioc_.run(); });
    }

    ~scripted_server()
    {
        std::promise<bool> drained;
        server_->shutdown([&drained](bool ok) { drained.set_value(ok); });
        drained.get_future().wait();
        work_.reset();
        ioc_.stop();
        thread_.join();
    }

    void script(std::vector<step> steps)
    {
        std::lock_guard lock(mutex_);
        steps_.assign(steps.begin(), steps.end());
    }
    int hits() const { return hits_.load(); }
    std::uint16_t port() const { return port_; }
    std::size_t open_connections() const { return server_->open_connections(); }

private:
    net::awaitable<cwhook::http::response> answer(cwhook::http::request& req)
    {
        hits_.fetch_add(1);
        step s;
        {
            std::lock_guard lock(mutex_);
            if (!steps_.empty()) {
                s = steps_.front();
                steps_.pop_front();
            }
        }
        if (s.delay.count() > 0) {
            net::steady_timer t(ioc_, s.delay);
            co_await t.async_wait(net::use_awaitable);
        }
        auto res = cwhook::http::json_response(s.status, R"({"ok":true})", req.msg.version());
        if (!s.retry_after.empty()) {
            res.set("Retry-After", s.retry_after);
        }
        co_return res;
    }

    net::io_context ioc_;
    net::executor_work_guard<net::io_context::executor_type> work_{ioc_.get_executor()};
    metrics::registry metrics_;
    std::shared_ptr<cwhook::http::router> routes_;
    std::unique_ptr<cwhook::http::server> server_;
    std::thread thread_;
    std::uint16_t port_ = 0;
    std::mutex mutex_;
    std::deque<step> steps_;
    std::atomic<int> hits_{0};
};

class Client : public ::testing::Test {
protected:
    void SetUp() override { clear_recorded_sleeps(); }

    client::request req(const scripted_server& s, std::string method = "GET")
    {
        client::request r;
        r.method = std::move(method);
        r.tls = false;
        r.host = "127.0.0.1";
        r.port = s.port();
        r.target = "/r";
        return r;
    }

    client::options opts(unsigned attempts = 4)
    {
        client::options o;
        o.allow_private = true;
        o.timeout = 10s;
        o.retry.max_attempts = attempts;
        o.retry.sleep = record_sleep;
        return o;
    }

    client::fetch_result fetch(const client::request& r, const client::options& o)
    {
        auto fut = net::co_spawn(ioc, http.fetch(r, o), net::use_future);
        ioc.restart();
        ioc.run();
        return fut.get();
    }

    std::uint64_t retries(std::string_view reason)
    {
        return metrics.counter_value("cwhook_client_retries_total", fmt::format("reason=\"{}\"", reason));
    }

    net::io_context ioc;
    metrics::registry metrics;
    client::https_client http{ioc.get_executor(), nullptr, &metrics};
};

TEST_F(Client, KeepAliveReusesOneConnectionPerHost)
{
    scripted_server server;
    for (int i = 0; i < 3; ++i) {
        auto r = fetch(req(server), opts());
        ASSERT_TRUE(r) << r.error().detail;
        EXPECT_EQ(r->status, 200u);
        EXPECT_EQ(r->reused, i > 0);
    }
    EXPECT_EQ(metrics.counter_value("cwhook_client_connections_opened_total"), 1u);
    EXPECT_EQ(metrics.counter_value("cwhook_client_connections_reused_total"), 2u);
    EXPECT_EQ(http.idle_connections(), 1u);
}

TEST_F(Client, WithoutKeepAliveEveryRequestOpensAConnection)
{
    scripted_server server;
    auto o = opts();
    o.keep_alive = false;
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(fetch(req(server), o));
    }
    EXPECT_EQ(metrics.counter_value("cwhook_client_connections_opened_total"), 2u);
    EXPECT_EQ(http.idle_connections(), 0u);
}

TEST_F(Client, ConnectionClosedByTheServerWhileIdleIsReplacedTransparently)
{
    scripted_server server(100ms);
    ASSERT_TRUE(fetch(req(server), opts()));
    ASSERT_TRUE(eventually([&] { return server.open_connections() == 0; }));
    auto r = fetch(req(server), opts());
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->attempts, 1u);
    EXPECT_EQ(metrics.counter_value("cwhook_client_connections_opened_total"), 2u);
    EXPECT_EQ(server.hits(), 2);
}

TEST_F(Client, ServerErrorsAreRetriedWithExponentialBackoff)
{
    scripted_server server;
    server.script({{503}, {500}, {200}});
    auto r = fetch(req(server), opts());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->attempts, 3u);
    EXPECT_EQ(server.hits(), 3);
    EXPECT_EQ(retries("status_5xx"), 2u);
    const auto sleeps = recorded_sleeps();
    ASSERT_EQ(sleeps.size(), 2u);
    EXPECT_GE(sleeps[0], 50ms);
    EXPECT_LE(sleeps[0], 100ms);
    EXPECT_GE(sleeps[1], 100ms);
    EXPECT_LE(sleeps[1], 200ms);
}

TEST_F(Client, TooManyRequestsWaitsForRetryAfter)
{
    scripted_server server;
    server.script({{429, "2"}, {200}});
    auto r = fetch(req(server), opts());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(server.hits(), 2);
    EXPECT_EQ(retries("status_429"), 1u);
    EXPECT_EQ(recorded_sleeps(), std::vector<milliseconds>{2000ms});
}

TEST_F(Client, RetryAfterBeyondTheBudgetIsReturnedNotWaited)
{
    scripted_server server;
    server.script({{429, "3600"}, {200}});
    auto r = fetch(req(server), opts());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429u);
    EXPECT_EQ(server.hits(), 1);
    EXPECT_TRUE(recorded_sleeps().empty());
}

TEST_F(Client, OtherClientErrorsAreNeverRetried)
{
    scripted_server server;
    for (const unsigned status : {400u, 401u, 403u, 404u, 409u}) {
        server.script({{status}, {200}});
        const int before = server.hits();
        auto r = fetch(req(server), opts());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status);
        EXPECT_EQ(r->attempts, 1u);
        EXPECT_EQ(server.hits() - before, 1);
    }
    EXPECT_TRUE(recorded_sleeps().empty());
}

TEST_F(Client, GivesUpAfterMaxAttemptsWithTheLastAnswer)
{
    scripted_server server;
    server.script({{503}, {503}, {503}, {503}, {200}});
    auto r = fetch(req(server), opts(3));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503u);
    EXPECT_EQ(r->attempts, 3u);
    EXPECT_EQ(server.hits(), 3);
}

TEST_F(Client, PostIsNotRetriedAfterItReachedTheServer)
{
    scripted_server server;
    server.script({{503}, {200}});
    auto r = fetch(req(server, "POST"), opts());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503u);
    EXPECT_EQ(server.hits(), 1);
}

TEST_F(Client, PostIsRetriedWhenTheCallerSaysSo)
{
    scripted_server server;
    server.script({{503}, {200}});
    auto o = opts();
    o.retry.retry_non_idempotent = true;
    auto r = fetch(req(server, "POST"), o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(server.hits(), 2);
}

TEST_F(Client, RefusedConnectionsAreRetriedEvenForPost)
{
    std::uint16_t port = 0;
    {
        scripted_server gone; // a port that was just free and is closed again
        port = gone.port();
    }
    client::request r;
    r.method = "POST";
    r.tls = false;
    r.host = "127.0.0.1";
    r.port = port;
    r.target = "/r";
    auto res = fetch(r, opts(3));
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code, client::errc::connect_failed);
    EXPECT_NE(res.error().detail.find("connect: "), std::string::npos) << res.error().detail;
    EXPECT_EQ(retries("transport"), 2u);
    EXPECT_EQ(recorded_sleeps().size(), 2u);
}

TEST_F(Client, ExchangeDeadlineCutsASlowAnswer)
{
    scripted_server server;
    server.script({{200, "", 3000ms}});
    auto o = opts(1);
    o.exchange_timeout = 100ms;
    auto r = fetch(req(server), o);
    ASSERT_FALSE(r);  // the answer would have come after 3 s: the deadline cut it
    EXPECT_EQ(r.error().code, client::errc::timed_out);
    EXPECT_EQ(r.error().detail, "read timed out");
}

TEST_F(Client, SpecialAddressIsRefusedWithoutRetry)
{
    scripted_server server;
    auto o = opts(3);
    o.allow_private = false;
    auto r = fetch(req(server), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, client::errc::special_address);
    EXPECT_EQ(r.error().detail, "127.0.0.1 resolves only to special-purpose addresses");
    EXPECT_EQ(server.hits(), 0);
    EXPECT_EQ(retries("transport"), 0u);
}

TEST_F(Client, OversizedAnswerIsResponseTooLarge)
{
    scripted_server server;
    auto o = opts(3);
    o.max_response_bytes = 4;
    auto r = fetch(req(server), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, client::errc::response_too_large);
    EXPECT_EQ(server.hits(), 1);
}

TEST_F(Client, CertificateForAnotherNameIsRejectedWithoutRetry)
{
    temp_dir dir;
    const auto wrong = make_cert(dir, "wrong", {"other.example"});
    fake_key_server impostor(wrong);
    auto tls = crypto::make_client_context(wrong.cert); // trusted, but not issued for 127.0.0.1
    ASSERT_TRUE(tls) << tls.error().message;
    client::https_client secure{ioc.get_executor(), *tls, &metrics};
    client::request r;
    r.host = "127.0.0.1";
    r.port = impostor.port();
    r.target = "/key";
    const auto o = opts(3);  // fetch takes it by reference: it must outlive the coroutine
    auto fut = net::co_spawn(ioc, secure.fetch(r, o), net::use_future);
    ioc.restart();
    ioc.run();
    const auto res = fut.get();
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code, client::errc::certificate_rejected);
    EXPECT_EQ(res.error().detail, "TLS: certificate rejected: IP address mismatch");
    EXPECT_EQ(impostor.fetches(), 0);
    EXPECT_EQ(retries("transport"), 0u);
}

TEST_F(Client, NoRetryPolicyMeansOneAttempt)
{
    scripted_server server;
    server.script({{503}, {200}});
    auto o = opts();
    o.retry = {};
    auto r = fetch(req(server), o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503u);
    EXPECT_EQ(server.hits(), 1);
}

} // namespace
} // namespace cwhook::test
