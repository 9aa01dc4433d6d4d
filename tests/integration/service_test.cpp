// cwhook under a service manager, as real processes: the sd_notify protocol (READY=1,
// WATCHDOG=1, STOPPING=1) on a notify socket the test owns, socket activation (LISTEN_FDS),
// and SIGHUP reloads (certificate renewal, allowlist change, invalid configuration refused),
// observed through cwhook_reloads_total and cwhook_restart_needed on the admin /metrics.
#include "support/harness.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

// The service manager's end of NOTIFY_SOCKET: a datagram socket in a temp dir.
class notify_socket {
public:
    explicit notify_socket(const temp_dir& dir) : path_(dir.file("notify.sock"))
    {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            throw std::runtime_error("cannot bind the notify socket");
        }
    }
    ~notify_socket() { ::close(fd_); }
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;

    const std::string& path() const { return path_; }

    // Waits for a datagram containing `needle` (a line such as "READY=1"); every datagram
    // seen is kept in `seen`. False on timeout.
    bool wait_for(std::string_view needle, std::chrono::milliseconds timeout = 20s)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return false;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                continue;
            }
            char buf[4096];
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                continue;
            }
            std::string msg(buf, static_cast<std::size_t>(n));
            seen.push_back(msg);
            if (("\n" + msg + "\n").find("\n" + std::string(needle) + "\n") != std::string::npos) {
                return true;
            }
        }
    }

    std::vector<std::string> seen;

private:
    std::string path_;
    int fd_ = -1;
};

std::string joined(const std::vector<std::string>& v)
{
    std::string out;
    for (const auto& s : v) {
        out += "[" + s + "] ";
    }
    return out;
}

net::ip::tcp::endpoint loopback(std::uint16_t port) { return {net::ip::make_address("127.0.0.1"), port}; }

http_call get(std::string target)
{
    http_call c;
    c.method = "GET";
    c.target = std::move(target);
    return c;
}

// The child's admin listener (127.0.0.1:0 under the harness) with a known token, and its metrics.
constexpr std::string_view admin_token = "reload-test-token";

class metrics_scrape {
public:
    explicit metrics_scrape(child_process& p)
    {
        const auto line = p.wait_for_line("admin listening (http)");
        const auto pos = line.find("port=");
        if (pos == std::string::npos) {
            ADD_FAILURE() << "no admin listener:\n" << p.output();
            return;
        }
        port_ = static_cast<std::uint16_t>(std::stoi(line.substr(pos + 5)));
    }

    // The value of one sample, e.g. cwhook_reloads_total{result="applied"}; -1 when absent.
    long long value(std::string_view sample) const
    {
        auto call = get("/metrics");
        call.headers.emplace_back("Authorization", fmt::format("Bearer {}", admin_token));
        const auto body = send(loopback(port_), call).body;
        const auto at = body.find(fmt::format("\n{} ", sample));
        if (at == std::string::npos) {
            return -1;
        }
        return std::stoll(body.substr(at + sample.size() + 2));
    }

    // Waits until the sample reaches `n` (a reload runs on the daemon's signal thread).
    bool reaches(std::string_view sample, long long n) const
    {
        return eventually([&] { return value(sample) == n; });
    }

private:
    std::uint16_t port_ = 0;
};

constexpr std::string_view applied = R"(cwhook_reloads_total{result="applied"})";
constexpr std::string_view restart_needed = R"(cwhook_reloads_total{result="restart_needed"})";
constexpr std::string_view rejected = R"(cwhook_reloads_total{result="rejected"})";

