// Behaviour of the cwhook binary as a process: command line, configuration errors,
// embedded defaults, graceful shutdown on SIGTERM with requests in flight, second signal.
#include "support/harness.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <future>
#include <map>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;


// Deadlines no test run comes near: a held key fetch is answered when the test releases it.
const std::map<std::string, std::string> patient{{"CWHOOK_VERIFY_KEY_FETCH_TIMEOUT", "60s"},
                                                 {"CWHOOK_VERIFY_ANSWER_DEADLINE", "60s"},
                                                 {"CWHOOK_VERIFY_KEY_FETCH_RATE", "1000"},
                                                 {"CWHOOK_VERIFY_KEY_FETCH_CONCURRENCY", "64"},
                                                 {"CWHOOK_SERVER_DRAIN_TIMEOUT", "60s"}};

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

TEST(Process, SigtermWithAGraceSaysNotReadyWhileStillServing)
{
    // A load balancer's health check must see the instance leave before its port closes.
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    auto env = patient;
    env["CWHOOK_SERVER_DRAIN_GRACE"] = "20s"; // ended by the second signal below
    child_process p({"serve", "--config", dir.file("c.toml")}, env);
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
    http_call ready;
    ready.method = "GET";
    ready.target = "/readyz";
    ASSERT_EQ(send(ep, ready).status, 200);

    p.signal(SIGTERM);
    ASSERT_FALSE(p.wait_for_line("listeners close after the grace").empty()) << p.output();
    const auto during = send(ep, ready);
    EXPECT_EQ(during.status, 503);
    EXPECT_NE(during.body.find("shutting_down"), std::string::npos) << during.body;
    // Deliveries still get in, and are stored, during the grace.
    const auto r = send(ep, signed_call(make_payload(keys.url(), 77, "grace-1"), keys.key()));
    EXPECT_EQ(r.status, 200) << r.error << r.body;
    EXPECT_EQ(count_rows(db, "events", "message_id='grace-1'"), 1);
    p.signal(SIGTERM); // a second signal does not wait out the grace
    EXPECT_EQ(p.wait(std::chrono::seconds(10)), 128 + SIGTERM) << p.output();
}

TEST(Process, SigtermAnswersAndStoresEveryRequestInFlight)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    keys.hold();  // every delivery waits on its own key fetch while we signal
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    child_process p({"serve", "--config", dir.file("c.toml")}, patient);
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};

    constexpr int n = 20;
    std::vector<std::future<http_result>> results;
    for (int i = 0; i < n; ++i) {
        results.push_back(std::async(std::launch::async, [&, i] {
            const auto key_id = fmt::format("key-{}", i);  // distinct key_urls: n fetches in flight
            return send(ep, signed_call(make_payload(keys.url(key_id), 500 + i, fmt::format("t-{}", i)), keys.key()),
                        {}, 120s);
        }));
    }
    // All n deliveries are inside the daemon once the key server has seen n fetches.
    ASSERT_TRUE(eventually([&] { return keys.fetches() == n; })) << keys.fetches();
    p.signal(SIGTERM);
    ASSERT_FALSE(p.wait_for_line("stopped accepting").empty());
    keys.release();
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
    keys.hold();  // the delivery stays in flight until the listener is shown closed
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    child_process p({"serve", "--config", dir.file("c.toml")}, patient);
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
    auto inflight = std::async(std::launch::async, [&] {
        return send(ep, signed_call(make_payload(keys.url(), 1, "d-1"), keys.key()), {}, 120s);
    });
    ASSERT_TRUE(eventually([&] { return keys.fetches() == 1; }));
    p.signal(SIGTERM);
    ASSERT_FALSE(p.wait_for_line("stopped accepting").empty());
    http_call c;
    c.method = "GET";
    c.target = "/healthz";
    EXPECT_EQ(send(ep, c).status, 0);  // listener closed: refused, not left waiting
    keys.release();
    EXPECT_EQ(inflight.get().status, 200);
    EXPECT_EQ(p.wait(), 0);
}

TEST(Process, SecondSignalExitsAtOnce)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    keys.hold();  // never released: the drain could only end at its deadline
    const auto db = dir.file("events.db");
    write_file(dir.file("c.toml"), config_for(db, keys.host_entry(), cert.cert));
    child_process p({"serve", "--config", dir.file("c.toml")}, {{"CWHOOK_VERIFY_KEY_FETCH_TIMEOUT", "60s"},
                                                                {"CWHOOK_VERIFY_ANSWER_DEADLINE", "60s"},
                                                                {"CWHOOK_SERVER_DRAIN_TIMEOUT", "1h"}});
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0);
    const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
    auto inflight = std::async(std::launch::async, [&] {
        return send(ep, signed_call(make_payload(keys.url(), 1, "s-1"), keys.key()), {}, 120s);
    });
    ASSERT_TRUE(eventually([&] { return keys.fetches() == 1; }));
    p.signal(SIGTERM);
    ASSERT_FALSE(p.wait_for_line("shutting down").empty());
    // The drain would last an hour (the fetch is never answered): exiting at all is at once.
    p.signal(SIGINT);
    EXPECT_EQ(p.wait(120s), 128 + SIGINT) << p.output();
    inflight.get();
}

} // namespace
} // namespace cwhook::test
