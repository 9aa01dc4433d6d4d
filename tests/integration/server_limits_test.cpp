// The server's guards against hostile or greedy clients, over real sockets: request
// smuggling through Transfer-Encoding, one client taking every connection, and the
// keep-alive idle deadline.
#include "support/harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

namespace cwhook::test {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// A blocking client socket bound to `source` (any 127.0.0.0/8 address is this machine, so
// 127.0.0.2 is another client), with a receive timeout so a read never hangs the test.
class raw_client {
public:
    raw_client(const tcp::endpoint& server, std::string_view source = "127.0.0.1") : socket_(ioc_)
    {
        socket_.open(tcp::v4());
        socket_.bind(tcp::endpoint(net::ip::make_address(std::string(source)), 0));
        socket_.connect(server);
        timeval tv{10, 0};
        ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

    // A refused connection may already be closed by the server: that shows in the read.
    void write(std::string_view bytes)
    {
        boost::system::error_code ec;
        net::write(socket_, net::buffer(bytes), ec);
    }

    // Everything until the peer closes (or an error/timeout). closed: the read ended with EOF.
    std::string read_to_close(bool* closed)
    {
        std::string out;
        char buf[4096];
        for (;;) {
            boost::system::error_code ec;
            const auto n = socket_.read_some(net::buffer(buf), ec);
            out.append(buf, n);
            if (ec) {
                *closed = ec == net::error::eof || ec == net::error::connection_reset;
                return out;
            }
        }
    }

    // One response of a keep-alive exchange: headers plus a Content-Length body. Bytes of a
    // next response read along with it are kept for the next call.
    std::string read_response()
    {
        char buf[4096];
        for (;;) {
            const auto head_end = pending_.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const auto cl = pending_.find("Content-Length: ");
                const std::size_t length =
                    cl == std::string::npos || cl > head_end ? 0 : std::stoul(pending_.substr(cl + 16));
                if (pending_.size() >= head_end + 4 + length) {
                    auto out = pending_.substr(0, head_end + 4 + length);
                    pending_.erase(0, out.size());
                    return out;
                }
            }
            boost::system::error_code ec;
            const auto n = socket_.read_some(net::buffer(buf), ec);
            pending_.append(buf, n);
            if (ec) {
                return std::exchange(pending_, {});
            }
        }
    }

private:
    net::io_context ioc_;
    tcp::socket socket_;
    std::string pending_;
};

class ServerLimits : public ::testing::Test, protected receiver_env {};

std::string get_healthz()
{
    return "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
}

TEST_F(ServerLimits, TransferEncodingOtherThanChunkedIs400AndCloses)
{
    running_app app(options());
    const std::string variants[] = {
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: Chunked \r\n",
        "Transfer-Encoding: CHUNKED\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    };
    for (const auto& te : variants) {
        SCOPED_TRACE(te);
        raw_client c(app.http());
        // What follows the headers would be a second, smuggled request to a proxy that frames
        // the body differently.
        c.write("POST /callbacks HTTP/1.1\r\nHost: x\r\n" + te +
                "\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        bool closed = false;
        const auto answer = c.read_to_close(&closed);
        EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
        EXPECT_NE(answer.find("{\"error\":\"bad_transfer_encoding\""), std::string::npos) << answer;
        EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
        EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << "the smuggled request was served";
        EXPECT_TRUE(closed);
    }
    EXPECT_EQ(app.counter("cwhook_http_requests_refused_total", "reason=\"bad_transfer_encoding\""),
              std::size(variants));
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 0);
}

TEST_F(ServerLimits, ExactlyChunkedIsServed)
{
    running_app app(options());
    raw_client c(app.http());
    c.write("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get_healthz());
    const auto first = c.read_response();
    EXPECT_TRUE(first.starts_with("HTTP/1.1 200 ")) << first;
    const auto second = c.read_response(); // the same connection goes on
    EXPECT_TRUE(second.starts_with("HTTP/1.1 200 ")) << second;
    EXPECT_EQ(app.counter("cwhook_http_requests_refused_total", "reason=\"bad_transfer_encoding\""), 0u);
}

// Holds `n` connections from `source`, each having been served one request (so the server has
// certainly accepted and counted it).
std::vector<std::unique_ptr<raw_client>> hold(const tcp::endpoint& ep, std::string_view source, int n)
{
    std::vector<std::unique_ptr<raw_client>> out;
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<raw_client>(ep, source);
        c->write(get_healthz());
        const auto r = c->read_response();
        EXPECT_TRUE(r.starts_with("HTTP/1.1 200 ")) << source << " connection " << i << ": " << r;
        out.push_back(std::move(c));
    }
    return out;
}

TEST_F(ServerLimits, OneClientGetsItsShareAndOthersAreStillServed)
{
    running_app app(options());
    ASSERT_EQ(app.get().settings().server.max_connections_per_client, 64u);
    auto held = hold(app.http(), "127.0.0.1", 64);
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"per_client\""), 0u);

