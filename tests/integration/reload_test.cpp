// A reload in process: config::plan_reload() feeding app::reload(), as the daemon's SIGHUP
// does. The application's settings afterwards are the ones in force, and live [verify]
// settings reach the next delivery.
#include "config/config.hpp"
#include "support/harness.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

namespace cwhook::test {
namespace {

class Reload : public ::testing::Test, protected receiver_env {};

config::settings running_config(running_app& app)
{
    config::settings s;
    s.app = app.get().settings();
    return s;
}

TEST_F(Reload, SettingsAreTheOnesInForce)
{
    running_app app(options());
    const auto running = running_config(app);
    auto next = running;
    next.app.server.max_body_bytes = 4096;  // live
    next.app.verify.max_pending = 7;        // live
    next.app.server.threads = running.app.server.threads + 3;  // needs a restart
    next.app.storage.retention_batch = 17;                     // needs a restart
    const auto plan = config::plan_reload(running, next);
    ASSERT_TRUE(app.get().reload(plan.in_force.app, plan.restart));

    const auto now = app.get().settings();
    EXPECT_EQ(now.server.max_body_bytes, 4096u);
    EXPECT_EQ(now.verify.max_pending, 7u);
    EXPECT_EQ(now.server.threads, running.app.server.threads);
    EXPECT_EQ(now.storage.retention_batch, running.app.storage.retention_batch);
    EXPECT_EQ(app.counter("cwhook_reloads_total", "result=\"restart_needed\""), 1u);
    EXPECT_EQ(app.get().metrics().gauge_value("cwhook_restart_needed", "key=\"server.threads\""), 1);
    EXPECT_EQ(app.get().metrics().gauge_value("cwhook_restart_needed", "key=\"storage.retention_batch\""), 1);
}

TEST_F(Reload, VerifyModeAppliesToTheNextDelivery)
{
    running_app app(options());
    auto forged = signed_call(make_payload(keys.url(), 1, "m1"), "not-the-key");
    EXPECT_EQ(send(app.http(), forged).status, 401);

    const auto running = running_config(app);
    auto next = running;
    next.app.verify.mode = callback::verify_mode::off;
    const auto plan = config::plan_reload(running, next);
    ASSERT_EQ(plan.live, std::vector<std::string>{"verify.mode"});
    ASSERT_TRUE(app.get().reload(plan.in_force.app, plan.restart));
    EXPECT_EQ(app.counter("cwhook_reloads_total", "result=\"applied\""), 1u);

    forged = signed_call(make_payload(keys.url(), 2, "m2"), "not-the-key");
    EXPECT_EQ(send(app.http(), forged).status, 200);
    EXPECT_EQ(count_rows(db, "events", "status = 'unverified'"), 1);
}

TEST_F(Reload, AFailedReloadChangesNothingAndCountsRejected)
{
    running_app app(options());
    auto next = app.get().settings();
    next.server.tls_listen = {"127.0.0.1:0"};
    next.server.tls_cert = dir.file("missing.pem");
    next.server.tls_key = dir.file("missing.pem");
    EXPECT_FALSE(app.get().reload(next));
    EXPECT_EQ(app.counter("cwhook_reloads_total", "result=\"rejected\""), 1u);
    EXPECT_TRUE(app.get().settings().server.tls_listen.empty());
}

// The destinations are recorded in the database: while it cannot be written the reload is
// rejected as a whole (nothing of it applied, counted "rejected"), and the same reload applies
// once the database is back.
TEST_F(Reload, DestinationsThatCannotBeRecordedRejectTheReload)
{
    running_app app(options());
    auto next = app.get().settings();
    next.verify.max_pending = 7; // live, and must not be applied alone
    forward::destination d;
    d.name = "crm";
    d.url = "http://127.0.0.1:9/hook";
    d.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    next.destinations = {d};

    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    const auto refused = app.get().reload(next);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    ASSERT_FALSE(refused);
    EXPECT_TRUE(refused.error().starts_with("destinations: ")) << refused.error();
    EXPECT_EQ(app.counter("cwhook_reloads_total", "result=\"rejected\""), 1u);
    EXPECT_EQ(app.counter("cwhook_reloads_total", "result=\"applied\""), 0u);
    EXPECT_NE(app.get().settings().verify.max_pending, 7u);
    EXPECT_TRUE(app.get().settings().destinations.empty());
    EXPECT_EQ(count_rows(db, "destinations"), 0);

    ASSERT_TRUE(app.get().reload(next));
    EXPECT_EQ(app.get().settings().verify.max_pending, 7u);
    EXPECT_EQ(count_rows(db, "destinations", "name = 'crm'"), 1);
}

} // namespace
} // namespace cwhook::test
