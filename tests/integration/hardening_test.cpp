// Smaller holes closed, end to end: readiness probes that do not split the writer's batches,
// rejection rows that cannot crowd out deliveries, private database files, and configuration
// that refuses plain HTTP to a remote Manage and empty secret files.
#include "support/harness.hpp"

#include "emulator/emulator.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <thread>

#include <sys/stat.h>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;

class Hardening : public ::testing::Test, protected receiver_env {
protected:
    http_call delivery(std::int64_t id, std::string_view message_id)
    {
        return signed_call(make_payload(keys.url(), id, message_id), keys.key());
    }
};

http_call get(std::string target)
{
    http_call c;
    c.method = "GET";
    c.target = std::move(target);
    return c;
}

unsigned mode_of(const std::string& path)
{
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

TEST_F(Hardening, ReadinessProbesShareOneWriterJob)
{
    running_app app(options());
    const auto started = std::chrono::steady_clock::now();
    constexpr int threads = 8;
    constexpr int per_thread = 25;
    std::vector<std::future<int>> ok;
    for (int t = 0; t < threads; ++t) {
        ok.push_back(std::async(std::launch::async, [&] {
            int n = 0;
            for (int i = 0; i < per_thread; ++i) {
                n += send(app.http(), get("/readyz")).status == 200 ? 1 : 0;
            }
            return n;
        }));
    }
    int answered = 0;
    for (auto& f : ok) {
        answered += f.get();
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(answered, threads * per_thread);
    // One probe (one job in the writer's queue) per second at most, however many asked.
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
    EXPECT_GE(app.counter("cwhook_readiness_probes_total"), 1u);
    EXPECT_LE(app.counter("cwhook_readiness_probes_total"), static_cast<std::uint64_t>(seconds) + 1)
        << threads * per_thread << " requests in " << seconds << " s";
}

TEST_F(Hardening, RejectionFloodCannotMakeADeliveryAnswerQueueFull)
{
    running_app app(options([](auto& s) {
        s.storage.queue_limit = 4;
        s.storage.rejection_queue_limit = 8;
        // The writer waits for the lock below instead of failing, for longer than any wait of
        // this test: were it to give up, it would take the next delivery at once and the queue
        // could never hold four (seen once on a loaded machine with 30 s).
        s.storage.busy_timeout = 10min;
    }));
    ASSERT_EQ(send(app.http(), delivery(1, "warm")).status, 200); // the signing key is cached

    // Hold the write lock: the writer stops at its next transaction, and queues fill up.
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
    // Closed (its transaction rolled back) however the test ends, so the writer never waits
    // out its busy_timeout.
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> lock_holder(other, sqlite3_close);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);

    constexpr int junk = 200;
    http_call bad;
    bad.body = R"({"Type":"ticket","ID":1,"Metadata":{"key_url":"x"}})";
    for (int i = 0; i < junk; ++i) {
        ASSERT_EQ(send(app.http(), bad).status, 400);
    }
    // Eight wait in the rejection queue and the writer took the first few before it blocked;
    // the rest were dropped.
    const auto dropped = app.counter("cwhook_rejections_dropped_total");
    EXPECT_GT(dropped, static_cast<std::uint64_t>(junk / 2));

    // Genuine deliveries still find room in the event queue (queue_limit 4).
    std::vector<std::future<http_result>> genuine;
    for (int i = 0; i < 4; ++i) {
        genuine.push_back(std::async(std::launch::async, [this, &app, i] {
            return send(app.http(), delivery(10 + i, fmt::format("genuine-{}", i)), {}, 60s);
        }));
    }
    ASSERT_TRUE(eventually([&] {
        app.get().render_metrics();
        return app.get().metrics().gauge_value("cwhook_store_queue_depth") == 4;
    }));
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    lock_holder.reset();
    for (auto& f : genuine) {
        const auto r = f.get();
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.body.find("queue"), std::string::npos) << r.body;
    }
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 5);
    EXPECT_EQ(count_rows(db, "rejections"), static_cast<std::int64_t>(junk - dropped));
}

