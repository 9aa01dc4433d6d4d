// The ingest pipeline end to end: the receiver in-process on 127.0.0.1:0, a fake key
// server over real HTTPS (trusted through ca_file), a temp SQLite file read back with a
// separate connection.
#include "support/harness.hpp"

#include "crypto/signature.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include <future>
#include <thread>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using mode = fake_key_server::mode;

class Ingest : public ::testing::Test, protected receiver_env {
protected:
    http_call delivery(std::int64_t id, std::string_view message_id = {}, std::string_view key_id = "k1")
    {
        return signed_call(make_payload(keys.url(key_id), id, message_id), keys.key());
    }
};

TEST_F(Ingest, SignedDeliveryIsStoredVerified)
{
    running_app app(options());
    const auto call = delivery(57961, "cb67323f-43ba-4ef6-b471-6bb90e62ab6a");
    const auto r = send(app.http(), call);
    ASSERT_EQ(r.status, 200) << r.body << r.error;
    EXPECT_EQ(r.body, "{\"status\":\"stored\",\"id\":1}\n");
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].body, call.body);
    EXPECT_EQ(rows[0].type, "ticket");
    EXPECT_EQ(rows[0].action, "updated");
    EXPECT_EQ(rows[0].entity_id, 57961);
    EXPECT_EQ(rows[0].message_id, "cb67323f-43ba-4ef6-b471-6bb90e62ab6a");
    EXPECT_EQ(rows[0].client_addr, "127.0.0.1");
}

TEST_F(Ingest, FixtureBodyIsStoredByteForByte)
{
    running_app app(options());
    std::string body = fixture("amp-labs-contact-added.json");
    // Point the published payload's key_url at our key server; every other byte stays.
    const auto start = body.find("{{testServerURL}}");
    ASSERT_NE(start, std::string::npos);
    body.replace(start, body.find('"', start) - start, keys.url());
    const auto r = send(app.http(), signed_call(body, keys.key(), "/callbacks?recordId=57960"));
    ASSERT_EQ(r.status, 200) << r.body;
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].body, body);
    EXPECT_EQ(rows[0].type, "contact");
}

TEST_F(Ingest, InvalidUtf8IsVerifiedAndStored)
{
    running_app app(options());
    std::string body = make_payload(keys.url(), 7, "utf8-1");
    body.replace(body.find("Printer"), 7, "Pr\xff\xfe\xc3nter");
    const auto r = send(app.http(), signed_call(body, keys.key()));
    ASSERT_EQ(r.status, 200) << r.body;
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].body, body);
}

TEST_F(Ingest, RepeatDeliveryIsADuplicate)
{
    running_app app(options());
    const auto call = delivery(1, "dup-1");
    ASSERT_EQ(send(app.http(), call).status, 200);
    const auto r = send(app.http(), call);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"status\":\"duplicate\",\"id\":1}\n");
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].deliveries, 2);
}

TEST_F(Ingest, RepeatWithoutMessageIdDedupesOnBodyHash)
{
    running_app app(options());
    const auto call = delivery(2);
    ASSERT_EQ(send(app.http(), call).status, 200);
    EXPECT_EQ(send(app.http(), call).body, "{\"status\":\"duplicate\",\"id\":1}\n");
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 1);
}

TEST_F(Ingest, MalformedPayloadIs400AndRecorded)
{
    running_app app(options());
    http_call c;
    c.body = R"({"Type":"ticket","ID":1,"Metadata":{"key_url":"x"}})";
    const auto r = send(app.http(), c);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, "{\"error\":\"malformed_payload\",\"detail\":\"missing field Action\"}\n");
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 0);
    EXPECT_EQ(count_rows(db, "rejections", "reason='malformed_payload' AND http_status=400"), 1);
}

TEST_F(Ingest, WrongSignatureIs401)
{
    running_app app(options());
    auto call = signed_call(make_payload(keys.url(), 3, "m3"), "not-the-key");
    const auto r = send(app.http(), call);
    EXPECT_EQ(r.status, 401);
    EXPECT_NE(r.body.find("\"bad_signature\""), std::string::npos);
    EXPECT_EQ(app.counter("cwhook_rejections_total", "reason=\"bad_signature\""), 1u);
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 0);
    EXPECT_EQ(count_rows(db, "rejections", "reason='bad_signature'"), 1);
}

