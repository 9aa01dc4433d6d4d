// Faults the receiver must survive: the daemon killed with SIGKILL under load, a full disk,
// slow-header clients and the connection cap, a key server answering garbage. Real processes
// and sockets on 127.0.0.1 port 0, temp SQLite files read back with a separate connection.
#include "support/harness.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using tcp = boost::asio::ip::tcp;
using mode = fake_key_server::mode;

std::int64_t ms_between(clock_type::time_point a, clock_type::time_point b)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

bool is_2xx(const http_result& r) { return r.status >= 200 && r.status < 300; }

// message_id -> status of every stored event.
std::map<std::string, std::string> stored_message_ids(const std::string& db)
{
    std::map<std::string, std::string> out;
    for (auto& row : query_events(db)) {
        out.emplace(std::move(row.message_id), std::move(row.status));
    }
    return out;
}

// Runs one statement on its own read-write connection, as an operator's sqlite3 shell would.
void exec_sql(const std::string& db, const std::string& sql)
{
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char* err = nullptr;
    const int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(h);
}

// 500 slow clients plus the server's side of each need far more than the usual 1024.
bool ensure_fd_limit(rlim_t wanted)
{
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return false;
    }
    if (rl.rlim_cur < 4096) {
        rl.rlim_cur = std::min<rlim_t>(4096, rl.rlim_max);
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur >= wanted;
}

// Owns a socket descriptor, so an early ASSERT return closes it before the app drains.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept
    {
        std::swap(fd_, o.fd_);
        return *this;
    }
    ~unique_fd()
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    int get() const { return fd_; }

private:
    int fd_ = -1;
};

// A raw blocking TCP connection (-1 on failure); the slow-client tests need byte control.
int connect_raw(const tcp::endpoint& ep)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(ep.port());
    sa.sin_addr.s_addr = htonl(ep.address().to_v4().to_uint());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Waits up to `timeout` for the peer to close; true on EOF or reset, false if still open.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout)
{
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        return false;
    }
    char buf[256];
    const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

class Fault : public ::testing::Test, protected receiver_env {
protected:
    http_call delivery(std::int64_t id, std::string_view message_id)
    {
        return signed_call(make_payload(keys.url(), id, message_id), keys.key());
    }

    std::string write_config()
    {
        const auto path = dir.file("cwhook.toml");
        write_file(path, config_for(db, keys.host_entry(), cert.cert) + "synchronous = \"full\"\n");
        return path;
    }
};

// ---- crash -------------------------------------------------------------------------------

