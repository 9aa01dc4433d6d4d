// The web console's rules on the admin listener: files served from the binary with the
// console's security headers and no login, the token traded for a session cookie with the
// right flags, a cookie that is as good as the token for reading but must bring the session's
// CSRF token to change anything, failed logins throttled, and a logout that ends the session.
#include "support/harness.hpp"

#include "callback/admin_api.hpp"
#include "callback/admin_ui.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace cwhook::test {
namespace {

using tcp = boost::asio::ip::tcp;

constexpr std::string_view csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

http_call call(std::string method, std::string target, std::string body = {})
{
    http_call c;
    c.method = std::move(method);
    c.target = std::move(target);
    c.body = std::move(body);
    if (c.method != "GET") {
        c.headers.emplace_back("Content-Type", "application/json");
    }
    return c;
}

std::string header(const http_result& r, const std::string& name)
{
    const auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : it->second;
}

// The value of "name":"..." in a flat JSON answer.
std::string json_text(const std::string& body, std::string_view name)
{
    const auto key = fmt::format("\"{}\":\"", name);
    const auto pos = body.find(key);
    if (pos == std::string::npos) {
        return {};
    }
    const auto start = pos + key.size();
    return body.substr(start, body.find('"', start) - start);
}

class Console : public ::testing::Test, public receiver_env {
protected:
    static tcp::endpoint admin_ep(running_app& app)
    {
        const auto eps = app.get().admin_endpoints();
        EXPECT_FALSE(eps.empty());
        return {boost::asio::ip::make_address("127.0.0.1"), eps.empty() ? std::uint16_t{0} : eps.front().port()};
    }

    struct login_result {
        http_result answer;
        std::string cookie; // "cwhook_session=<id>"
        std::string csrf;
    };

    static login_result login(const tcp::endpoint& ep, std::string_view token)
    {
        login_result out;
        out.answer = send(ep, call("POST", "/ui/api/login", fmt::format(R"({{"token":"{}"}})", token)));
        const auto set = header(out.answer, "set-cookie");
        out.cookie = set.substr(0, set.find(';'));
        out.csrf = json_text(out.answer.body, "csrf_token");
        return out;
    }

    static http_call with_cookie(http_call c, const std::string& cookie)
    {
        c.headers.emplace_back("Cookie", cookie);
        return c;
    }
};

TEST_F(Console, FilesNeedNoLoginAndCarryTheSecurityHeaders)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    for (const auto& [target, type] : std::vector<std::pair<std::string, std::string>>{
             {"/ui/", "text/html; charset=utf-8"},
             {"/ui/events/12", "text/html; charset=utf-8"},
             {"/ui/js/main.js", "text/javascript; charset=utf-8"},
             {"/ui/css/app.css", "text/css; charset=utf-8"},
             {"/ui/vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
             {"/ui/vendor/uplot/LICENSE", "text/plain; charset=utf-8"}}) {
        const auto r = send(ep, call("GET", target));
        EXPECT_EQ(r.status, 200) << target;
        EXPECT_EQ(header(r, "content-type"), type) << target;
        EXPECT_EQ(header(r, "content-security-policy"), csp) << target;
        EXPECT_EQ(header(r, "x-content-type-options"), "nosniff") << target;
        EXPECT_EQ(header(r, "referrer-policy"), "no-referrer") << target;
    }
    const auto page = send(ep, call("GET", "/ui/"));
    EXPECT_NE(page.body.find("<script type=\"module\" src=\"/ui/js/main.js\">"), std::string::npos);
    // Unknown files are 404 (with the headers); the session needs one.
    const auto missing = send(ep, call("GET", "/ui/nothing.js"));
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(header(missing, "content-security-policy"), csp);
    const auto session = send(ep, call("GET", "/ui/api/session"));
    EXPECT_EQ(session.status, 401);
    EXPECT_EQ(header(session, "content-security-policy"), csp);
    EXPECT_EQ(send(ep, call("GET", "/ui")).status, 308);
}

TEST_F(Console, LoginSetsAStrictHttpOnlyCookieAndTheCookieReadsTheApi)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    EXPECT_EQ(send(ep, call("GET", "/api/events")).status, 401);
    const auto in = login(ep, app.get().admin_token());
    ASSERT_EQ(in.answer.status, 200) << in.answer.body;
    const auto set = header(in.answer, "set-cookie");
    EXPECT_TRUE(set.starts_with("cwhook_session=")) << set;
    EXPECT_NE(set.find("; HttpOnly"), std::string::npos) << set;
    EXPECT_NE(set.find("; SameSite=Strict"), std::string::npos) << set;
    EXPECT_NE(set.find("; Path=/"), std::string::npos) << set;
    EXPECT_NE(set.find("; Max-Age=28800"), std::string::npos) << set;
    EXPECT_EQ(set.find("Secure"), std::string::npos) << "plain HTTP listener: " << set;
    EXPECT_EQ(in.csrf.size(), 64u) << in.answer.body;