TEST_F(Ingest, MissingSignatureIs401)
{
    running_app app(options());
    http_call c;
    c.body = make_payload(keys.url(), 4, "m4");
    const auto r = send(app.http(), c);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.body, "{\"error\":\"bad_signature\",\"detail\":\"missing x-content-signature\"}\n");
    EXPECT_EQ(keys.fetches(), 0);
}

TEST_F(Ingest, PlainHmacWithRawKeyIsRefused)
{
    running_app app(options());
    // The wrong recipe: HMAC keyed with the raw signing key instead of its SHA-256.
    const auto body = make_payload(keys.url(), 5, "m5");
    const auto raw = keys.key();
    const auto mac = crypto::hmac_sha256({reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()}, body);
    http_call c;
    c.body = body;
    c.headers.emplace_back("x-content-signature", crypto::base64_encode(mac));
    EXPECT_EQ(send(app.http(), c).status, 401);
}

TEST_F(Ingest, KeyUrlOffTheAllowlistIs403WithoutAnyRequest)
{
    fake_key_server evil(cert);
    running_app app(options());
    const auto r = send(app.http(), signed_call(make_payload(evil.url(), 6, "m6"), evil.key()));
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.body.find("key_url_not_allowed"), std::string::npos);
    EXPECT_EQ(evil.fetches(), 0);
    app.stop();
    EXPECT_EQ(count_rows(db, "rejections", "reason='key_url_not_allowed' AND http_status=403"), 1);
}

TEST_F(Ingest, PlainHttpKeyUrlIs403)
{
    running_app app(options());
    std::string url = keys.url();
    url.replace(0, 5, "http");
    const auto r = send(app.http(), signed_call(make_payload(url, 8, "m8"), keys.key()));
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(keys.fetches(), 0);
}

TEST_F(Ingest, OversizeBodyIs413AndRecorded)
{
    running_app app(options([](auto& s) { s.server.max_body_bytes = 1000; }));
    http_call c;
    c.body = std::string(2000, 'x');
    const auto r = send(app.http(), c);
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("body_too_large"), std::string::npos);
    app.stop();
    EXPECT_EQ(count_rows(db, "rejections", "reason='body_too_large' AND body_size=2000"), 1);
}

TEST_F(Ingest, UnknownPathIs404AndWrongMethodIs405)
{
    running_app app(options());
    http_call get;
    get.method = "GET";
    get.target = "/callbacks";
    const auto r405 = send(app.http(), get);
    EXPECT_EQ(r405.status, 405);
    EXPECT_EQ(r405.headers.at("allow"), "POST");
    http_call other = delivery(9);
    other.target = "/elsewhere";
    const auto r404 = send(app.http(), other);
    EXPECT_EQ(r404.status, 404);
    EXPECT_EQ(r404.body, "{\"error\":\"not_found\"}\n");
}

TEST_F(Ingest, PathsBelowTheCallbackPathAreDeliveries)
{
    running_app app(options());
    auto call = delivery(10, "m10");
    call.target = "/callbacks/tickets?recordId=10";
    EXPECT_EQ(send(app.http(), call).status, 200);
}

TEST_F(Ingest, HealthAndReadiness)
{
    running_app app(options());
    http_call c;
    c.method = "GET";
    c.target = "/healthz";
    EXPECT_EQ(send(app.http(), c).body, "{\"status\":\"ok\"}\n");
    c.target = "/readyz";
    EXPECT_EQ(send(app.http(), c).status, 200);
}

TEST_F(Ingest, ReadinessFailsWhileTheDatabaseIsLocked)
{
    running_app app(options());
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    http_call c;
    c.method = "GET";
    c.target = "/readyz";
    EXPECT_EQ(send(app.http(), c).status, 503);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    // The failed probe's answer is reused for up to a second (readiness.hpp), then it recovers.
    EXPECT_TRUE(eventually([&] { return send(app.http(), c).status == 200; }));
}

