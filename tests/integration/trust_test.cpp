// What cwhook trusts, tried as an attacker would: the ConnectWise cloud sites hand out the
// signing key of every Manage company, so a key_url on an allowlisted host proves nothing by
// itself. And the other side of the promise: trouble on the key side never loses a genuine
// delivery. The receiver in-process on 127.0.0.1:0, a fake key server over real HTTPS, a temp
// SQLite file read back with a separate connection; the daemon as a child process where the
// behaviour is the process's (its start-up log).
#include "support/harness.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <future>
#include <thread>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using mode = fake_key_server::mode;

class Trust : public ::testing::Test, protected receiver_env {
protected:
    http_call delivery(std::int64_t id, std::string_view message_id, std::string_view key_id = "k1")
    {
        return signed_call(make_payload(keys.url(key_id), id, message_id), keys.key());
    }

    // A body of ~2 KB: more than the 256 bytes a rejection row keeps.
    static std::string big_payload(const std::string& key_url, std::int64_t id, std::string_view message_id)
    {
        auto body = make_payload(key_url, id, message_id);
        const std::string padding(2000, 'p');
        body.insert(body.size() - 1, fmt::format(R"(,"Padding":"{}")", padding));
        return body;
    }
};

// An allowlisted key server serves keys for company "evil" (as the cloud sites serve anyone's).
// Bodies signed with that key are refused whatever CompanyId they claim, and nothing is fetched.
TEST_F(Trust, KeyOfAnotherCompanyIsRefusedBeforeAnyFetch)
{
    running_app app(options());
    const auto evil_url = keys.url("evil-key-id", "evil");
    int id = 1;
    for (const auto* claimed : {"Cobalt", "evil", ""}) {
        SCOPED_TRACE(claimed);
        const auto body = make_payload(evil_url, id, fmt::format("evil-{}", id), "updated", "ticket", claimed);
        ++id;
        const auto r = send(app.http(), signed_call(body, keys.key()));
        EXPECT_EQ(r.status, 403) << r.body;
        EXPECT_NE(r.body.find("\"company_not_allowed\""), std::string::npos) << r.body;
    }
    EXPECT_EQ(keys.fetches(), 0);
    EXPECT_EQ(app.counter("cwhook_key_fetches_total"), 0u);
    EXPECT_EQ(app.counter("cwhook_rejections_total", "reason=\"company_not_allowed\""), 3u);
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 0);
    EXPECT_EQ(count_rows(db, "rejections", "reason='company_not_allowed' AND http_status=403"), 3);
}

TEST_F(Trust, PayloadCompanyMustMatchTheKeyUrlCompany)
{
    running_app app(options([](auto& s) { s.verify.companies = {"Cobalt", "evil"}; }));
    // Signed with evil's genuine key, claiming to be Cobalt's.
    const auto body = make_payload(keys.url("k1", "evil"), 7, "mm-1", "updated", "ticket", "Cobalt");
    const auto r = send(app.http(), signed_call(body, keys.key()));
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.body.find("\"company_mismatch\""), std::string::npos) << r.body;
    EXPECT_EQ(keys.fetches(), 0);
    // Case does not matter.
    const auto same = make_payload(keys.url("k1", "EVIL"), 8, "mm-2", "updated", "ticket", "Evil");
    EXPECT_EQ(send(app.http(), signed_call(same, keys.key())).status, 200);
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='verified'"), 1);
    EXPECT_EQ(count_rows(db, "rejections", "reason='company_mismatch'"), 1);
}

TEST_F(Trust, KeyUrlMustBeTheKeyEndpoint)
{
    running_app app(options());
    for (const auto& url :
         {fmt::format("https://127.0.0.1:{}/keys?companyName=Cobalt&id=1", keys.port()),
          fmt::format("https://127.0.0.1:{}/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=1&x=1",
                      keys.port()),
          fmt::format("https://127.0.0.1:{}/v2025_1//system/callbackkey/index.rails?companyName=Cobalt", keys.port())}) {
        SCOPED_TRACE(url);
        const auto r = send(app.http(), signed_call(make_payload(url, 9, "ke-1"), keys.key()));
        EXPECT_EQ(r.status, 403) << r.body;
        EXPECT_NE(r.body.find("\"key_url_not_key_endpoint\""), std::string::npos) << r.body;
    }
    EXPECT_EQ(keys.fetches(), 0);
}