    EXPECT_EQ(send(ep, with_cookie(call("GET", "/api/events"), in.cookie)).status, 200);
    EXPECT_EQ(send(ep, with_cookie(call("GET", "/metrics"), in.cookie)).status, 200);
    const auto session = send(ep, with_cookie(call("GET", "/ui/api/session"), in.cookie));
    EXPECT_EQ(session.status, 200);
    EXPECT_EQ(json_text(session.body, "csrf_token"), in.csrf);
    // A forged cookie is nobody's session.
    EXPECT_EQ(send(ep, with_cookie(call("GET", "/api/events"), "cwhook_session=" + std::string(64, 'a'))).status, 401);
    EXPECT_EQ(app.counter("cwhook_admin_logins_total", "result=\"ok\""), 1u);
}

TEST_F(Console, WrongTokenIsRefusedAndRepeatedFailuresAreThrottled)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    for (int i = 0; i < 5; ++i) {
        const auto r = login(ep, "not-the-token");
        EXPECT_EQ(r.answer.status, 401) << r.answer.body;
        EXPECT_EQ(header(r.answer, "set-cookie"), "");
    }
    // Now not even the right token is looked at until the window ends.
    const auto throttled = login(ep, app.get().admin_token());
    EXPECT_EQ(throttled.answer.status, 429) << throttled.answer.body;
    EXPECT_FALSE(header(throttled.answer, "retry-after").empty());
    EXPECT_EQ(header(throttled.answer, "set-cookie"), "");
    EXPECT_EQ(app.counter("cwhook_admin_logins_total", "result=\"bad_token\""), 5u);
    EXPECT_EQ(app.counter("cwhook_admin_logins_total", "result=\"throttled\""), 1u);
}

TEST_F(Console, CookieWithoutTheCsrfTokenChangesNothing)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    const auto in = login(ep, app.get().admin_token());
    ASSERT_EQ(in.answer.status, 200);
    const auto retry = with_cookie(call("POST", "/api/deliveries/retry", R"({"all":true,"dry_run":true})"), in.cookie);
    const auto bare = send(ep, retry);
    EXPECT_EQ(bare.status, 403) << bare.body;
    EXPECT_NE(bare.body.find("\"error\":\"csrf_token_invalid\""), std::string::npos) << bare.body;
    auto wrong = retry;
    wrong.headers.emplace_back("X-CSRF-Token", std::string(64, '0'));
    EXPECT_EQ(send(ep, wrong).status, 403);
    auto right = retry;
    right.headers.emplace_back("X-CSRF-Token", in.csrf);
    const auto ok = send(ep, right);
    EXPECT_EQ(ok.status, 200) << ok.body;
    // The bearer token needs no CSRF token: a browser never sends it on its own.
    auto bearer = call("POST", "/api/deliveries/retry", R"({"all":true,"dry_run":true})");
    bearer.headers.emplace_back("Authorization", "Bearer " + std::string(app.get().admin_token()));
    EXPECT_EQ(send(ep, bearer).status, 200);
    EXPECT_EQ(app.counter("cwhook_admin_refused_total", "reason=\"csrf\""), 2u);
}