TEST_F(Ingest, LockedDatabaseGives429ThenRecovers)
{
    running_app app(options());
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    const auto busy = send(app.http(), delivery(11, "m11"));
    EXPECT_EQ(busy.status, 429);
    EXPECT_EQ(busy.headers.count("retry-after"), 1u);
    EXPECT_NE(busy.body.find("storage_unavailable"), std::string::npos);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    EXPECT_EQ(send(app.http(), delivery(11, "m11")).status, 200);
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 1);
}

TEST_F(Ingest, FiftyConcurrentDeliveriesCauseOneKeyFetch)
{
    keys.hold();  // the first fetch stays open until the other 49 have joined it
    running_app app(options([](auto& s) {
        s.verify.key_fetch_timeout = 60s;
        s.verify.answer_deadline = 60s;
    }));
    std::vector<std::future<http_result>> results;
    for (int i = 0; i < 50; ++i) {
        results.push_back(std::async(std::launch::async, [&, i] {
            return send(app.http(), delivery(100 + i, fmt::format("sf-{}", i), "single"), {}, 120s);
        }));
    }
    ASSERT_TRUE(eventually([&] { return app.counter("cwhook_key_fetch_coalesced_total") == 49; }))
        << app.counter("cwhook_key_fetch_coalesced_total");
    keys.release();
    for (auto& f : results) {
        EXPECT_EQ(f.get().status, 200);
    }
    EXPECT_EQ(keys.fetches(), 1);
    EXPECT_EQ(app.counter("cwhook_key_fetches_total"), 1u);
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='verified'"), 50);
}

TEST_F(Ingest, RotatedKeyIsRefetchedOnce)
{
    running_app app(options([](auto& s) { s.verify.key_refetch_interval = std::chrono::milliseconds(0); }));
    ASSERT_EQ(send(app.http(), delivery(20, "r1")).status, 200);
    EXPECT_EQ(keys.fetches(), 1);
    keys.set_key("rotated-signing-key");
    const auto r = send(app.http(), delivery(21, "r2"));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(keys.fetches(), 2);
    EXPECT_EQ(send(app.http(), delivery(22, "r3")).status, 200);
    EXPECT_EQ(keys.fetches(), 2);  // the new key is cached
}

// A forged signature against a cached key earns a fresh fetch, but one key is fetched at
// most once per key_refetch_interval: within it, forgeries cost no fetch and are deferred
// (429). (Forgeries sharing one refetch: key_cache_test.cpp, on a simulated clock.)
TEST_F(Ingest, ForgeriesWithinTheRefetchIntervalCostNoFetch)
{
    running_app app(options([](auto& s) { s.verify.key_refetch_interval = 1h; }));
    ASSERT_EQ(send(app.http(), delivery(23, "f1")).status, 200);
    std::vector<std::future<http_result>> results;
    for (int i = 0; i < 20; ++i) {
        results.push_back(std::async(std::launch::async, [&, i] {
            return send(app.http(), signed_call(make_payload(keys.url("k1"), 24 + i, fmt::format("f{}", 2 + i)), "guess"));
        }));
    }
    for (auto& f : results) {
        const auto r = f.get();
        EXPECT_EQ(r.status, 429) << r.body;
        EXPECT_NE(r.body.find("key_fetch_busy"), std::string::npos) << r.body;
    }
    EXPECT_EQ(keys.fetches(), 1);
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 1);
}

// Outside the interval a forgery earns one fresh fetch, and with the fresh key it is refused.
TEST_F(Ingest, ForgeryAfterTheRefetchIntervalEarnsOneFreshFetch)
{
    running_app app(options([](auto& s) { s.verify.key_refetch_interval = 0ms; }));
    ASSERT_EQ(send(app.http(), delivery(23, "f1")).status, 200);
    const auto r = send(app.http(), signed_call(make_payload(keys.url("k1"), 24, "f2"), "guess"));
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(keys.fetches(), 2);
}