// The embedded defaults must still run; they refuse every delivery until a company is set,
// and say so once, at start.
TEST_F(Trust, NoCompanyConfiguredStartsRefusesAndSaysWhichKeyToSet)
{
    child_process daemon({"serve"}, {{"CWHOOK_SERVER_LISTEN", "127.0.0.1:0"},
                                     {"CWHOOK_STORAGE_PATH", db},
                                     {"CWHOOK_VERIFY_ALLOWED_KEY_HOSTS", keys.host_entry()},
                                     {"CWHOOK_VERIFY_CA_FILE", cert.cert}});
    const auto port = daemon.wait_for_http_port();
    ASSERT_NE(port, 0) << daemon.output();
    EXPECT_FALSE(daemon.wait_for_line("set verify.companies").empty()) << daemon.output();
    const boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port);
    const auto r = send(ep, delivery(1, "nc-1"));
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.body.find("\"company_not_allowed\""), std::string::npos) << r.body;
    EXPECT_EQ(keys.fetches(), 0);
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait(), 0);
    const auto out = daemon.output();
    EXPECT_EQ(out.find("set verify.companies"), out.rfind("set verify.companies")) << "logged once";
}

TEST_F(Trust, CheckConfigWarnsWhenNoCompanyIsConfigured)
{
    const auto conf = dir.file("cwhook.toml");
    write_file(conf, "[verify]\nmode = \"enforce\"\n");
    const auto r = run_cwhook({"check-config", "--config", conf});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: no Manage company is configured"), std::string::npos) << r.err;
    write_file(conf, "[verify]\ncompanies = [\"cobalt\"]\n");
    const auto ok = run_cwhook({"check-config", "--config", conf});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.err.find("no Manage company"), std::string::npos) << ok.err;
}

// Manage rotated the key under a cached key_url and signs with the new one at once: the
// mismatch against the cached key earns a fresh fetch before any verdict.
TEST_F(Trust, KeyRotatedUnderACachedKeyUrlIsVerifiedNotRefused)
{
    running_app app(options());  // default key_refetch_interval (1s): the re-fetch may wait for it
    ASSERT_EQ(send(app.http(), delivery(20, "rot-1")).status, 200);
    keys.set_key("rotated-signing-key");
    const auto r = send(app.http(), delivery(21, "rot-2"));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "{\"status\":\"stored\",\"id\":2}\n");
    EXPECT_EQ(keys.fetches(), 2);
    EXPECT_EQ(send(app.http(), delivery(22, "rot-3")).status, 200);
    EXPECT_EQ(keys.fetches(), 2);  // the new key is cached
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='verified'"), 3);
}

// A codebase that moved during a cloud upgrade: the old key_url answers 404. The delivery is
// kept whole (not 256 bytes of it) and acknowledged, never counted as verified.
TEST_F(Trust, CodebaseMoved404KeepsTheDeliveryWhole)
{
    keys.set_mode(mode::not_found);
    running_app app(options());
    auto call = signed_call(big_payload(keys.url("moved"), 30, "cb-1"), keys.key());
    call.headers.emplace_back("Content-Type", "application/json");
    const auto r = send(app.http(), call);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.body, "{\"status\":\"failed\",\"id\":1,\"reason\":\"key_unavailable\"}\n");
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "failed");
    EXPECT_EQ(rows[0].verify_reason, "key_unavailable");
    EXPECT_EQ(rows[0].body, call.body);
    EXPECT_GT(rows[0].body.size(), 2000u);
    EXPECT_NE(rows[0].headers.find("x-content-signature"), std::string::npos);
    EXPECT_EQ(count_rows(db, "rejections"), 0);
}

