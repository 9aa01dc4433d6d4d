#include "callback/admin_sessions.hpp"
#include "callback/admin_ui.hpp"

#include <gtest/gtest.h>

namespace cwhook::callback {
namespace {

using namespace std::chrono_literals;

struct fake_clock {
    std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
    admin_sessions::clock_fn fn()
    {
        return [this] { return now; };
    }
};

TEST(AdminSessions, SessionIsFoundUntilItExpires)
{
    fake_clock clock;
    admin_sessions s(session_settings{}, clock.fn());
    const auto c = s.create();
    EXPECT_EQ(c.id.size(), 64u);
    EXPECT_EQ(c.csrf.size(), 64u);
    EXPECT_NE(c.id, c.csrf);
    auto found = s.find(c.id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->csrf, c.csrf);
    EXPECT_EQ(found->expires_in, 8h);
    clock.now += 8h - 1s;
    EXPECT_TRUE(s.find(c.id));
    clock.now += 1s;
    EXPECT_FALSE(s.find(c.id));
    EXPECT_EQ(s.size(), 0u);
}

TEST(AdminSessions, UnknownOrMalformedIdsFindNothing)
{
    admin_sessions s;
    const auto c = s.create();
    EXPECT_FALSE(s.find(""));
    EXPECT_FALSE(s.find(std::string(64, 'a')));
    EXPECT_FALSE(s.find(c.id.substr(1)));
    EXPECT_FALSE(s.find(c.csrf)); // the CSRF token is no session id
    s.erase(c.id);
    EXPECT_FALSE(s.find(c.id));
}

TEST(AdminSessions, BeyondTheCapTheSessionExpiringFirstGoes)
{
    fake_clock clock;
    session_settings cfg;
    cfg.max_sessions = 2;
    admin_sessions s(cfg, clock.fn());
    const auto a = s.create();
    clock.now += 1s;
    const auto b = s.create();
    clock.now += 1s;
    const auto c = s.create();
    EXPECT_FALSE(s.find(a.id));
    EXPECT_TRUE(s.find(b.id));
    EXPECT_TRUE(s.find(c.id));
}

TEST(AdminSessions, FailedLoginsAreLimitedPerClientAndInAll)
{
    fake_clock clock;
    session_settings cfg;
    cfg.failures_per_client = 2;
    cfg.failures_in_all = 3;
    admin_sessions s(cfg, clock.fn());
    EXPECT_EQ(s.login_wait("a"), 0s);
    s.login_failed("a");
    EXPECT_EQ(s.login_wait("a"), 0s);
    s.login_failed("a");
    EXPECT_EQ(s.login_wait("a"), 60s);
    EXPECT_EQ(s.login_wait("b"), 0s);
    s.login_failed("b");
    // Three in all: every client waits.
    EXPECT_GT(s.login_wait("c").count(), 0);
    clock.now += 30s;
    EXPECT_EQ(s.login_wait("a"), 30s);
    clock.now += 30s;
    EXPECT_EQ(s.login_wait("a"), 0s);
    EXPECT_EQ(s.login_wait("c"), 0s);
}

TEST(AdminUi, CookieValueIsFoundAmongOthers)
{
    EXPECT_EQ(cookie_value("cwhook_session=abc", "cwhook_session"), "abc");
    EXPECT_EQ(cookie_value("a=1; cwhook_session=abc; b=2", "cwhook_session"), "abc");
    EXPECT_EQ(cookie_value("xcwhook_session=abc", "cwhook_session"), "");
    EXPECT_EQ(cookie_value("", "cwhook_session"), "");
}

TEST(AdminUi, OnlyFilesAndTheLoginArePublic)
{
    const auto req = [](boost::beast::http::verb v, std::string target) {
        http::request r;
        r.msg.method(v);
        r.msg.target(target);
        return r;
    };
    using boost::beast::http::verb;
    EXPECT_TRUE(admin_ui::is_public(req(verb::get, "/ui/")));
    EXPECT_TRUE(admin_ui::is_public(req(verb::get, "/ui/js/main.js")));
    EXPECT_TRUE(admin_ui::is_public(req(verb::post, "/ui/api/login")));
    EXPECT_FALSE(admin_ui::is_public(req(verb::get, "/ui/api/session")));
    EXPECT_FALSE(admin_ui::is_public(req(verb::post, "/ui/api/logout")));
    EXPECT_FALSE(admin_ui::is_public(req(verb::get, "/uix")));
    EXPECT_FALSE(admin_ui::is_public(req(verb::get, "/api/events")));
    EXPECT_FALSE(admin_ui::is_public(req(verb::post, "/ui/")));
}

} // namespace
} // namespace cwhook::callback