TEST_F(Console, ForeignOriginIsRefusedBeforeTheCookieCounts)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    const auto in = login(ep, app.get().admin_token());
    ASSERT_EQ(in.answer.status, 200);
    auto c = with_cookie(call("POST", "/api/deliveries/retry", R"({"all":true,"dry_run":true})"), in.cookie);
    c.headers.emplace_back("X-CSRF-Token", in.csrf);
    c.headers.emplace_back("Origin", "https://evil.example");
    const auto r = send(ep, c);
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.body.find("\"error\":\"origin_not_allowed\""), std::string::npos) << r.body;
    // The console's own origin (the Host it was loaded from, as a browser sends both) passes.
    c.headers.back().second = fmt::format("http://127.0.0.1:{}", ep.port());
    c.headers.emplace_back("Host", fmt::format("127.0.0.1:{}", ep.port()));
    EXPECT_EQ(send(ep, c).status, 200);
    // An origin naming this address on another port is another origin.
    c.headers[c.headers.size() - 2].second = fmt::format("http://127.0.0.1:{}", ep.port() + 1);
    EXPECT_EQ(send(ep, c).status, 403);
    // A login from a foreign page is refused too.
    auto foreign = call("POST", "/ui/api/login", fmt::format(R"({{"token":"{}"}})", app.get().admin_token()));
    foreign.headers.emplace_back("Origin", "https://evil.example");
    EXPECT_EQ(send(ep, foreign).status, 403);
}

TEST_F(Console, LogoutEndsTheSession)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    const auto in = login(ep, app.get().admin_token());
    ASSERT_EQ(in.answer.status, 200);
    auto out = with_cookie(call("POST", "/ui/api/logout", "{}"), in.cookie);
    EXPECT_EQ(send(ep, out).status, 403); // without the CSRF token
    out.headers.emplace_back("X-CSRF-Token", in.csrf);
    const auto r = send(ep, out);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(header(r, "set-cookie").find("Max-Age=0"), std::string::npos);
    EXPECT_EQ(send(ep, with_cookie(call("GET", "/api/events"), in.cookie)).status, 401);
}

TEST_F(Console, StatsCountTheWindowInBuckets)
{
    running_app app(options());
    for (std::int64_t id = 1; id <= 3; ++id) {
        auto c = signed_call(make_payload(keys.url(), id, fmt::format("msg-{}", id)), keys.key());
        c.headers.emplace_back("Content-Type", "application/json");
        ASSERT_EQ(send(app.http(), c).status, 200);
    }
    // Two forgeries: refused, counted under their reason.
    for (std::int64_t id = 4; id <= 5; ++id) {
        auto c = signed_call(make_payload(keys.url(), id, fmt::format("msg-{}", id)), "not-the-key");
        c.headers.emplace_back("Content-Type", "application/json");
        ASSERT_EQ(send(app.http(), c).status, 401);
    }
    const auto ep = admin_ep(app);
    auto c = call("GET", "/api/stats?window=1h");
    c.headers.emplace_back("Authorization", "Bearer " + std::string(app.get().admin_token()));
    // Rejections are recorded behind their answer: wait for both.
    http_result r;
    EXPECT_TRUE(eventually([&] {
        r = send(ep, c);
        return r.body.find(R"("rejections":{"total":2,)") != std::string::npos;
    }));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find(R"("window_s":3600,"bucket_s":60,)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("events":{"total":3,)"), std::string::npos) << r.body;
    // Sixty buckets, the three verified events in the last one or two (a minute may turn).
    const std::string key = "\"by_status\":{\"verified\":[";
    const auto pos = r.body.find(key);
    ASSERT_NE(pos, std::string::npos) << r.body;
    const auto end = r.body.find(']', pos);
    std::int64_t total = 0;
    std::size_t buckets = 0;
    std::string_view counts(r.body.data() + pos + key.size(), end - pos - key.size());
    while (!counts.empty()) {
        const auto comma = counts.find(',');
        total += std::stoll(std::string(counts.substr(0, comma)));
        ++buckets;
        counts = comma == std::string_view::npos ? std::string_view{} : counts.substr(comma + 1);
    }
    EXPECT_EQ(buckets, 60u);
    EXPECT_EQ(total, 3);
    EXPECT_NE(r.body.find(R"("by_type":{"ticket":[)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("rejections":{"total":2,"by_reason":{"bad_signature":[)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("pending":0,"failed":0})"), std::string::npos) << r.body;
    c.target = "/api/stats?window=2h";
    EXPECT_EQ(send(ep, c).status, 400);
}