    // The 65th is closed at once, unanswered.
    raw_client over(app.http(), "127.0.0.1");
    over.write(get_healthz());
    bool closed = false;
    EXPECT_EQ(over.read_to_close(&closed), "");
    EXPECT_TRUE(closed);
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"per_client\""), 1u);

    // Another client is served, and the first client's own connections still are.
    raw_client other(app.http(), "127.0.0.2");
    other.write(get_healthz());
    EXPECT_TRUE(other.read_response().starts_with("HTTP/1.1 200 "));
    held.front()->write(get_healthz());
    EXPECT_TRUE(held.front()->read_response().starts_with("HTTP/1.1 200 "));

    // Once it lets one go, it may open another.
    held.pop_back();
    ASSERT_TRUE(eventually(
        [&] { return app.get().metrics().gauge_value("cwhook_open_connections") == 64; })); // 63 held + 127.0.0.2
    auto again = hold(app.http(), "127.0.0.1", 1);
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"per_client\""), 1u);
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"limit\""), 0u);
}

TEST_F(ServerLimits, TrustedProxiesAreExemptFromTheShare)
{
    running_app app(options([](auto& s) {
        s.server.max_connections_per_client = 4;
        s.server.trusted_proxies = {"127.0.0.3"};
    }));
    auto proxied = hold(app.http(), "127.0.0.3", 10);
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"per_client\""), 0u);
    auto direct = hold(app.http(), "127.0.0.1", 4);
    raw_client over(app.http(), "127.0.0.1");
    bool closed = false;
    over.write(get_healthz());
    EXPECT_EQ(over.read_to_close(&closed), "");
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"per_client\""), 1u);
}

TEST_F(ServerLimits, ShareChangesOnReload)
{
    running_app app(options());
    auto next = app.get().settings();
    next.server.max_connections_per_client = 2;
    ASSERT_TRUE(app.get().reload(next));
    auto held = hold(app.http(), "127.0.0.1", 2);
    raw_client over(app.http(), "127.0.0.1");
    bool closed = false;
    over.write(get_healthz());
    EXPECT_EQ(over.read_to_close(&closed), "");
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"per_client\""), 1u);
}

TEST_F(ServerLimits, IdleKeepAliveConnectionIsClosedAfterIdleTimeout)
{
    running_app app(options([](auto& s) { s.server.idle_timeout = 200ms; }));
    raw_client c(app.http());
    c.write(get_healthz());
    EXPECT_TRUE(c.read_response().starts_with("HTTP/1.1 200 "));
    bool closed = false;
    EXPECT_EQ(c.read_to_close(&closed), ""); // the server ends the wait, not the test
    EXPECT_TRUE(closed);
    // The socket closes as the deadline passes; the session counts it right after.
    EXPECT_TRUE(eventually([&] { return app.counter("cwhook_connection_timeouts_total") == 1; }));
}

} // namespace
} // namespace cwhook::test