TEST_F(Fault, KillNineUnderLoadLosesNoAcknowledgedDelivery)
{
    const auto config = write_config();
    constexpr int rounds = 6;
    constexpr int clients = 4;
    std::set<std::string> acknowledged;  // over every round so far
    std::int64_t next_entity = 1;

    for (int round = 0; round < rounds; ++round) {
        SCOPED_TRACE(fmt::format("round {}", round));
        child_process daemon({"serve", "--config", config});
        const auto port = daemon.wait_for_http_port();
        ASSERT_NE(port, 0) << daemon.output();
        const tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};

        std::mutex mutex;
        std::vector<std::string> acked;  // this round, guarded by mutex
        std::atomic<int> acked_count{0};
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < clients; ++t) {
            const std::int64_t first_entity = next_entity + t * 100'000;
            threads.emplace_back([&, t, first_entity] {
                for (std::int64_t i = 0; !stop.load(); ++i) {
                    const auto mid = fmt::format("kill-{}-{}-{}", round, t, i);
                    const auto r = send(ep, delivery(first_entity + i, mid), {}, 5s);
                    if (is_2xx(r)) {
                        std::lock_guard lock(mutex);
                        acked.push_back(mid);
                        acked_count.fetch_add(1);
                    }
                }
            });
        }
        next_entity += clients * 100'000;

        // Kill at a different depth each round. Draining the daemon's stderr while waiting
        // keeps its per-request log lines from filling the pipe and stalling it.
        const int threshold = 50 + 25 * round;
        const auto deadline = clock_type::now() + 20s;
        while (acked_count.load() < threshold && clock_type::now() < deadline) {
            (void)daemon.wait_for_line("\x01 no such line", 10ms);
        }
        daemon.signal(SIGKILL);
        const int status = daemon.wait();
        stop = true;
        for (auto& th : threads) {
            th.join();
        }
        ASSERT_EQ(status, 128 + SIGKILL);
        ASSERT_GE(acked_count.load(), threshold) << "the daemon never took the load:\n" << daemon.output();

        acknowledged.insert(acked.begin(), acked.end());
        EXPECT_EQ(integrity_check(db), "ok");
        const auto stored = stored_message_ids(db);
        std::size_t missing = 0;
        for (const auto& mid : acknowledged) {
            const auto it = stored.find(mid);
            if (it == stored.end()) {
                ++missing;
                ADD_FAILURE() << "acknowledged but not stored: " << mid;
            } else {
                EXPECT_EQ(it->second, "verified") << mid;
            }
        }
        ASSERT_EQ(missing, 0u);
    }

    // The file the last kill left behind opens cleanly and is served.
    child_process daemon({"serve", "--config", config});
    const auto port = daemon.wait_for_http_port();
    ASSERT_NE(port, 0) << daemon.output();
    const tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
    http_call ready;
    ready.method = "GET";
    ready.target = "/readyz";
    EXPECT_EQ(send(ep, ready).status, 200);
    EXPECT_EQ(send(ep, delivery(next_entity, "after-the-kills")).status, 200);
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait(), 0) << daemon.output();
    EXPECT_EQ(integrity_check(db), "ok");
    EXPECT_EQ(count_rows(db, "events", "message_id='after-the-kills'"), 1);
    EXPECT_GE(count_rows(db, "events"), static_cast<std::int64_t>(acknowledged.size()) + 1);
}

// ---- disk full ---------------------------------------------------------------------------