TEST_F(Ingest, KeyServerDownGives202PendingThenVerified)
{
    keys.set_mode(mode::fail_503);
    running_app app(options());
    const auto r = send(app.http(), delivery(30, "p1"));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.body, "{\"status\":\"pending\",\"id\":1}\n");
    EXPECT_EQ(count_rows(db, "events", "status='pending'"), 1);
    keys.set_mode(mode::normal);
    EXPECT_TRUE(eventually([&] { return count_rows(db, "events", "status='verified'") == 1; }));
    EXPECT_EQ(app.counter("cwhook_reverify_total", "outcome=\"verified\""), 1u);
}

TEST_F(Ingest, PendingForgeryBecomesFailed)
{
    keys.set_mode(mode::close);
    running_app app(options());
    const auto r = send(app.http(), signed_call(make_payload(keys.url(), 31, "p2"), "forged-key"));
    ASSERT_EQ(r.status, 202) << r.body;
    keys.set_mode(mode::normal);
    EXPECT_TRUE(eventually([&] { return count_rows(db, "events", "status='failed' AND verify_reason='bad_signature'") == 1; }));
}

TEST_F(Ingest, PendingRowsAreBounded)
{
    keys.set_mode(mode::fail_503);
    running_app app(options([](auto& s) { s.verify.max_pending = 2; }));
    EXPECT_EQ(send(app.http(), delivery(40, "b1")).status, 202);
    EXPECT_EQ(send(app.http(), delivery(41, "b2")).status, 202);
    const auto r = send(app.http(), delivery(42, "b3"));
    EXPECT_EQ(r.status, 429);
    EXPECT_NE(r.body.find("pending_limit"), std::string::npos);
    EXPECT_EQ(r.headers.count("retry-after"), 1u);
}

// A key server that answers without a usable key cannot settle a delivery either way: it is
// kept whole as failed (quarantined) and acknowledged, never refused (Manage would not retry).
TEST_F(Ingest, KeyServerAnswering404IsQuarantined)
{
    keys.set_mode(mode::not_found);
    running_app app(options());
    const auto r = send(app.http(), delivery(50, "n1"));
    EXPECT_EQ(r.status, 202);
    EXPECT_EQ(r.body, "{\"status\":\"failed\",\"id\":1,\"reason\":\"key_unavailable\"}\n");
}

TEST_F(Ingest, KeyServerRedirectIsNotFollowed)
{
    keys.set_mode(mode::redirect);
    running_app app(options());
    const auto r = send(app.http(), delivery(51, "n2"));
    EXPECT_EQ(r.status, 202);
    EXPECT_NE(r.body.find("key_redirect"), std::string::npos);
    EXPECT_EQ(keys.fetches(), 1);
}

TEST_F(Ingest, HugeKeyAnswerIsBounded)
{
    keys.set_mode(mode::huge);
    running_app app(options());
    const auto r = send(app.http(), delivery(52, "n3"));
    EXPECT_EQ(r.status, 202);
    EXPECT_NE(r.body.find("key_unavailable"), std::string::npos);
}

TEST_F(Ingest, SlowKeyServerTimesOutToPending)
{
    keys.hold();  // never answers: only the fetch timeout can end the wait
    running_app app(options([](auto& s) { s.verify.key_fetch_timeout = std::chrono::milliseconds(300); }));
    const auto r = send(app.http(), delivery(53, "n4"), {}, 120s);
    EXPECT_EQ(r.status, 202) << r.error << r.body;
    EXPECT_NE(r.body.find("\"status\":\"pending\""), std::string::npos) << r.body;
}

TEST_F(Ingest, CertificateForAnotherNameIsNotTrusted)
{
    temp_dir other;
    const auto wrong = make_cert(other, "wrong", {"other.example"});
    fake_key_server impostor(wrong);
    running_app app(options([&](auto& s) {
        s.verify.allowed_key_hosts.push_back(impostor.host_entry());
        s.verify.ca_file = wrong.cert;  // trusted CA, but not issued for 127.0.0.1
    }));
    const auto r = send(app.http(), signed_call(make_payload(impostor.url(), 54, "n5"), impostor.key()));
    EXPECT_EQ(r.status, 202);  // unverifiable for now: kept, not trusted
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='pending'"), 1);
}

