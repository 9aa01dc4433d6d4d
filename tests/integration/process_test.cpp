// Behaviour of the cwhook binary as a process: command line, configuration errors,
// embedded defaults, graceful shutdown on SIGTERM with requests in flight, second signal.
#include "support/harness.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <future>
#include <thread>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;

std::string config_for(const std::string& db, const std::string& key_host, const std::string& ca)
{
    return fmt::format(R"([server]
listen = ["127.0.0.1:0"]
[verify]
companies = ["Cobalt"]
allowed_key_hosts = ["{}"]
ca_file = "{}"
[storage]
path = "{}"
)",
                       key_host, ca, db);
}

TEST(Process, VersionAndHelp)
{
    child_process v({"--version"});
    EXPECT_EQ(v.wait(), 0);
    EXPECT_NE(v.output().find("cwhook " CWHOOK_VERSION), std::string::npos);
    for (const char* sub : {"serve", "check-config"}) {
        child_process h({sub, "--help"});
        EXPECT_EQ(h.wait(), 0) << sub;
        EXPECT_NE(h.output().find("--config"), std::string::npos) << sub;
    }
}

TEST(Process, UnknownSubcommandIsAUsageError)
{
    child_process p({"frobnicate"});
    EXPECT_EQ(p.wait(), 2);
}

TEST(Process, CheckConfigPrintsTheEffectiveConfiguration)
{
    temp_dir dir;
    write_file(dir.file("c.toml"), "[server]\nlisten = [\"127.0.0.1:9999\"]\n");
    child_process p({"check-config", "--config", dir.file("c.toml")}, {{"CWHOOK_LOG_LEVEL", "debug"}});
    EXPECT_EQ(p.wait(), 0);
    const auto out = p.output();
    EXPECT_NE(out.find("listen = [\"127.0.0.1:9999\"]"), std::string::npos) << out;
    EXPECT_NE(out.find("level = \"debug\""), std::string::npos) << out;
}

TEST(Process, CheckConfigNamesTheBadKey)
{
    temp_dir dir;
    write_file(dir.file("c.toml"), "[server]\ntls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"/x/y.pem\"\ntls_key = \"/x/y.key\"\n");
    child_process p({"check-config", "--config", dir.file("c.toml")});
    EXPECT_EQ(p.wait(), 1);
    EXPECT_NE(p.output().find("server.tls_cert: /x/y.pem: no such file"), std::string::npos) << p.output();
}

TEST(Process, ServeRefusesABadConfigurationBeforeServing)
{
    child_process p({"serve"}, {{"CWHOOK_VERIFY_MODE", "strict"}});
    EXPECT_EQ(p.wait(), 1);
    EXPECT_NE(p.output().find("CWHOOK_VERIFY_MODE"), std::string::npos) << p.output();
}

TEST(Process, ServeRefusesAPortInUse)
{
    temp_dir dir;
    child_process first({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"}, {"CWHOOK_STORAGE_PATH", dir.file("a.db")}});
    const auto port = first.wait_for_http_port();
    ASSERT_NE(port, 0);
    child_process second({"serve"}, {{"CWHOOK_SERVER_LISTEN", fmt::format("127.0.0.1:{}", port)},
                                     {"CWHOOK_STORAGE_PATH", dir.file("b.db")}});
    EXPECT_EQ(second.wait(), 1);
    EXPECT_NE(second.output().find("lready in use"), std::string::npos) << second.output();
}

TEST(Process, EmbeddedDefaultsCreateTheDatabaseFolder)
{
    temp_dir dir;
    // Run from the temp dir so ./var/cwhook.db lands there; only the port is overridden.
    const auto cwd = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    child_process p({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"}});
    std::filesystem::current_path(cwd);
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    http_call c;
    c.method = "GET";
    c.target = "/readyz";
    EXPECT_EQ(send({boost::asio::ip::make_address("127.0.0.1"), port}, c).status, 200);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0);
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "var" / "cwhook.db"));
}

TEST(Process, SigtermAnswersAndStoresEveryRequestInFlight)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    keys.set_delay(700ms);  // every delivery waits on its own key fetch while we signal
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    child_process p({"serve", "--config", dir.file("c.toml")});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};

    constexpr int n = 20;
    std::vector<std::future<http_result>> results;
    for (int i = 0; i < n; ++i) {
        results.push_back(std::async(std::launch::async, [&, i] {
            const auto key_id = fmt::format("key-{}", i);  // distinct key_urls: n fetches in flight
            return send(ep, signed_call(make_payload(keys.url(key_id), 500 + i, fmt::format("t-{}", i)), keys.key()));
        }));
    }
    // All n deliveries are inside the daemon once the key server has seen n fetches.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (keys.fetches() < n && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(keys.fetches(), n);
    p.signal(SIGTERM);
    for (auto& f : results) {
        const auto r = f.get();
        EXPECT_EQ(r.status, 200) << r.error << r.body;
    }
    EXPECT_EQ(p.wait(), 0) << p.output();
    EXPECT_EQ(count_rows(db, "events", "status='verified'"), n);
    EXPECT_EQ(integrity_check(db), "ok");
}

TEST(Process, NewConnectionsAreRefusedOnceDraining)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    keys.set_delay(1500ms);
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    child_process p({"serve", "--config", dir.file("c.toml")});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
    auto inflight = std::async(std::launch::async, [&] {
        return send(ep, signed_call(make_payload(keys.url(), 1, "d-1"), keys.key()));
    });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (keys.fetches() < 1 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    p.signal(SIGTERM);
    ASSERT_FALSE(p.wait_for_line("stopped accepting").empty());
    http_call c;
    c.method = "GET";
    c.target = "/healthz";
    EXPECT_EQ(send(ep, c, {}, 2s).status, 0);  // listener closed
    EXPECT_EQ(inflight.get().status, 200);
    EXPECT_EQ(p.wait(), 0);
}

TEST(Process, SecondSignalExitsAtOnce)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    keys.set_mode(fake_key_server::mode::slow);  // holds the request for 30 s
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    child_process p({"serve", "--config", dir.file("c.toml")}, {{"CWHOOK_VERIFY_KEY_FETCH_TIMEOUT", "30s"},
                                                                {"CWHOOK_SERVER_DRAIN_TIMEOUT", "30s"}});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
    auto inflight = std::async(std::launch::async, [&] {
        return send(ep, signed_call(make_payload(keys.url(), 1, "s-1"), keys.key()), {}, 40s);
    });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (keys.fetches() < 1 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    p.signal(SIGTERM);
    ASSERT_FALSE(p.wait_for_line("shutting down").empty());
    const auto started = std::chrono::steady_clock::now();
    p.signal(SIGINT);
    EXPECT_EQ(p.wait(5s), 128 + SIGINT);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    inflight.get();
}

} // namespace
} // namespace cwhook::test