TEST(Service, NotifiesReadyWatchdogAndStopping)
{
    temp_dir dir;
    notify_socket sock(dir);
    child_process p({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"},
                                {"CWHOOK_STORAGE_PATH", dir.file("events.db")},
                                {"NOTIFY_SOCKET", sock.path()},
                                {"WATCHDOG_USEC", "200000"}});
    ASSERT_TRUE(sock.wait_for("READY=1")) << joined(sock.seen) << p.output();
    // READY=1 comes once the listener is bound and the database is open.
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    EXPECT_EQ(send(loopback(port), get("/readyz")).status, 200);
    ASSERT_TRUE(sock.wait_for("WATCHDOG=1")) << joined(sock.seen);
    ASSERT_TRUE(sock.wait_for("WATCHDOG=1")) << joined(sock.seen);
    p.signal(SIGTERM);
    ASSERT_TRUE(sock.wait_for("STOPPING=1")) << joined(sock.seen);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(Service, NoWatchdogPingsUnlessAskedFor)
{
    temp_dir dir;
    notify_socket sock(dir);
    child_process p({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"},
                                {"CWHOOK_STORAGE_PATH", dir.file("events.db")},
                                {"NOTIFY_SOCKET", sock.path()}});
    ASSERT_TRUE(sock.wait_for("READY=1")) << joined(sock.seen) << p.output();
    p.signal(SIGTERM);
    ASSERT_TRUE(sock.wait_for("STOPPING=1")) << joined(sock.seen);
    EXPECT_EQ(p.wait(), 0);
    for (const auto& m : sock.seen) {
        EXPECT_EQ(m.find("WATCHDOG=1"), std::string::npos) << m;
    }
}

TEST(Service, SocketActivationServesOnThePassedSockets)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    std::uint16_t plain_port = 0;
    std::uint16_t tls_port = 0;
    const int plain = listening_socket(plain_port);
    const int tls = listening_socket(tls_port);
    // The configured listener is ignored (port 1 would need privileges).
    child_process p({"serve"},
                    {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:1"},
                     {"CWHOOK_SERVER_TLS_CERT", cert.cert},
                     {"CWHOOK_SERVER_TLS_KEY", cert.key},
                     {"CWHOOK_STORAGE_PATH", dir.file("events.db")},
                     {"LISTEN_FDNAMES", "http:https"}},
                    {plain, tls});
    ::close(plain);
    ::close(tls);
    ASSERT_FALSE(p.wait_for_line("listening (https)").empty()) << p.output();
    EXPECT_EQ(send(loopback(plain_port), get("/healthz")).status, 200) << p.output();
    EXPECT_EQ(send(loopback(tls_port), get("/healthz"), cert.cert).status, 200) << p.output();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(Service, SocketActivationRefusesAnHttpsSocketWithoutCertificate)
{
    temp_dir dir;
    std::uint16_t port = 0;
    const int fd = listening_socket(port);
    child_process p({"serve"}, {{"CWHOOK_STORAGE_PATH", dir.file("events.db")}, {"LISTEN_FDNAMES", "https"}}, {fd});
    ::close(fd);
    EXPECT_EQ(p.wait(), 1);
    EXPECT_NE(p.output().find("named \"https\" but no TLS certificate"), std::string::npos) << p.output();
}

std::string tls_config(const std::string& db, const test_cert& cert, const std::string& key_host)
{
    return fmt::format(R"([server]
listen = ["127.0.0.1:0"]
tls_listen = ["127.0.0.1:0"]
tls_cert = "{}"
tls_key = "{}"
[verify]
companies = ["Cobalt"]
allowed_key_hosts = [{}]
[storage]
path = "{}"
)",
                       cert.cert, cert.key, key_host.empty() ? "" : "\"" + key_host + "\"", db);
}

