// Catch-up end to end: the emulator plays Manage (records behind its REST collections,
// callbacks that fail while cwhook is away and are given up), cwhook runs in-process or as a
// child process on a SQLite file, and a sink receives what is forwarded.
#include "support/harness.hpp"
#include "support/sink.hpp"

#include "core/json_string.hpp"
#include "emulator/emulator.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <set>
#include <sys/wait.h>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr std::string_view sink_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

class CatchUp : public ::testing::Test {
protected:
    void SetUp() override
    {
        emulator::settings es;
        es.tls = true;
        es.state_dir = dir.file("emulator");
        es.retry_delays = {10ms, 20ms};
        es.delivery_timeout = 2s;
        es.disable_after_failures = 0;
        es.clock = [this] { return std::chrono::system_clock::now() + std::chrono::seconds(clock_offset_s.load()); };
        emu = std::make_unique<emulator::emulator>(es);
        auto port = emu->start();
        ASSERT_TRUE(port) << port.error();
    }

    manage::settings manage_settings() const
    {
        manage::settings s;
        s.site = emu->site();
        s.company_id = emu->config().company;
        s.public_key = emu->config().public_key;
        s.private_key = emu->config().private_key;
        s.client_id = emu->config().client_id;
        s.ca_file = emu->ca_file();
        s.max_attempts = 1; // throttling is the run's to wait out (the client would retry at once)
        return s;
    }

    // A receiver that trusts the emulator, catches up tickets, companies and contacts, and
    // forwards to the sink.
    app_options options(std::function<void(callback::app_settings&)> more = {})
    {
        app_options o;
        o.db = db;
        o.allowed_key_hosts = {emu->site()};
        o.companies = {emu->config().company};
        o.ca_file = emu->ca_file();
        o.tweak = [this, more](callback::app_settings& s) {
            s.manage = manage_settings();
            s.catch_up.types = {"ticket", "company", "contact"};
            s.catch_up.interval = 1h;
            s.catch_up.rate = 1000;
            forward::destination d;
            d.name = "sink";
            d.url = out.url();
            d.secret = std::string(sink_secret);
            s.destinations = {d};
            s.forward.poll_interval = 50ms;
            if (more) {
                more(s);
            }
        };
        return o;
    }

    // Points a Manage subscription of `type` at the running receiver.
    void subscribe(const running_app& app, const std::string& type)
    {
        emulator::callback_entry e;
        e.type = type;
        e.level = "owner";
        e.object_id = 1;
        e.url = fmt::format("http://127.0.0.1:{}/callbacks?recordId=", app.http().port());
        emu->add_callback(e);
    }

    std::vector<emulator::delivery_result> change(const std::string& type, std::int64_t id,
                                                  const std::string& action = "updated", bool callback = true)
    {
        emulator::trigger_request t;
        t.type = type;
        t.action = action;
        t.id = id;
        t.callback = callback;
        return emu->trigger(t);
    }

    // Every type's start run has finished (ok or not).
    static bool runs_done(running_app& app, std::initializer_list<std::string_view> types, std::uint64_t n = 1)
    {
        for (auto t : types) {
            const auto ok = app.counter("cwhook_catch_up_runs_total", fmt::format("type=\"{}\",result=\"ok\"", t));
            const auto bad = app.counter("cwhook_catch_up_runs_total", fmt::format("type=\"{}\",result=\"error\"", t));
            if (ok + bad < n) {
                return false;
            }
        }
        return true;
    }

    std::int64_t synthesized(const std::string& where = "1=1")
    {
        return count_rows(db, "events", "status = 'synthesized' AND " + where);
    }

    std::atomic<int> clock_offset_s{0}; // Manage's clock, stepped instead of slept
    temp_dir dir;
    std::string db = dir.file("var/cwhook.db");
    std::unique_ptr<emulator::emulator> emu;
    sink out;
};