TEST_F(Trust, QuarantineIsBoundedByMaxFailed)
{
    keys.set_mode(mode::not_found);
    running_app app(options([](auto& s) { s.verify.max_failed = 1; }));
    EXPECT_EQ(send(app.http(), delivery(31, "q-1", "q1")).status, 202);
    const auto r = send(app.http(), delivery(32, "q-2", "q2"));
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_NE(r.body.find("\"key_unavailable\""), std::string::npos) << r.body;
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='failed'"), 1);
    EXPECT_EQ(count_rows(db, "rejections", "reason='key_unavailable' AND http_status=401"), 1);
}

// Manage's retry of a delivery first stored pending (key server down) settles the same row.
TEST_F(Trust, VerifiedRedeliveryUpgradesThePendingRow)
{
    keys.set_mode(mode::fail_503);
    running_app app(options([](auto& s) { s.verify.pending_retry_min = std::chrono::hours(1); }));
    ASSERT_EQ(send(app.http(), delivery(40, "up-1")).status, 202);
    keys.set_mode(mode::normal);
    // The failure is negatively cached for key_failure_ttl (50 ms here): wait it out.
    ASSERT_TRUE(eventually([&] {
        const auto r = send(app.http(), delivery(40, "up-1"));
        return r.status == 200 && r.body == "{\"status\":\"stored\",\"id\":1}\n";
    }));
    EXPECT_EQ(app.counter("cwhook_events_upgraded_total"), 1u);
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_GE(rows[0].deliveries, 2);
}

// The forger sent its body first under a genuine MessageId; the genuine delivery that follows
// takes the row over with its own bytes.
TEST_F(Trust, ForgedBodyUnderAGenuineMessageIdNeverBecomesVerified)
{
    running_app app(options([](auto& s) { s.verify.mode = callback::verify_mode::report; }));
    const auto forged = signed_call(make_payload(keys.url(), 41, "shared-id", "deleted"), "not-the-key");
    ASSERT_EQ(send(app.http(), forged).status, 200);  // report mode: kept, flagged failed
    const auto genuine = delivery(41, "shared-id");
    ASSERT_EQ(send(app.http(), genuine).status, 200);
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].body, genuine.body);
    EXPECT_EQ(rows[0].action, "updated");
}

// A refresh that fails keeps the last good key: a genuine delivery signed with it still
// verifies while the key server is down.
TEST_F(Trust, FailedRefreshKeepsTheLastGoodKey)
{
    running_app app(options([](auto& s) { s.verify.key_refetch_interval = std::chrono::milliseconds(0); }));
    ASSERT_EQ(send(app.http(), delivery(50, "rf-1")).status, 200);
    keys.set_mode(mode::fail_503);
    // A mismatch forces a refresh, which fails: no verdict on it, stored pending.
    const auto forged = signed_call(make_payload(keys.url(), 51, "rf-2"), "not-the-key");
    EXPECT_EQ(send(app.http(), forged).status, 202);
    EXPECT_EQ(keys.fetches(), 2);
    const auto r = send(app.http(), delivery(52, "rf-3"));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(keys.fetches(), 2);
}

// Forged key_urls with fresh ids on the operator's own company: each would be a fetch from
// ConnectWise. The per-host budget caps them; deliveries beyond it are deferred with 429
// (which Manage retries) and never stored as pending. Genuine deliveries with a cached key
// keep verifying: the cache is LRU.
TEST_F(Trust, FloodOfForgedIdsStaysWithinTheFetchBudget)
{
    keys.set_mode(mode::not_found);  // unknown ids, as the cloud would answer
    running_app app(options([](auto& s) {
        s.verify.key_fetch_rate = 2;
        s.verify.key_fetch_concurrency = 1;
        s.verify.answer_deadline = std::chrono::milliseconds(300);
        s.verify.key_cache_entries = 8;
        s.verify.max_failed = 1000;
    }));
    keys.set_mode(mode::normal);
    ASSERT_EQ(send(app.http(), delivery(60, "g-0", "genuine")).status, 200);
    keys.set_mode(mode::not_found);
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::future<int>> flood;
    for (int i = 0; i < 40; ++i) {
        flood.push_back(std::async(std::launch::async, [&, i] {
            return send(app.http(), delivery(100 + i, fmt::format("forged-{}", i), fmt::format("fresh-{}", i))).status;
        }));
    }
    int genuine_ok = 0;
    for (int i = 1; i <= 5; ++i) {
        genuine_ok += send(app.http(), delivery(60 + i, fmt::format("g-{}", i), "genuine")).status == 200 ? 1 : 0;
    }
    int deferred = 0;
    int quarantined = 0;
    for (auto& f : flood) {
        const int status = f.get();
        EXPECT_TRUE(status == 429 || status == 202) << status;
        deferred += status == 429 ? 1 : 0;
        quarantined += status == 202 ? 1 : 0;
    }
    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    EXPECT_EQ(genuine_ok, 5);
    // One genuine fetch, then the burst (2) and 2 a second.
    EXPECT_LE(keys.fetches(), 1 + 2 + static_cast<int>(2 * elapsed) + 1) << "elapsed " << elapsed << " s";
    EXPECT_GT(deferred, 0);
    EXPECT_EQ(app.counter("cwhook_deferrals_total", "reason=\"key_fetch_busy\""), static_cast<std::uint64_t>(deferred));
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='pending'"), 0);
    EXPECT_EQ(count_rows(db, "events", "status='failed'"), quarantined);
    EXPECT_EQ(count_rows(db, "events", "status='verified'"), 6);
}