std::uint16_t tls_port_of(child_process& p)
{
    const auto line = p.wait_for_line("listening (https)");
    const auto colon = line.rfind(':');
    if (colon == std::string::npos) {
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

TEST(Service, SighupRenewsTheCertificateForNewConnections)
{
    temp_dir dir;
    temp_dir other;
    const auto old_cert = make_cert(dir, "live");
    const auto new_cert = make_cert(other, "renewed");
    const auto conf = dir.file("c.toml");
    write_file(conf, tls_config(dir.file("events.db"), old_cert, ""));
    notify_socket sock(dir);
    child_process p({"serve", "--config", conf},
                    {{"NOTIFY_SOCKET", sock.path()}, {"CWHOOK_ADMIN_TOKEN", std::string(admin_token)}});
    const auto port = tls_port_of(p);
    const metrics_scrape metrics(p);
    ASSERT_NE(port, 0) << p.output();
    EXPECT_EQ(send(loopback(port), get("/healthz"), old_cert.cert).status, 200);
    EXPECT_EQ(send(loopback(port), get("/healthz"), new_cert.cert).status, 0);  // not trusted yet

    ASSERT_TRUE(sock.wait_for("READY=1")) << joined(sock.seen);
    // certbot-style renewal: the files at the configured paths are replaced.
    const auto old_ca = other.file("old-ca.pem");
    write_file(old_ca, read_file(old_cert.cert));
    write_file(old_cert.cert, read_file(new_cert.cert));
    write_file(old_cert.key, read_file(new_cert.key));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(applied, 1)) << p.output();
    EXPECT_TRUE(sock.wait_for("RELOADING=1")) << joined(sock.seen);
    EXPECT_TRUE(sock.wait_for("READY=1")) << joined(sock.seen);
    EXPECT_EQ(send(loopback(port), get("/healthz"), new_cert.cert).status, 200) << p.output();
    EXPECT_EQ(send(loopback(port), get("/healthz"), old_ca).status, 0);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(Service, SighupWithAnInvalidConfigurationKeepsTheRunningOne)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    const auto conf = dir.file("c.toml");
    write_file(conf, tls_config(dir.file("events.db"), cert, ""));
    child_process p({"serve", "--config", conf}, {{"CWHOOK_ADMIN_TOKEN", std::string(admin_token)}});
    const auto port = tls_port_of(p);
    ASSERT_NE(port, 0) << p.output();
    const metrics_scrape metrics(p);

    write_file(conf, "[server]\nmax_connections = \"many\"\n");
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(rejected, 1)) << p.output();
    const auto refused = p.wait_for_line("reload refused");
    EXPECT_NE(refused.find("server.max_connections"), std::string::npos) << p.output();
    EXPECT_EQ(send(loopback(port), get("/healthz"), cert.cert).status, 200);

    // A certificate file that vanished is refused too, and the loaded one stays in use.
    write_file(conf, tls_config(dir.file("events.db"), test_cert{dir.file("gone.pem"), cert.key}, ""));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(rejected, 2)) << p.output();
    EXPECT_FALSE(p.wait_for_line("gone.pem").empty()) << p.output();
    EXPECT_EQ(send(loopback(port), get("/healthz"), cert.cert).status, 200);
    EXPECT_EQ(metrics.value(applied), 0);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(Service, SighupChangesTheKeyHostAllowlist)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    const auto conf = dir.file("c.toml");
    const auto db = dir.file("events.db");
    const auto with_hosts = [&](const std::string& host, const std::string& listen = "127.0.0.1:0") {
        return fmt::format(R"([server]
listen = ["{}"]
[verify]
companies = ["Cobalt"]
allowed_key_hosts = [{}]
ca_file = "{}"
[storage]
path = "{}"
)",
                           listen, host.empty() ? "" : "\"" + host + "\"", cert.cert, db);
    };
    write_file(conf, with_hosts(""));
    child_process p({"serve", "--config", conf}, {{"CWHOOK_ADMIN_TOKEN", std::string(admin_token)}});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0) << p.output();
    const metrics_scrape metrics(p);
    const auto delivery = [&](int id) {
        return send(loopback(port), signed_call(make_payload(keys.url(), id, fmt::format("m-{}", id)), keys.key()));
    };
    EXPECT_EQ(delivery(1).status, 403);
    EXPECT_EQ(keys.fetches(), 0);

    write_file(conf, with_hosts(keys.host_entry()));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(applied, 1)) << p.output();
    EXPECT_EQ(delivery(2).status, 200);
    EXPECT_EQ(keys.fetches(), 1);

    // A setting that needs a restart is named, and the rest of the reload still applies.
    write_file(conf, fmt::format("[server]\nlisten = [\"127.0.0.1:0\"]\nthreads = 3\n[verify]\ncompanies = [\"Cobalt\"]\nallowed_key_hosts = [\"{}\"]\n"
                                 "ca_file = \"{}\"\n[storage]\npath = \"{}\"\n",
                                 keys.host_entry(), cert.cert, db));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(restart_needed, 1)) << p.output();
    EXPECT_EQ(metrics.value(R"(cwhook_restart_needed{key="server.threads"})"), 1);
    EXPECT_EQ(send(loopback(port), get("/healthz")).status, 200);
    EXPECT_EQ(delivery(3).status, 200);  // the allowlist, live, is still the new one

    // Back to the running value: nothing waits for a restart any more.
    write_file(conf, with_hosts(keys.host_entry()));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(applied, 2)) << p.output();
    EXPECT_EQ(metrics.value(R"(cwhook_restart_needed{key="server.threads"})"), 0);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(Service, SighupRebindsChangedListeners)
{
    temp_dir dir;
    const auto conf = dir.file("c.toml");
    std::uint16_t a = 0;
    std::uint16_t b = 0;
    ::close(listening_socket(a));  // two ports free now
    ::close(listening_socket(b));
    const auto with_listen = [&](const std::string& listen) {
        return fmt::format("[server]\nlisten = [{}]\n[storage]\npath = \"{}\"\n", listen, dir.file("events.db"));
    };
    write_file(conf, with_listen(fmt::format("\"127.0.0.1:{}\"", a)));
    child_process p({"serve", "--config", conf}, {{"CWHOOK_ADMIN_TOKEN", std::string(admin_token)}});
    ASSERT_EQ(p.wait_for_http_port(), a) << p.output();
    const metrics_scrape metrics(p);
    EXPECT_EQ(send(loopback(a), get("/healthz")).status, 200);

    // Move to port b: b answers, a is closed.
    write_file(conf, with_listen(fmt::format("\"127.0.0.1:{}\"", b)));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(applied, 1)) << p.output();
    EXPECT_EQ(send(loopback(b), get("/healthz")).status, 200) << p.output();
    EXPECT_EQ(send(loopback(a), get("/healthz")).status, 0);

    // A listener that cannot be bound refuses the whole reload: b keeps serving.
    std::uint16_t busy = 0;
    const int holder = listening_socket(busy);
    write_file(conf, with_listen(fmt::format("\"127.0.0.1:{}\", \"127.0.0.1:{}\"", b, busy)));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(rejected, 1)) << p.output();
    const auto refused = p.wait_for_line("reload refused");
    EXPECT_NE(refused.find(std::to_string(busy)), std::string::npos) << p.output();
    ::close(holder);
    EXPECT_EQ(send(loopback(b), get("/healthz")).status, 200);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(Service, SighupChangesLimitsForNewConnections)
{
    temp_dir dir;
    const auto conf = dir.file("c.toml");
    const auto with_limit = [&](std::size_t max_body) {
        return fmt::format("[server]\nlisten = [\"127.0.0.1:0\"]\nmax_body_bytes = {}\n[storage]\npath = \"{}\"\n",
                           max_body, dir.file("events.db"));
    };
    write_file(conf, with_limit(4096));
    child_process p({"serve", "--config", conf}, {{"CWHOOK_ADMIN_TOKEN", std::string(admin_token)}});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0) << p.output();
    const metrics_scrape metrics(p);
    http_call big;
    big.body = std::string(1000, 'x');
    EXPECT_EQ(send(loopback(port), big).status, 400);  // read, then refused as not JSON

    write_file(conf, with_limit(500));
    p.signal(SIGHUP);
    ASSERT_TRUE(metrics.reaches(applied, 1)) << p.output();
    EXPECT_EQ(send(loopback(port), big).status, 413);
    EXPECT_EQ(metrics.value(restart_needed), 0);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0);
}