TEST_F(Ingest, ReportModeStoresFailuresFlagged)
{
    auto o = options();
    o.mode = callback::verify_mode::report;
    running_app app(o);
    const auto r = send(app.http(), signed_call(make_payload(keys.url(), 60, "rep1"), "wrong"));
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"verification\":\"failed\""), std::string::npos);
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='failed' AND verify_reason='bad_signature'"), 1);
}

TEST_F(Ingest, OffModeStoresUnverifiedWithoutFetching)
{
    auto o = options();
    o.mode = callback::verify_mode::off;
    running_app app(o);
    http_call c;
    c.body = make_payload("https://anything.example/key", 61, "off1");
    EXPECT_EQ(send(app.http(), c).status, 200);
    EXPECT_EQ(keys.fetches(), 0);
    app.stop();
    EXPECT_EQ(count_rows(db, "events", "status='unverified'"), 1);
}

TEST_F(Ingest, SixtyFourConcurrentConnectionsStoreSixtyFourRows)
{
    running_app app(options());
    ASSERT_EQ(send(app.http(), delivery(999, "warm")).status, 200);  // key cached
    std::vector<std::future<http_result>> results;
    for (int i = 0; i < 64; ++i) {
        results.push_back(std::async(std::launch::async, [&, i] {
            return send(app.http(), delivery(1000 + i, fmt::format("c64-{}", i)));
        }));
    }
    for (auto& f : results) {
        EXPECT_EQ(f.get().status, 200);
    }
    app.stop();
    EXPECT_EQ(count_rows(db, "events"), 65);
}

TEST_F(Ingest, RestartKeepsEveryRow)
{
    {
        running_app app(options());
        for (int i = 0; i < 10; ++i) {
            ASSERT_EQ(send(app.http(), delivery(2000 + i, fmt::format("rs-{}", i))).status, 200);
        }
    }
    running_app again(options());
    EXPECT_EQ(send(again.http(), delivery(2000, "rs-0")).body, "{\"status\":\"duplicate\",\"id\":1}\n");
    EXPECT_EQ(send(again.http(), delivery(2010, "rs-10")).body, "{\"status\":\"stored\",\"id\":11}\n");
    again.stop();
    EXPECT_EQ(count_rows(db, "events"), 11);
    EXPECT_EQ(integrity_check(db), "ok");
}

TEST_F(Ingest, HttpsListenerWithGeneratedCertificate)
{
    running_app app(options([&](auto& s) {
        s.server.tls_listen = {"127.0.0.1:0"};
        s.server.tls_cert = cert.cert;
        s.server.tls_key = cert.key;
    }));
    const auto r = send(app.https(), delivery(70, "tls1"), cert.cert);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(send(app.http(), delivery(71, "tls2")).status, 200);  // plain listener alongside
}

TEST_F(Ingest, ForwardedForIsBelievedOnlyFromTrustedProxies)
{
    {
        running_app app(options([](auto& s) { s.server.trusted_proxies = {"127.0.0.0/8"}; }));
        auto call = delivery(80, "xff1");
        call.headers.emplace_back("X-Forwarded-For", "203.0.113.9, 127.0.0.2");
        ASSERT_EQ(send(app.http(), call).status, 200);
    }
    {
        running_app app(options());
        auto call = delivery(81, "xff2");
        call.headers.emplace_back("X-Forwarded-For", "203.0.113.9");
        ASSERT_EQ(send(app.http(), call).status, 200);
    }
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].client_addr, "203.0.113.9");
    EXPECT_EQ(rows[1].client_addr, "127.0.0.1");
}

TEST_F(Ingest, SecretsInHeadersAreRedacted)
{
    running_app app(options());
    auto call = delivery(90, "sec1");
    call.headers.emplace_back("Authorization", "Basic c2VjcmV0");
    call.headers.emplace_back("Cookie", "session=abc");
    ASSERT_EQ(send(app.http(), call).status, 200);
    app.stop();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].headers.find("c2VjcmV0"), std::string::npos);
    EXPECT_EQ(rows[0].headers.find("session=abc"), std::string::npos);
    EXPECT_NE(rows[0].headers.find("Authorization: <redacted>"), std::string::npos);
}

} // namespace
} // namespace cwhook::test
