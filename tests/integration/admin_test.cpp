// The admin listener against what a web page or another local process could send it: the
// generated token (a child process, restarted), browser-style posts, DNS rebinding, foreign
// origins, raw bodies a browser must not render, replay targets, and database work kept off
// the threads that serve callbacks.
#include "support/harness.hpp"

#include "callback/admin_api.hpp"
#include "store/event_db.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <sqlite3.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;

std::int64_t stored_id(const http_result& r)
{
    const auto pos = r.body.find("\"id\":");
    return pos == std::string::npos ? -1 : std::stoll(r.body.substr(pos + 5));
}

std::string job_of(const http_result& r)
{
    const auto pos = r.body.find("\"job\":\"");
    return pos == std::string::npos ? std::string() : r.body.substr(pos + 7, 16);
}

http_call get(std::string target, std::string_view token)
{
    http_call c;
    c.method = "GET";
    c.target = std::move(target);
    if (!token.empty()) {
        c.headers.emplace_back("Authorization", "Bearer " + std::string(token));
    }
    return c;
}

// POST /api/events/replay as a script would send it; tests change the last header.
http_call replay(std::string body, std::string_view token)
{
    http_call c;
    c.target = "/api/events/replay";
    c.body = std::move(body);
    c.headers.emplace_back("Authorization", "Bearer " + std::string(token));
    c.headers.emplace_back("Content-Type", "application/json");
    return c;
}

class AdminApi : public ::testing::Test, public receiver_env {
protected:
    http_call delivery(std::int64_t id)
    {
        auto c = signed_call(make_payload(keys.url(), id, fmt::format("msg-{}", id)), keys.key());
        c.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
        return c;
    }

    std::int64_t deliver(running_app& app, std::int64_t id)
    {
        const auto r = send(app.http(), delivery(id));
        EXPECT_EQ(r.status, 200) << r.body;
        return stored_id(r);
    }

    static tcp::endpoint admin_ep(running_app& app)
    {
        const auto eps = app.get().admin_endpoints();
        EXPECT_FALSE(eps.empty());
        return {boost::asio::ip::make_address("127.0.0.1"), eps.empty() ? std::uint16_t{0} : eps.front().port()};
    }

    // A second receiver that stores whatever arrives (replays carry the original signatures,
    // which it does not need to check).
    std::unique_ptr<running_app> receiver(const std::string& name)
    {
        app_options o;
        o.db = dir.file(name);
        o.mode = callback::verify_mode::off;
        o.tweak = [](callback::app_settings& s) { s.admin.listen = ""; };
        return std::make_unique<running_app>(o);
    }

    std::string replay_target_of(running_app& b) { return fmt::format("127.0.0.1:{}", b.http().port()); }
};

// ---- the token -------------------------------------------------------------------------

std::uint16_t admin_port(child_process& p)
{
    const auto line = p.wait_for_line("admin listening (http)");
    const auto pos = line.find("port=");
    if (pos == std::string::npos) {
        ADD_FAILURE() << "no admin listener:\n" << p.output();
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(line.substr(pos + 5)));
}

TEST(AdminProcess, TokenIsGeneratedInto0600FileReusedAcrossRestartsAndPrinted)
{
    temp_dir dir;
    const auto db = dir.file("state/cwhook.db");
    const auto token_file = dir.file("state/admin-token");
    write_file(dir.file("c.toml"), fmt::format("[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = "
                                               "\"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n",
                                               db));
    const std::vector<std::string> print = {"admin", "token", "--config", dir.file("c.toml")};

    // Before the first start there is nothing to print.
    const auto early = run_cwhook(print);
    EXPECT_EQ(early.exit_code, 1);
    EXPECT_NE(early.err.find(token_file), std::string::npos) << early.err;
    EXPECT_EQ(early.out, "");

    std::string token;
    {
        child_process p({"serve", "--config", dir.file("c.toml")});
        const auto port = admin_port(p);
        ASSERT_NE(port, 0);
        struct stat st {};
        ASSERT_EQ(::stat(token_file.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        token = read_file(token_file);
        ASSERT_EQ(token.size(), 65u) << token;
        token.pop_back();
        EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos) << token;

        const auto printed = run_cwhook(print);
        EXPECT_EQ(printed.exit_code, 0) << printed.err;
        EXPECT_EQ(printed.out, token + "\n");

        const tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
        const auto anonymous = send(ep, get("/api/events", ""));
        EXPECT_EQ(anonymous.status, 401);
        EXPECT_EQ(anonymous.body, "{\"error\":\"unauthorized\",\"detail\":\"a valid Authorization: Bearer token is "
                                  "required\"}\n");
        EXPECT_EQ(send(ep, get("/metrics", "")).status, 401);
        EXPECT_EQ(send(ep, get("/api/events", token)).status, 200);
        p.signal(SIGTERM);
        EXPECT_EQ(p.wait(), 0);
        // The path is logged, the token never.
        EXPECT_NE(p.output().find(token_file), std::string::npos);
        EXPECT_EQ(p.output().find(token), std::string::npos);
    }
    {
        child_process p({"serve", "--config", dir.file("c.toml")});
        const auto port = admin_port(p);
        ASSERT_NE(port, 0);
        EXPECT_EQ(read_file(token_file), token + "\n");
        const tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), port};
        EXPECT_EQ(send(ep, get("/api/events", token)).status, 200);
        p.signal(SIGTERM);
        EXPECT_EQ(p.wait(), 0);
    }
    // No temporary file of the token's creation is left behind.
    for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "state")) {
        const auto name = entry.path().filename().string();
        EXPECT_TRUE(name == "admin-token" || name.starts_with("cwhook.db")) << name;
    }
}