TEST(Service, RequestIdsAreKeptOrMadeAndLogged)
{
    temp_dir dir;
    child_process p({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"}, {"CWHOOK_STORAGE_PATH", dir.file("events.db")}});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0) << p.output();
    auto call = get("/healthz");
    call.headers.emplace_back("X-Request-Id", "trace-4f2a.77");
    const auto kept = send(loopback(port), call);
    EXPECT_EQ(kept.headers.at("x-request-id"), "trace-4f2a.77");
    EXPECT_FALSE(p.wait_for_line("request_id=trace-4f2a.77").empty()) << p.output();

    const auto made = send(loopback(port), get("/nope"));
    EXPECT_EQ(made.status, 404);
    const auto id = made.headers.at("x-request-id");
    EXPECT_EQ(id.size(), 15u) << id;  // 8 hex, '-', 6 hex
    EXPECT_FALSE(p.wait_for_line("request_id=" + id).empty()) << p.output();

    auto bad = get("/healthz");
    bad.headers.emplace_back("X-Request-Id", "two words");  // not log-safe: replaced
    const auto replaced = send(loopback(port), bad);
    EXPECT_NE(replaced.headers.at("x-request-id"), "two words");
    EXPECT_NE(replaced.headers.at("x-request-id"), id);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0);
}

TEST(Service, HealthcheckProbesTheRunningDaemon)
{
    temp_dir dir;
    const auto conf = dir.file("c.toml");
    std::uint16_t port = 0;
    ::close(listening_socket(port));  // a port nothing listens on now
    write_file(conf, fmt::format("[server]\nlisten = [\"0.0.0.0:{}\"]\n[storage]\npath = \"{}\"\n", port,
                                 dir.file("events.db")));
    {
        child_process down({"healthcheck", "--config", conf, "--timeout", "2s"});
        EXPECT_EQ(down.wait(), 1);
        EXPECT_NE(down.output().find(fmt::format("http://127.0.0.1:{}/healthz", port)), std::string::npos)
            << down.output();
    }
    child_process p({"serve", "--config", conf});
    ASSERT_NE(p.wait_for_http_port(), 0) << p.output();
    child_process up({"healthcheck", "--config", conf});
    EXPECT_EQ(up.wait(), 0) << up.output();
    child_process ready({"healthcheck", "--url", fmt::format("http://127.0.0.1:{}/readyz", port)});
    EXPECT_EQ(ready.wait(), 0) << ready.output();
    child_process missing({"healthcheck", "--url", fmt::format("http://127.0.0.1:{}/nope", port)});
    EXPECT_EQ(missing.wait(), 1);
    EXPECT_NE(missing.output().find("HTTP 404"), std::string::npos) << missing.output();
    child_process bad({"healthcheck", "--url", "ftp://x"});
    EXPECT_EQ(bad.wait(), 2);
    EXPECT_NE(bad.output().find("--url ftp://x"), std::string::npos) << bad.output();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0);
}

} // namespace
} // namespace cwhook::test