TEST_F(Fault, FullDiskGives429KeepsAcknowledgedRowsAndRecoversByItself)
{
    // A few dozen pages: the schema takes about a dozen, each delivery about a third of one.
    running_app app(options([](auto& s) { s.storage.max_page_count = 48; }));
    ASSERT_EQ(send(app.http(), delivery(1, "full-warm")).status, 200);  // key cached

    constexpr int clients = 4;
    std::mutex mutex;
    std::vector<std::string> acked{"full-warm"};
    std::vector<http_result> refusals;
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&, t] {
            // Each client stops at its first refusal; a bound keeps a never-full store finite.
            for (int i = 0; i < 2000; ++i) {
                const auto mid = fmt::format("full-{}-{}", t, i);
                const auto r = send(app.http(), delivery(10'000 * (t + 1) + i, mid));
                std::lock_guard lock(mutex);
                if (is_2xx(r)) {
                    acked.push_back(mid);
                } else {
                    refusals.push_back(r);
                    return;
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    ASSERT_EQ(refusals.size(), static_cast<std::size_t>(clients)) << "the database never filled up";
    for (const auto& r : refusals) {
        EXPECT_EQ(r.status, 429) << r.error << r.body;
        EXPECT_EQ(r.headers.count("retry-after"), 1u);
        EXPECT_NE(r.body.find("\"storage_unavailable\""), std::string::npos) << r.body;
    }
    EXPECT_GE(app.counter("cwhook_storage_unavailable_total"), static_cast<std::uint64_t>(clients));

    // One at a time (a batch of one may fit where a batch of four did not) up to the brim;
    // then the refused delivery, retried as Manage would, is refused again.
    http_result last;
    http_call refused;
    for (int i = 0; i < 2000; ++i) {
        refused = delivery(90'000 + i, fmt::format("full-seq-{}", i));
        last = send(app.http(), refused);
        if (!is_2xx(last)) {
            break;
        }
        acked.push_back(fmt::format("full-seq-{}", i));
    }
    ASSERT_EQ(last.status, 429) << last.error << last.body;
    EXPECT_EQ(send(app.http(), refused).status, 429);
    http_call health;  // full, yet alive
    health.method = "GET";
    health.target = "/healthz";
    EXPECT_EQ(send(app.http(), health).status, 200);

    const auto stored = stored_message_ids(db);
    for (const auto& mid : acked) {
        EXPECT_EQ(stored.count(mid), 1u) << "acknowledged but not stored: " << mid;
    }
    EXPECT_EQ(integrity_check(db), "ok");

    // An operator frees space; the writer reuses the freed pages with no restart.
    exec_sql(db, "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 20)");
    http_result resumed;
    EXPECT_TRUE(eventually([&] {
        resumed = send(app.http(), delivery(99'998, "full-resumed"));
        return resumed.status == 200;
    })) << resumed.status << " " << resumed.body;
    EXPECT_EQ(resumed.body.find("duplicate"), std::string::npos) << resumed.body;
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "message_id='full-resumed'"), 1);
    EXPECT_EQ(integrity_check(db), "ok");
}

// ---- slow clients and the connection cap ------------------------------------------------

TEST_F(Fault, SlowHeaderClientsAreCutAtTheHeaderTimeoutAndDoNotStallOthers)
{
    constexpr int slow = 500;
    if (!ensure_fd_limit(4 * slow)) {
        GTEST_SKIP() << "needs RLIMIT_NOFILE >= " << 4 * slow;
    }
    // Long enough that all of them are still connected when the normal delivery is sent.
    constexpr auto header_timeout = 10s;
    constexpr auto tick = 300ms;
    running_app app(options([&](auto& s) {
        s.server.header_timeout = header_timeout;
        s.server.max_connections = 600;
        s.server.max_connections_per_client = 600;  // every client here is 127.0.0.1; deadlines are the subject
    }));
    ASSERT_EQ(send(app.http(), delivery(1, "slow-warm")).status, 200);  // key cached
    const auto accepted_before = app.counter("cwhook_connections_accepted_total");
    const auto timeouts_before = app.counter("cwhook_connection_timeouts_total");

    struct slow_client {
        unique_fd sock;
        std::optional<clock_type::time_point> closed;
        std::size_t sent = 0;
    };
    // Headers that never end: a connection closes only when the server cuts it. A deadline
    // re-armed by every byte would never cut a client that sends one each tick.
    const std::string headers = "Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: " + std::string(4096, 'y');
    std::vector<slow_client> conns(slow);
    for (auto& c : conns) {
        c.sock = unique_fd(connect_raw(app.http()));
        ASSERT_GE(c.sock.get(), 0) << "connect: " << std::strerror(errno);
        ASSERT_TRUE(send_all(c.sock.get(), "POST /callbacks HTTP/1.1\r\n"));
    }
    ASSERT_TRUE(eventually([&] {
        return app.counter("cwhook_connections_accepted_total") >= accepted_before + slow;
    }));

    // A real delivery on a fresh connection while all 500 are trickling.
    auto normal = std::async(std::launch::async, [&] {
        const auto open = app.get().metrics().gauge_value("cwhook_open_connections");
        auto r = send(app.http(), delivery(2, "slow-normal"), {}, 120s);
        return std::pair{r, open};
    });

    // One byte per connection per tick; between ticks, wait on the sockets themselves.
    int open_count = slow;
    auto next_tick = clock_type::now() + tick;
    const auto hard_deadline = clock_type::now() + 120s;  // bounds a failing test only
    std::vector<pollfd> fds;
    std::vector<std::size_t> index;
    while (open_count > 0 && clock_type::now() < hard_deadline) {
        fds.clear();
        index.clear();
        for (std::size_t i = 0; i < conns.size(); ++i) {
            if (!conns[i].closed) {
                fds.push_back({conns[i].sock.get(), POLLIN, 0});
                index.push_back(i);
            }
        }
        const auto wait_ms = std::max<std::int64_t>(0, ms_between(clock_type::now(), next_tick));
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
        const auto now = clock_type::now();
        for (std::size_t k = 0; ready > 0 && k < fds.size(); ++k) {
            if (fds[k].revents == 0) {
                continue;
            }
            auto& c = conns[index[k]];
            char buf[512];
            const auto n = ::recv(c.sock.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                c.closed = now;
                --open_count;
            }
        }
        if (now >= next_tick) {
            for (auto& c : conns) {
                if (c.closed || c.sent >= headers.size()) {
                    continue;
                }
                if (::send(c.sock.get(), headers.data() + c.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
                    ++c.sent;
                } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    c.closed = now;  // the server is already gone
                    --open_count;
                }
            }
            next_tick += tick;
        }
    }

    const auto [r, open_then] = normal.get();
    EXPECT_EQ(r.status, 200) << r.error << r.body;
    EXPECT_GE(open_then, slow);  // the slow clients were all connected when it was sent

    EXPECT_EQ(open_count, 0) << "connections still open, although their header deadline passed";
    EXPECT_TRUE(eventually([&] {
        return app.counter("cwhook_connection_timeouts_total") == timeouts_before + slow;
    })) << app.counter("cwhook_connection_timeouts_total") - timeouts_before;
}

TEST_F(Fault, ConnectionOverTheCapIsClosedAtOnce)
{
    constexpr int cap = 4;
    running_app app(options([](auto& s) {
        s.server.max_connections = cap;
        s.server.header_timeout = std::chrono::hours(1);  // the first `cap` stay open
    }));
    std::vector<unique_fd> held;
    for (int i = 0; i < cap; ++i) {
        held.emplace_back(connect_raw(app.http()));
        ASSERT_GE(held.back().get(), 0);
    }
    ASSERT_TRUE(eventually([&] { return app.counter("cwhook_connections_accepted_total") == cap; }));
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"limit\""), 0u);

    const unique_fd extra(connect_raw(app.http()));
    ASSERT_GE(extra.get(), 0);
    // Closed at accept: no deadline of this server could close it within the hour.
    pollfd p{extra.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 120'000), 1) << "connection over the cap was not closed";
    char byte = 0;
    EXPECT_EQ(::recv(extra.get(), &byte, 1, 0), 0);  // EOF, no answer
    EXPECT_EQ(app.counter("cwhook_connections_refused_total", "reason=\"limit\""), 1u);

    // The first `cap` are untouched and still served.
    for (const auto& fd : held) {
        EXPECT_FALSE(closed_by_peer(fd.get(), 0ms));
    }
    ASSERT_TRUE(send_all(held[0].get(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
    std::string answer;
    char buf[512];
    for (;;) {
        pollfd q{held[0].get(), POLLIN, 0};
        if (::poll(&q, 1, 5000) != 1) {
            break;
        }
        const auto n = ::recv(held[0].get(), buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        answer.append(buf, static_cast<std::size_t>(n));
    }
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
}

// ---- key server faults (the others are in ingest_test.cpp) --------------------------------

TEST_F(Fault, KeyServerAnsweringNonJsonIsQuarantined)
{
    keys.set_mode(mode::not_json);
    running_app app(options());
    const auto r = send(app.http(), delivery(1, "nj-1"));
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_NE(r.body.find("\"key_unavailable\""), std::string::npos) << r.body;
    EXPECT_EQ(keys.fetches(), 1);
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='failed' AND verify_reason='key_unavailable'"), 1);
    EXPECT_EQ(count_rows(db, "rejections"), 0);
}

} // namespace
} // namespace cwhook::test