TEST_F(Console, EventsCountIsWhatTheListFiltersSelect)
{
    running_app app(options());
    for (std::int64_t id = 1; id <= 3; ++id) {
        auto c = signed_call(make_payload(keys.url(), id, fmt::format("msg-{}", id), id == 1 ? "added" : "updated"),
                             keys.key());
        c.headers.emplace_back("Content-Type", "application/json");
        ASSERT_EQ(send(app.http(), c).status, 200);
    }
    const auto ep = admin_ep(app);
    const auto count = [&](std::string query) {
        auto c = call("GET", "/api/events/count" + query);
        c.headers.emplace_back("Authorization", "Bearer " + std::string(app.get().admin_token()));
        return send(ep, c);
    };
    EXPECT_EQ(count("").body, "{\"count\":3}\n");
    EXPECT_EQ(count("?action=updated").body, "{\"count\":2}\n");
    EXPECT_EQ(count("?action=updated&entity_id=3").body, "{\"count\":1}\n");
    EXPECT_EQ(count("?limit=1").status, 400);
    EXPECT_EQ(count("?colour=red").status, 400);
}

TEST_F(Console, SessionLifetimeIsTheConfiguredOne)
{
    running_app app(options([](callback::app_settings& s) { s.admin.session_lifetime = std::chrono::minutes(30); }));
    const auto in = login(admin_ep(app), app.get().admin_token());
    ASSERT_EQ(in.answer.status, 200) << in.answer.body;
    const auto set = header(in.answer, "set-cookie");
    EXPECT_NE(set.find("; Max-Age=1800"), std::string::npos) << set;
    EXPECT_NE(in.answer.body.find("\"expires_in_s\":1800"), std::string::npos) << in.answer.body;
}

// Without [manage] credentials the subscriptions view says which keys are missing, and an
// apply is refused before anything is planned.
TEST_F(Console, SubscriptionsWithoutManageCredentialsNameTheMissingKeys)
{
    running_app app(options());
    const auto ep = admin_ep(app);
    const auto bearer = [&](http_call c) {
        c.headers.emplace_back("Authorization", "Bearer " + std::string(app.get().admin_token()));
        return send(ep, c);
    };
    const auto shown = bearer(call("GET", "/api/subscriptions"));
    EXPECT_EQ(shown.status, 200) << shown.body;
    EXPECT_NE(shown.body.find("\"configured\":false"), std::string::npos) << shown.body;
    EXPECT_NE(shown.body.find("manage.site"), std::string::npos) << shown.body;
    const auto applied = bearer(call("POST", "/api/subscriptions/sync", R"({"plan_id":"0123456789abcdef"})"));
    EXPECT_EQ(applied.status, 409) << applied.body;
    EXPECT_NE(applied.body.find("manage_not_configured"), std::string::npos) << applied.body;
    EXPECT_EQ(bearer(call("POST", "/api/subscriptions/sync", R"({"plan_id":7})")).status, 400);
    EXPECT_EQ(bearer(call("POST", "/api/subscriptions/sync", R"({"plan_id":"x","colour":"red"})")).status, 400);
    EXPECT_EQ(bearer(call("GET", "/api/subscriptions?prune=perhaps")).status, 400);
    // Without a token: the gate's 401, like every other route.
    EXPECT_EQ(send(ep, call("GET", "/api/subscriptions")).status, 401);
}

} // namespace
} // namespace cwhook::test