TEST_F(CatchUp, OutageChangesAppearOnceAsSynthesizedEventsAndAreForwarded)
{
    {
        running_app app(options());
        ASSERT_TRUE(eventually([&] { return runs_done(app, {"ticket", "company", "contact"}); }));
        for (const auto* type : {"ticket", "company", "contact"}) {
            subscribe(app, type);
        }
        // Changes whose callbacks arrive: catch-up must find them already seen.
        for (int i = 0; i < 5; ++i) {
            const auto d = change("ticket", 900 + i);
            ASSERT_EQ(d.size(), 1u);
            ASSERT_TRUE(d[0].delivered) << d[0].error;
        }
        app.stop();
    }
    // cwhook is away: Manage's deliveries fail, it retries twice and gives up.
    std::size_t given_up = 0;
    const std::vector<std::string> types{"ticket", "company", "contact"};
    for (int i = 0; i < 50; ++i) {
        const auto d = change(types[i % 3], 1000 + i, i % 5 == 0 ? "added" : "updated");
        ASSERT_EQ(d.size(), 1u);
        given_up += d[0].delivered ? 0 : 1;
    }
    ASSERT_EQ(given_up, 50u);
    EXPECT_EQ(count_rows(db, "events"), 5);

    running_app app(options());
    ASSERT_TRUE(eventually([&] { return runs_done(app, {"ticket", "company", "contact"}); }));
    EXPECT_EQ(synthesized(), 50);
    EXPECT_EQ(count_rows(db, "events", "source = 'catch_up'"), 50);
    EXPECT_EQ(count_rows(db, "events", "status = 'synthesized' AND entity_id BETWEEN 1000 AND 1049"), 50);
    EXPECT_EQ(count_rows(db, "events", "entity_id BETWEEN 900 AND 904"), 5); // seen: nothing new
    // Created in the window: added; an older record changed: updated.
    EXPECT_EQ(count_rows(db, "events", "status = 'synthesized' AND action = 'added'"), 10);
    EXPECT_EQ(app.counter("cwhook_catch_up_events_synthesized_total", "type=\"ticket\"") +
                  app.counter("cwhook_catch_up_events_synthesized_total", "type=\"company\"") +
                  app.counter("cwhook_catch_up_events_synthesized_total", "type=\"contact\""),
              50u);

    // Forwarded, with their source: the 5 callbacks and the 50 synthesized.
    ASSERT_TRUE(out.wait_for(55));
    std::set<std::string> from_catch_up;
    for (const auto& r : out.requests()) {
        if (r.header("x-cwhook-source") == "catch_up") {
            from_catch_up.insert(r.header("webhook-id"));
        }
    }
    EXPECT_EQ(from_catch_up.size(), 50u);

    // The synthesized body has Manage's shape, its Entity the record as the REST API has it.
    const auto rows = query_events(db, "status = 'synthesized' AND entity_id = 1001");
    ASSERT_EQ(rows.size(), 1u);
    const auto rec = emu->find_record("company", 1001);
    ASSERT_TRUE(rec);
    EXPECT_THAT(rows[0].body, HasSubstr(R"("Type":"company")"));
    EXPECT_THAT(rows[0].body, HasSubstr(R"("ID":1001)"));
    EXPECT_THAT(rows[0].body, HasSubstr(R"("source":"catch_up")"));
    EXPECT_THAT(rows[0].body, HasSubstr(rec->last_updated));
}

TEST_F(CatchUp, ACallbackAfterItsSynthesizedTwinIsLinkedAndNotForwardedAgain)
{
    change("ticket", 7, "updated", false); // changed during an outage: no callback
    running_app app(options());
    ASSERT_TRUE(eventually([&] { return runs_done(app, {"ticket"}); }));
    ASSERT_EQ(synthesized("entity_id = 7"), 1);
    ASSERT_TRUE(out.wait_for(1));

    // Manage's late delivery of that same change.
    const auto rec = emu->find_record("ticket", 7);
    ASSERT_TRUE(rec);
    std::string body =
        fmt::format(R"({{"Action":"updated","Type":"ticket","ID":7,"CompanyId":"{}","MessageId":)"
                    R"("3b2a6f0e-1c1d-4a8b-9a51-0d5c1a7e9f01","Entity":{},"Metadata":{{"key_url":"{}"}}}})",
                    emu->config().company, json_quoted(rec->json), emu->key_url());
    const auto res = send(app.http(), signed_call(body, emu->signing_key()));
    ASSERT_EQ(res.status, 200) << res.body;
    const auto twin = query_events(db, "source = 'callback' AND entity_id = 7");
    ASSERT_EQ(twin.size(), 1u);
    EXPECT_EQ(twin[0].status, "verified");
    EXPECT_EQ(count_rows(db, "events", "entity_id = 7 AND twin_of IS NOT NULL"), 1);
    EXPECT_EQ(count_rows(db, "deliveries", fmt::format("event_id = {}", twin[0].id)), 0);
    EXPECT_EQ(count_rows(db, "events", fmt::format("id = {} AND feed_seq IS NULL", twin[0].id)), 1);

    // A newer change of the same ticket (a later second) is a change of its own: forwarded as usual.
    clock_offset_s = 5;
    subscribe(app, "ticket");
    ASSERT_TRUE(change("ticket", 7).at(0).delivered);
    ASSERT_TRUE(out.wait_for(2));
    EXPECT_EQ(count_rows(db, "events", "entity_id = 7 AND source = 'callback' AND twin_of IS NULL"), 1);
    EXPECT_EQ(out.count(), 2u);
}