TEST(AdminProcess, TokenCommandPrintsAConfiguredToken)
{
    temp_dir dir;
    write_file(dir.file("token"), "configured-token-0123456789\n");
    write_file(dir.file("c.toml"), fmt::format("[admin]\ntoken_file = \"{}\"\n[storage]\npath = \"{}\"\n",
                                               dir.file("token"), dir.file("state/cwhook.db")));
    const auto r = run_cwhook({"admin", "token", "--config", dir.file("c.toml")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "configured-token-0123456789\n");
    EXPECT_FALSE(std::filesystem::exists(dir.file("state/admin-token")));
}

// ---- what a web page can send ----------------------------------------------------------

TEST_F(AdminApi, BrowserStylePlainTextPostIsRefusedAndNothingReplayed)
{
    auto b = receiver("b.db");
    running_app app(options([&](callback::app_settings& s) { s.admin.replay_targets = {replay_target_of(*b)}; }));
    deliver(app, 1);
    const auto ep = admin_ep(app);
    const auto body = fmt::format(R"({{"filter":{{}},"to":"http://{}/callbacks"}})", replay_target_of(*b));
    // What fetch(..., {method: "POST", mode: "no-cors", body}) or a form sends: no preflight.
    for (const char* type : {"text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"}) {
        for (const bool with_token : {false, true}) {
            auto c = replay(body, with_token ? app.get().admin_token() : "");
            c.headers.back().second = type;
            const auto r = send(ep, c);
            EXPECT_EQ(r.status, 415) << type << r.body;
            EXPECT_NE(r.body.find("\"error\":\"unsupported_media_type\""), std::string::npos) << r.body;
        }
    }
    // No content type at all is refused the same way.
    auto bare = replay(body, app.get().admin_token());
    bare.headers.back().second = "";
    EXPECT_EQ(send(ep, bare).status, 415);
    EXPECT_EQ(app.counter("cwhook_admin_refused_total", "reason=\"unsupported_media_type\""), 7u);
    EXPECT_EQ(app.counter("cwhook_admin_replay_jobs_total"), 0u);
    // The same request as JSON goes through, which shows the refusals above were not for
    // anything else.
    const auto ok = send(ep, replay(body, app.get().admin_token()));
    ASSERT_EQ(ok.status, 202) << ok.body;
    EXPECT_TRUE(eventually([&] { return count_rows(dir.file("b.db"), "events") == 1; }));
    EXPECT_EQ(app.counter("cwhook_admin_replay_jobs_total"), 1u);
}

TEST_F(AdminApi, RebindingHostIsMisdirected)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    const auto token = app.get().admin_token();
    for (const char* target : {"/api/events", "/metrics", "/api/replays/x", "/nowhere"}) {
        auto c = get(target, token);
        c.headers.emplace_back("Host", fmt::format("evil.example:{}", ep.port()));
        const auto r = send(ep, c);
        EXPECT_EQ(r.status, 421) << target;
        EXPECT_NE(r.body.find("\"error\":\"host_not_allowed\""), std::string::npos) << r.body;
    }
    auto post = replay(R"({"ids":[1],"to":"http://127.0.0.1:1/"})", token);
    post.headers.emplace_back("Host", "evil.example");
    EXPECT_EQ(send(ep, post).status, 421);
    EXPECT_EQ(app.counter("cwhook_admin_refused_total", "reason=\"host_not_allowed\""), 5u);
    // The listener's own names pass (the unauthenticated one then meets the token check).
    for (const auto& host : {fmt::format("127.0.0.1:{}", ep.port()), fmt::format("localhost:{}", ep.port()),
                             fmt::format("[::1]:{}", ep.port()), std::string("localhost")}) {
        auto c = get("/api/events", token);
        c.headers.emplace_back("Host", host);
        EXPECT_EQ(send(ep, c).status, 200) << host;
    }
    auto anonymous = get("/api/events", "");
    anonymous.headers.emplace_back("Host", "evil.example");
    EXPECT_EQ(send(ep, anonymous).status, 421);
    EXPECT_EQ(app.counter("cwhook_admin_unauthorized_total"), 0u);
}

TEST_F(AdminApi, ListedHostNamesAreAccepted)
{
    running_app app(options([](callback::app_settings& s) { s.admin.hosts = {"cwhook.internal"}; }));
    const auto ep = admin_ep(app);
    auto c = get("/api/events", app.get().admin_token());
    c.headers.emplace_back("Host", "cwhook.internal:9090");
    EXPECT_EQ(send(ep, c).status, 200);
    c.headers.back().second = "other.internal:9090";
    EXPECT_EQ(send(ep, c).status, 421);
}

TEST_F(AdminApi, ForeignOriginIsForbidden)
{
    running_app app(options([](callback::app_settings& s) { s.admin.origins = {"https://ops.example.com"}; }));
    const auto ep = admin_ep(app);
    const auto token = app.get().admin_token();
    for (const char* target : {"/api/events", "/metrics", "/nowhere"}) {
        auto c = get(target, token);
        c.headers.emplace_back("Origin", "https://evil.example");
        const auto r = send(ep, c);
        EXPECT_EQ(r.status, 403) << target;
        EXPECT_NE(r.body.find("\"error\":\"origin_not_allowed\""), std::string::npos) << r.body;
        // Nothing invites a browser to read the answer.
        EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
    }
    auto post = replay(R"({"ids":[1],"to":"http://127.0.0.1:1/"})", token);
    post.headers.emplace_back("Origin", "null");
    EXPECT_EQ(send(ep, post).status, 403);
    EXPECT_EQ(app.counter("cwhook_admin_refused_total", "reason=\"origin_not_allowed\""), 4u);
    auto listed = get("/api/events", token);
    listed.headers.emplace_back("Origin", "https://ops.example.com");
    EXPECT_EQ(send(ep, listed).status, 200);
}

TEST_F(AdminApi, RawBodyIsADownloadABrowserWillNotRender)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    const auto id = deliver(app, 1);
    const auto r = send(ep, get(fmt::format("/api/events/{}/raw", id), app.get().admin_token()));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, make_payload(keys.url(), 1, "msg-1"));
    EXPECT_EQ(r.headers.at("content-type"), "application/octet-stream");
    EXPECT_EQ(r.headers.at("content-disposition"), fmt::format("attachment; filename=\"event-{}.bin\"", id));
    EXPECT_EQ(r.headers.at("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.headers.at("content-security-policy"), "sandbox");
    EXPECT_EQ(r.headers.at("cache-control"), "no-store");
    EXPECT_EQ(r.headers.at("x-cwhook-content-type"), "application/json; charset=utf-8");
    // The JSON detail keeps it too.
    const auto detail = send(ep, get(fmt::format("/api/events/{}", id), app.get().admin_token()));
    EXPECT_NE(detail.body.find("application/json; charset=utf-8"), std::string::npos) << detail.body;
}

// ---- replay targets --------------------------------------------------------------------

TEST_F(AdminApi, ReplayThroughTheApiIsOffUntilTargetsAreListed)
{
    auto b = receiver("b.db");
    running_app app(options());
    const auto id = deliver(app, 1);
    const auto r = send(admin_ep(app), replay(fmt::format(R"({{"ids":[{}],"to":"http://{}/callbacks"}})", id,
                                                          replay_target_of(*b)),
                                              app.get().admin_token()));
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.body.find("\"error\":\"replay_target_not_allowed\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("admin.replay_targets"), std::string::npos) << r.body;
    EXPECT_EQ(app.counter("cwhook_admin_replay_jobs_total"), 0u);
    b->stop();
    EXPECT_EQ(count_rows(dir.file("b.db"), "events"), 0);
}

TEST_F(AdminApi, ReplayGoesOnlyToListedTargets)
{
    auto b = receiver("b.db");
    auto other = receiver("other.db");
    running_app app(options([&](callback::app_settings& s) { s.admin.replay_targets = {replay_target_of(*b)}; }));
    const auto ep = admin_ep(app);
    const auto token = app.get().admin_token();
    const auto id = deliver(app, 1);

    // Unlisted: another port on the same host, another name for the same address, elsewhere.
    for (const auto& to : {fmt::format("http://{}/callbacks", replay_target_of(*other)),
                           fmt::format("http://localhost:{}/callbacks", b->http().port()),
                           std::string("https://evil.example/collect")}) {
        const auto r = send(ep, replay(fmt::format(R"({{"ids":[{}],"to":"{}"}})", id, to), token));
        EXPECT_EQ(r.status, 403) << to << r.body;
        EXPECT_NE(r.body.find("is not in admin.replay_targets"), std::string::npos) << r.body;
    }
    EXPECT_EQ(app.counter("cwhook_admin_refused_total", "reason=\"replay_target_not_allowed\""), 3u);

    const auto started = send(
        ep, replay(fmt::format(R"({{"ids":[{}],"to":"http://{}/callbacks"}})", id, replay_target_of(*b)), token));
    ASSERT_EQ(started.status, 202) << started.body;
    const auto job = job_of(started);
    http_result status;
    EXPECT_TRUE(eventually([&] {
        status = send(ep, get("/api/replays/" + job, token));
        return status.body.find("\"done\":true") != std::string::npos;
    })) << status.body;
    EXPECT_NE(status.body.find("\"total\":1,\"finished\":1,\"sent\":1,\"ok\":1"), std::string::npos) << status.body;
    b->stop();
    other->stop();
    EXPECT_EQ(count_rows(dir.file("b.db"), "events", fmt::format("headers LIKE '%X-Cwhook-Replay-Of: {}\n%'", id)), 1);
    EXPECT_EQ(count_rows(dir.file("other.db"), "events"), 0);
    // The attempt is in the history, written by the admin API's own connection.
    EXPECT_EQ(count_rows(db, "replays", fmt::format("event_id = {} AND job = '{}' AND http_status = 200", id, job)), 1);
}

TEST_F(AdminApi, FilterReplayReadsItsIdsInPages)
{
    auto b = receiver("b.db");
    running_app app(options([&](callback::app_settings& s) { s.admin.replay_targets = {replay_target_of(*b)}; }));
    const auto first = deliver(app, 1);
    // More rows than two pages of ids (1000 each), imported as copies of the delivered one.
    constexpr int copies = 2100;
    {
        auto edb = store::event_db::open(db, store::db_access::read_write);
        ASSERT_TRUE(edb) << edb.error();
        auto e = (*edb)->get(first, false);
        ASSERT_TRUE(e && *e);
        std::vector<store::stored_event> rows;
        for (int i = 0; i < copies; ++i) {
            auto copy = **e;
            copy.record.dedupe_key = fmt::format("m:copy-{}", i);
            copy.record.received_at_us -= (copies - i) * 1000;
            rows.push_back(copy);
        }
        ASSERT_TRUE((*edb)->import(rows));
    }
    const auto ep = admin_ep(app);
    const auto token = app.get().admin_token();
    const auto started = send(ep, replay(fmt::format(R"({{"filter":{{"type":"ticket"}},"to":"http://{}/callbacks",)"
                                                     R"("concurrency":16}})",
                                                     replay_target_of(*b)),
                                         token));
    ASSERT_EQ(started.status, 202) << started.body;
    EXPECT_NE(started.body.find(fmt::format("\"total\":{}", copies + 1)), std::string::npos) << started.body;
    const auto job = job_of(started);
    http_result status;
    EXPECT_TRUE(eventually(
        [&] {
            status = send(ep, get("/api/replays/" + job, token));
            return status.body.find("\"done\":true") != std::string::npos;
        },
        60s))
        << status.body;
    EXPECT_NE(status.body.find(fmt::format("\"total\":{0},\"finished\":{0},\"sent\":{0},\"ok\":{0}", copies + 1)),
              std::string::npos)
        << status.body;
    // Each event once, oldest first across the page boundaries.
    EXPECT_EQ(count_rows(db, "replays", fmt::format("job = '{}'", job)), copies + 1);
    EXPECT_EQ(count_rows(db, "(SELECT event_id FROM replays WHERE job = '" + job + "' GROUP BY event_id)"), copies + 1);

    // A limit in the filter takes the oldest that many, across pages too.
    const auto limited = send(ep, replay(fmt::format(R"({{"filter":{{"type":"ticket","limit":"1500"}},)"
                                                     R"("to":"http://{}/callbacks","concurrency":16}})",
                                                     replay_target_of(*b)),
                                         token));
    ASSERT_EQ(limited.status, 202) << limited.body;
    EXPECT_NE(limited.body.find("\"total\":1500"), std::string::npos) << limited.body;
    const auto second = job_of(limited);
    EXPECT_TRUE(eventually(
        [&] {
            status = send(ep, get("/api/replays/" + second, token));
            return status.body.find("\"done\":true") != std::string::npos;
        },
        60s))
        << status.body;
    EXPECT_NE(status.body.find("\"total\":1500,\"finished\":1500,\"sent\":1500,\"ok\":1500"), std::string::npos)
        << status.body;
    // The oldest: every imported copy's id is below the delivered event's.
    EXPECT_EQ(count_rows(db, "replays", fmt::format("job = '{}' AND event_id <> {}", second, first)), 1500);
}

// ---- database work off the io threads --------------------------------------------------

std::vector<std::string> thread_names()
{
    std::vector<std::string> out;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream in(task.path() / "comm");
        std::string name;
        std::getline(in, name);
        out.push_back(name);
    }
    return out;
}

TEST_F(AdminApi, TheDatabaseHasAThreadOfItsOwn)
{
    const auto before = thread_names();
    const auto count = [](const std::vector<std::string>& names) {
        return std::count(names.begin(), names.end(), std::string(callback::admin_db_thread_name));
    };
    {
        running_app app(options());
        EXPECT_EQ(count(thread_names()) - count(before), 1);
    }
    EXPECT_EQ(count(thread_names()), count(before));
}

// The test holds the write lock of the database from a connection of its own, so the replay
// history write of an API replay waits (up to the busy timeout) wherever it runs. Run inline
// on the only io thread, it would hold up every request of the callback listener until then;
// on the admin database thread, the callback listener and the in-memory job status still
// answer while the write waits.
TEST_F(AdminApi, ABlockedAdminDatabaseDoesNotHoldUpTheCallbackListener)
{
    auto b = receiver("b.db");
    running_app app(options([&](callback::app_settings& s) {
        s.server.threads = 1;
        s.admin.replay_targets = {replay_target_of(*b)};
    }));
    const auto id = deliver(app, 1);
    const auto ep = admin_ep(app);
    const auto token = app.get().admin_token();

    sqlite3* lock = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &lock), SQLITE_OK);
    sqlite3_busy_timeout(lock, 5000);  // the daemon's writer may be committing
    ASSERT_EQ(sqlite3_exec(lock, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(lock);

    const auto started = send(
        ep, replay(fmt::format(R"({{"ids":[{}],"to":"http://{}/callbacks"}})", id, replay_target_of(*b)), token));
    ASSERT_EQ(started.status, 202) << started.body;
    const auto job = job_of(started);
    // The event reached the receiver: the attempt is answered and its history write is next.
    ASSERT_TRUE(eventually([&] { return count_rows(dir.file("b.db"), "events") == 1; }));

    http_call health;
    health.method = "GET";
    health.target = "/healthz";
    EXPECT_EQ(send(app.http(), health).status, 200);
    const auto status = send(ep, get("/api/replays/" + job, token));
    EXPECT_EQ(status.status, 200);
    // Still waiting for the history write: the requests above were not queued behind it.
    EXPECT_NE(status.body.find("\"done\":false"), std::string::npos) << status.body;

    ASSERT_EQ(sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(lock);
    EXPECT_TRUE(eventually([&] {
        return send(ep, get("/api/replays/" + job, token)).body.find("\"done\":true") != std::string::npos;
    }));
    EXPECT_EQ(count_rows(db, "replays", fmt::format("job = '{}'", job)), 1);
}

} // namespace
} // namespace cwhook::test
