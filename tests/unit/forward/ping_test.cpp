// The ping of `cwhook destinations test` against a real downstream server.
#include "forward/ping.hpp"

#include "crypto/standard_webhooks.hpp"
#include "crypto/tls.hpp"

#include "support/sink.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

using namespace std::chrono_literals;
using namespace cwhook;
namespace net = boost::asio;

namespace {

constexpr std::string_view secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::int64_t at = 1'764'302'400'123'456; // 2025-11-28T04:00:00.123456Z

// An answer of this status, the rest as the sink's defaults.
test::sink_answer answer(unsigned status)
{
    test::sink_answer a;
    a.status = status;
    return a;
}

forward::destination dest(const test::sink& s)
{
    forward::destination d;
    d.name = "crm";
    d.url = s.url();
    d.secret = std::string(secret);
    d.timeout = 2s;
    d.body = forward::body_format::event; // the ping goes as it is all the same
    return d;
}

net::awaitable<void> ping_into(client::https_client* client, forward::destination d, forward::ping_result* out)
{
    *out = co_await forward::ping(*client, std::move(d), at);
}

forward::ping_result run_ping(forward::destination d)
{
    net::io_context ioc;
    auto tls = crypto::make_client_context("");
    EXPECT_TRUE(tls);
    client::https_client client(ioc.get_executor(), *tls);
    forward::ping_result out;
    net::co_spawn(ioc, ping_into(&client, std::move(d), &out), [](const std::exception_ptr& e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    ioc.run();
    return out;
}

} // namespace

TEST(Ping, SendsASignedPingDocument)
{
    test::sink s;
    const auto r = run_ping(dest(s));
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.http_status, 200);
    EXPECT_EQ(r.error, "");
    EXPECT_GT(r.latency_us, 0);
    ASSERT_EQ(s.count(), 1u);
    const auto req = s.requests().front();
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.target, "/hook");
    EXPECT_EQ(req.body, R"({"type":"cwhook.ping","destination":"crm","at":"2025-11-28T04:00:00.123456Z"})");
    EXPECT_EQ(req.header("content-type"), "application/json");
    EXPECT_EQ(req.header("x-cwhook-type"), "ping");
    EXPECT_EQ(req.header("x-cwhook-action"), "test");
    EXPECT_EQ(req.header("x-cwhook-source"), "test");
    EXPECT_EQ(req.header("x-cwhook-event-id"), "0");
    EXPECT_EQ(req.header("webhook-timestamp"), "1764302400");
    const auto key = crypto::webhook_key(secret);
    ASSERT_TRUE(key);
    EXPECT_EQ(req.header("webhook-signature"),
              crypto::webhook_signature(*key, req.header("webhook-id"), 1'764'302'400, req.body));
}

TEST(Ping, ANon2xxAnswerIsAFailureNamingTheStatus)
{
    test::sink s;
    s.respond([](const test::sink_request&, std::size_t) { return answer(503); });
    const auto r = run_ping(dest(s));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.http_status, 503);
    EXPECT_EQ(r.error, "HTTP 503");
}

TEST(Ping, NoAnswerIsAFailureWithItsReason)
{
    std::uint16_t port = 0;
    {
        test::sink gone;
        port = gone.port();
    }
    forward::destination d;
    d.name = "crm";
    d.url = fmt::format("http://127.0.0.1:{}/hook", port);
    d.secret = std::string(secret);
    d.timeout = 2s;
    const auto r = run_ping(d);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.http_status, 0);
    EXPECT_FALSE(r.error.empty());
}

TEST(Ping, ABadSecretSendsNothing)
{
    test::sink s;
    auto d = dest(s);
    d.secret = "whsec_!!";
    const auto r = run_ping(d);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error.rfind("secret: ", 0), 0u) << r.error;
    EXPECT_EQ(s.count(), 0u);
}