TEST_F(CatchUp, TwoThousandFiveHundredChangedRecordsPageCorrectly)
{
    emu->touch_records("ticket", 1, 2500, "updated", false);
    running_app app(options([](callback::app_settings& s) {
        s.catch_up.types = {"ticket"};
        s.catch_up.batch = 200;
        s.manage.page_size = 1000;
        s.destinations.clear();
    }));
    ASSERT_TRUE(eventually([&] { return runs_done(app, {"ticket"}); }, 60s));
    EXPECT_EQ(synthesized(), 2500);
    EXPECT_EQ(count_rows(db, "events", "status = 'synthesized' AND entity_id BETWEEN 1 AND 2500"), 2500);
    // Forward-only paging: 3 pages of ids (1000, 1000, 500), then 13 batches of full records.
    EXPECT_EQ(emu->requests(emulator::route::records_list), 3u + 13u);
}

TEST_F(CatchUp, NavigablePagingReadsEveryRecordToo)
{
    emu->touch_records("company", 1, 2500, "updated", false);
    running_app app(options([](callback::app_settings& s) {
        s.catch_up.types = {"company"};
        s.catch_up.batch = 200;
        s.manage.page_size = 1000;
        s.manage.paging = manage::paging_mode::navigable;
        s.destinations.clear();
    }));
    ASSERT_TRUE(eventually([&] { return runs_done(app, {"company"}); }, 60s));
    EXPECT_EQ(synthesized(), 2500);
}

TEST_F(CatchUp, ThrottlingSlowsTheRunWithoutLosingItsPlace)
{
    emu->touch_records("contact", 1, 300, "updated", false);
    emulator::fault f;
    f.path_prefix = emu->api_url().substr(emu->base_url().size()) + "/company/contacts";
    f.status = 429;
    f.count = 2;
    f.retry_after = 1s;
    emu->add_fault(f);
    running_app app(options([](callback::app_settings& s) {
        s.catch_up.types = {"contact"};
        s.catch_up.batch = 100;
        s.destinations.clear();
    }));
    ASSERT_TRUE(eventually([&] { return runs_done(app, {"contact"}); }, 60s));
    EXPECT_EQ(app.counter("cwhook_catch_up_runs_total", "type=\"contact\",result=\"ok\""), 1u);
    EXPECT_EQ(synthesized(), 300);
    EXPECT_EQ(app.counter("cwhook_catch_up_rest_errors_total", "type=\"contact\""), 2u);
}

TEST_F(CatchUp, ADeletedRecordIsFoundByReconciliation)
{
    const auto tweak = [](callback::app_settings& s) {
        s.catch_up.types = {"contact"};
        s.catch_up.reconcile_deletes = {"contact"};
        s.destinations.clear();
    };
    emu->touch_records("contact", 1, 3, "added", false);
    {
        running_app app(options(tweak));
        ASSERT_TRUE(eventually([&] { return runs_done(app, {"contact"}, 2); })); // run, then reconcile
        ASSERT_EQ(synthesized(), 3);
    }
    change("contact", 2, "deleted", false);
    running_app app(options(tweak));
    ASSERT_TRUE(eventually([&] { return runs_done(app, {"contact"}, 2); }));
    EXPECT_EQ(synthesized("action = 'deleted'"), 1);
    EXPECT_EQ(synthesized("action = 'deleted' AND entity_id = 2"), 1);
}

// ---- the real binary: the commands, and a crash in the middle of a run -------------------