TEST(HardeningProcess, DaemonCreatesAPrivateDatabaseWhateverTheUmask)
{
    temp_dir dir;
    const auto db = dir.file("state/var/cwhook.db");
    const auto old_umask = ::umask(0); // inherited by the child
    child_process p({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"}, {"CWHOOK_STORAGE_PATH", db}});
    ::umask(old_umask);
    const auto port = p.wait_for_http_port();
    ASSERT_NE(port, 0) << p.output();
    EXPECT_EQ(send({boost::asio::ip::make_address("127.0.0.1"), port}, get("/readyz")).status, 200);
    EXPECT_EQ(mode_of(dir.file("state")), 0700u);
    EXPECT_EQ(mode_of(dir.file("state/var")), 0700u);
    EXPECT_EQ(mode_of(db), 0600u);
    EXPECT_EQ(mode_of(db + "-wal"), 0600u);
    EXPECT_EQ(mode_of(db + "-shm"), 0600u);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(HardeningProcess, EmptyAdminTokenFileStopsTheStart)
{
    temp_dir dir;
    write_file(dir.file("token"), "\n");
    child_process p({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"},
                                {"CWHOOK_STORAGE_PATH", dir.file("cwhook.db")},
                                {"CWHOOK_ADMIN_LISTEN", "0.0.0.0:0"},
                                {"CWHOOK_ADMIN_TOKEN_FILE", dir.file("token")}});
    EXPECT_EQ(p.wait(), 1);
    EXPECT_NE(p.output().find("CWHOOK_ADMIN_TOKEN_FILE: " + dir.file("token") + ": is empty"), std::string::npos)
        << p.output();
    EXPECT_FALSE(std::filesystem::exists(dir.file("cwhook.db"))); // refused before anything started
}

TEST(HardeningProcess, PlainHttpSiteIsRefusedUnlessLoopback)
{
    temp_dir dir;
    write_file(dir.file("remote.toml"), "[manage]\nsite = \"http://manage.example.com\"\n");
    const auto remote = run_cwhook({"check-config", "--config", dir.file("remote.toml")});
    EXPECT_EQ(remote.exit_code, 1);
    EXPECT_NE(remote.err.find("manage.site: \"http://manage.example.com\": plain http:// is allowed only to a "
                              "loopback host"),
              std::string::npos)
        << remote.err;
    write_file(dir.file("local.toml"), "[manage]\nsite = \"http://127.0.0.1:8443\"\n");
    const auto local = run_cwhook({"check-config", "--config", dir.file("local.toml")});
    EXPECT_EQ(local.exit_code, 0) << local.err;
}

TEST(HardeningProcess, PlainHttpEmulatorOnLoopbackStillWorks)
{
    temp_dir dir;
    emulator::settings es;
    es.tls = false; // `cwhook emulate --http`
    es.state_dir = dir.file("emulator");
    emulator::emulator emu(es);
    ASSERT_TRUE(emu.start());
    emulator::callback_entry e;
    e.type = "ticket";
    e.level = "owner";
    e.object_id = 1;
    e.url = "https://hooks.example.com/callbacks?recordId=";
    e.description = "plain";
    emu.add_callback(e);
    const auto& c = emu.config();
    write_file(dir.file("c.toml"),
               fmt::format("[manage]\nsite = \"{}\"\ncompany_id = \"{}\"\npublic_key = \"{}\"\nprivate_key = \"{}\"\n"
                           "client_id = \"{}\"\nmax_attempts = 1\n",
                           emu.base_url(), c.company, c.public_key, c.private_key, c.client_id));
    ASSERT_TRUE(emu.base_url().starts_with("http://127.0.0.1:")) << emu.base_url();
    const auto r = run_cwhook({"subscriptions", "list", "--config", dir.file("c.toml")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("hooks.example.com"), std::string::npos) << r.out;
}

} // namespace
} // namespace cwhook::test