// The operator re-checks quarantined events once the key server answers again (a codebase
// fixed, an allowlist corrected): `cwhook events reverify` settles them with its own
// connection while the daemon runs.
TEST_F(Trust, ReverifyCommandSettlesQuarantinedEvents)
{
    keys.set_mode(mode::not_found);
    running_app app(options());
    ASSERT_EQ(send(app.http(), delivery(70, "rv-1", "rv1")).status, 202);
    const auto forged = signed_call(make_payload(keys.url("rv2"), 71, "rv-2"), "not-the-key");
    ASSERT_EQ(send(app.http(), forged).status, 202);
    ASSERT_TRUE(eventually([&] { return count_rows(db, "events", "status='failed'") == 2; }));
    keys.set_mode(mode::normal);
    const auto conf = dir.file("cwhook.toml");
    write_file(conf, fmt::format("[verify]\ncompanies = [\"cobalt\"]\nallowed_key_hosts = [\"{}\"]\nca_file = \"{}\"\n"
                                 "key_refetch_interval = \"0\"\n[storage]\npath = \"{}\"\n",
                                 keys.host_entry(), cert.cert, db));
    const auto bad = run_cwhook({"events", "reverify", "--config", conf, "--status", "verified"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--status: \"verified\""), std::string::npos) << bad.err;
    const auto r = run_cwhook({"events", "reverify", "--config", conf, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "{\"checked\":2,\"verified\":1,\"failed\":1,\"unchanged\":0,\"skipped\":0,\"errors\":0}\n");
    EXPECT_EQ(count_rows(db, "events", "status='verified' AND entity_id=70"), 1);
    EXPECT_EQ(count_rows(db, "events", "status='failed' AND verify_reason='bad_signature' AND entity_id=71"), 1);
}

TEST_F(Trust, ReverifyThroughTheAdminApi)
{
    keys.set_mode(mode::fail_503);
    running_app app(options([](auto& s) { s.verify.pending_retry_min = std::chrono::hours(1); }));
    ASSERT_EQ(send(app.http(), delivery(80, "api-1")).status, 202);
    keys.set_mode(mode::normal);
    const auto ep = app.get().admin_endpoints().front();
    http_call c;
    c.target = "/api/events/reverify";
    c.headers = {{"Authorization", "Bearer " + app.get().admin_token()}, {"Content-Type", "application/json"},
                 {"Host", fmt::format("127.0.0.1:{}", ep.port())}};
    c.body = R"({"filter":{"status":"verified"}})";
    EXPECT_EQ(send(ep, c).status, 400);
    c.body = R"({"filter":{"type":"ticket"}})";
    // The failed fetch is negatively cached for key_failure_ttl (50 ms here).
    http_result r;
    ASSERT_TRUE(eventually([&] {
        r = send(ep, c);
        return r.status == 200 && r.body.find("\"verified\":1") != std::string::npos;
    })) << r.status << " " << r.body;
    EXPECT_EQ(count_rows(db, "events", "status='verified'"), 1);
}

} // namespace
} // namespace cwhook::test