class CatchUpProcess : public CatchUp {
protected:
    void write_config(const std::string& extra = {})
    {
        const auto m = manage_settings();
        write_file(config, fmt::format(R"([server]
listen = ["127.0.0.1:0"]
[storage]
path = "{}"
[verify]
allowed_key_hosts = ["{}"]
companies = ["{}"]
ca_file = "{}"
[manage]
site = "{}"
company_id = "{}"
public_key = "{}"
private_key = "{}"
client_id = "{}"
ca_file = "{}"
max_attempts = 1
[catch_up]
types = ["ticket"]
rate = 1000
batch = 50
{}
)",
                                       db, emu->site(), m.company_id, emu->ca_file(), m.site, m.company_id,
                                       m.public_key, m.private_key, m.client_id, m.ca_file, extra));
    }

    struct cli_result {
        int code = -1;
        std::string out;
        std::string err;
    };

    cli_result cli(const std::string& args)
    {
        const auto out_file = dir.file("stdout.txt");
        const auto err_file = dir.file("stderr.txt");
        const auto command = fmt::format("'{}' {} --config '{}' >'{}' 2>'{}' </dev/null", CWHOOK_BINARY, args, config,
                                         out_file, err_file);
        const int status = std::system(command.c_str());
        cli_result r;
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.out = read_file(out_file);
        r.err = read_file(err_file);
        return r;
    }

    std::string config = dir.file("cwhook.toml");
};

TEST_F(CatchUpProcess, RunDryRunAndStatus)
{
    write_config();
    emu->touch_records("ticket", 1, 4, "updated", false);
    auto dry = cli("catch-up run --dry-run --json");
    ASSERT_EQ(dry.code, 0) << dry.err;
    EXPECT_THAT(dry.out, HasSubstr(R"("type":"ticket","examined":4,"synthesized":4,"already_seen":0)"));
    EXPECT_EQ(count_rows(db, "events"), 0);

    auto run = cli("catch-up run");
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_THAT(run.out, HasSubstr("WATERMARK_AFTER"));
    EXPECT_EQ(synthesized(), 4);
    auto again = cli("catch-up run --json --since 2h");
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_THAT(again.out, HasSubstr(R"("examined":4,"synthesized":0,"already_seen":4)"));
    EXPECT_EQ(synthesized(), 4);

    auto status = cli("catch-up status");
    ASSERT_EQ(status.code, 0) << status.err;
    EXPECT_THAT(status.out, HasSubstr("ticket"));
    EXPECT_THAT(status.out, HasSubstr("command"));

    auto bad = cli("catch-up run --type tickets");
    EXPECT_EQ(bad.code, 2);
    EXPECT_THAT(bad.err, HasSubstr("\"tickets\""));
    auto bad_since = cli("catch-up run --since yesterday");
    EXPECT_EQ(bad_since.code, 2);
    EXPECT_THAT(bad_since.err, HasSubstr("--since"));
}

TEST_F(CatchUpProcess, ACrashMidRunResumesFromTheWatermark)
{
    write_config();
    emu->touch_records("ticket", 1, 400, "updated", false);
    // Each full-record fetch is slow, so the run is still going when it is killed.
    emulator::fault slow;
    slow.path_prefix = emu->api_url().substr(emu->base_url().size()) + "/service/tickets";
    slow.status = 0;
    slow.count = 0;
    slow.delay = 200ms;
    emu->add_fault(slow);
    {
        child_process p({"serve", "--config", config});
        ASSERT_NE(p.wait_for_http_port(), 0);
        ASSERT_TRUE(eventually([&] { return synthesized() >= 50; }, 30s));
        p.signal(SIGKILL);
        p.wait();
    }
    const auto before = synthesized();
    ASSERT_LT(before, 400) << "the run finished before the kill";
    EXPECT_GT(count_rows(db, "catch_up_watermarks", "type = 'ticket' AND last_updated_us > 0"), 0);
    emu->clear_faults();
    child_process p({"serve", "--config", config});
    ASSERT_NE(p.wait_for_http_port(), 0);
    ASSERT_TRUE(eventually([&] { return synthesized() == 400; }, 30s)) << synthesized();
    // Nothing doubled: one synthesized event per record.
    EXPECT_EQ(count_rows(db, "events", "status = 'synthesized'"), 400);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0);
}

} // namespace
} // namespace cwhook::test
