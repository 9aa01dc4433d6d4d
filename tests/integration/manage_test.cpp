// The Manage API client and subscription sync against the emulator (a real HTTPS server on
// 127.0.0.1:0 with its own certificate): paging both ways over thousands of entries, the
// retry policy on injected 429/503/400, the messages for bad credentials and clientId,
// codebase discovery, sync plan/apply/idempotence/re-enable/prune, the daemon's periodic
// check, and the whole loop trigger -> cwhook -> stored verified row.
#include "support/harness.hpp"

#include "emulator/emulator.hpp"
#include "manage/api.hpp"
#include "manage/sync.hpp"

#include <boost/asio/awaitable.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <mutex>
#include <set>
#include <thread>

namespace cwhook::test {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string callbacks_prefix = "/v2025_1/apis/3.0/system/callbacks";

class Manage : public ::testing::Test {
protected:
    void SetUp() override
    {
        clear_recorded_sleeps();
        emulator::settings es;
        es.tls = true;
        es.state_dir = dir.file("emulator");
        emu = std::make_unique<emulator::emulator>(es);
        auto port = emu->start();
        ASSERT_TRUE(port) << port.error();
    }

    manage::settings settings() const
    {
        manage::settings s;
        s.site = emu->site();
        s.company_id = emu->config().company;
        s.public_key = emu->config().public_key;
        s.private_key = emu->config().private_key;
        s.client_id = emu->config().client_id;
        s.ca_file = emu->ca_file();
        s.max_attempts = 4;
        return s;
    }

    std::unique_ptr<manage::blocking_api> open(const manage::settings& s)
    {
        auto b = manage::blocking_api::create(s);
        if (!b) {
            ADD_FAILURE() << b.error();
            return nullptr;
        }
        (*b)->async().request_options().retry.sleep = record_sleep;
        return std::move(*b);
    }
    std::unique_ptr<manage::blocking_api> open() { return open(settings()); }

    manage::outcome<std::vector<manage::callback>> list(manage::blocking_api& b, manage::paging_mode mode,
                                                        std::size_t page_size, const manage::conditions& where = {})
    {
        return b.run(b.async().list_callbacks(where, mode, page_size));
    }

    // Faults on system/callbacks only (companyinfo stays healthy), after the codebase is known
    // and with the counters reset, so request counts are the retries of one call.
    void fault_callbacks(manage::blocking_api& b, unsigned status, unsigned count,
                         std::chrono::seconds retry_after = {})
    {
        ASSERT_FALSE(b.run(b.async().codebase()).empty());
        emulator::fault f;
        f.path_prefix = callbacks_prefix;
        f.status = status;
        f.count = count;
        f.retry_after = retry_after;
        emu->add_fault(f);
        emu->reset_counters();
    }

    emulator::callback_entry entry(std::string type, std::string level, std::int64_t object_id, std::string url,
                                   bool inactive = false, std::string description = "")
    {
        emulator::callback_entry e;
        e.type = std::move(type);
        e.level = std::move(level);
        e.object_id = object_id;
        e.url = std::move(url);
        e.inactive = inactive;
        e.description = std::move(description);
        return e;
    }

    temp_dir dir;
    std::unique_ptr<emulator::emulator> emu;
    const std::string receiver = "https://hooks.example.com/callbacks?recordId=";
};

void expect_all_ids(const std::vector<manage::callback>& got, const std::vector<std::int64_t>& ids)
{
    ASSERT_EQ(got.size(), ids.size());
    std::set<std::int64_t> seen;
    for (const auto& c : got) {
        seen.insert(c.id);
    }
    EXPECT_EQ(seen, std::set<std::int64_t>(ids.begin(), ids.end()));
}

TEST_F(Manage, ForwardOnlyPagingReadsMoreThan2000Entries)
{
    const auto ids = emu->seed_callbacks(2345, entry("ticket", "board", 1, receiver));
    auto b = open();
    ASSERT_TRUE(b);
    emu->reset_counters();
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_TRUE(got) << got.error().message;
    expect_all_ids(*got, ids);
    for (std::size_t i = 1; i < got->size(); ++i) {
        ASSERT_LT((*got)[i - 1].id, (*got)[i].id);
    }
    EXPECT_EQ(b->async().last_pages(), 3u);
    EXPECT_EQ(emu->requests(emulator::route::callbacks_list), 3u);
    for (const auto& r : emu->recent_requests()) {
        if (r.kind == emulator::route::callbacks_list) {
            EXPECT_EQ(r.header("pagination-type"), "forward-only");
            EXPECT_THAT(r.target, Not(HasSubstr("page=")));
        }
    }
}

TEST_F(Manage, NavigablePagingFollowsLinkNext)
{
    const auto ids = emu->seed_callbacks(2345, entry("ticket", "board", 1, receiver));
    auto b = open();
    ASSERT_TRUE(b);
    auto got = list(*b, manage::paging_mode::navigable, 1000);
    ASSERT_TRUE(got) << got.error().message;
    expect_all_ids(*got, ids);
    EXPECT_EQ(b->async().last_pages(), 3u);

    auto small = list(*b, manage::paging_mode::navigable, 500);
    ASSERT_TRUE(small) << small.error().message;
    expect_all_ids(*small, ids);
    EXPECT_EQ(b->async().last_pages(), 5u);
}

TEST_F(Manage, PagingKeepsConditions)
{
    emu->seed_callbacks(1500, entry("ticket", "board", 1, receiver));
    emu->seed_callbacks(700, entry("company", "status", 1, receiver));
    auto b = open();
    ASSERT_TRUE(b);
    manage::conditions where;
    where.where("type", manage::op::eq, std::string("company"));
    for (const auto mode : {manage::paging_mode::forward_only, manage::paging_mode::navigable}) {
        auto got = list(*b, mode, 300, where);
        ASSERT_TRUE(got) << got.error().message;
        EXPECT_EQ(got->size(), 700u);
        for (const auto& c : *got) {
            ASSERT_EQ(c.type, "company");
        }
    }
}

TEST_F(Manage, EveryCallCarriesAuthClientIdAndVersion)
{
    auto b = open();
    ASSERT_TRUE(b);
    ASSERT_TRUE(list(*b, manage::paging_mode::forward_only, 1000));
    bool saw_api_call = false;
    for (const auto& r : emu->recent_requests()) {
        if (r.kind == emulator::route::companyinfo) {
            EXPECT_EQ(r.header("Authorization"), "");
            continue;
        }
        saw_api_call = true;
        EXPECT_EQ(r.header("clientId"), emu->config().client_id);
        EXPECT_EQ(r.header("Accept"), "application/vnd.connectwise.com+json; version=2025.1");
        EXPECT_EQ(r.header("Authorization"), manage::basic_auth(settings()));
    }
    EXPECT_TRUE(saw_api_call);
}

TEST_F(Manage, TooManyRequestsHonoursRetryAfter)
{
    auto b = open();
    ASSERT_TRUE(b);
    fault_callbacks(*b, 429, 2, 1s);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(emu->requests(emulator::route::callbacks_list), 3u);
    EXPECT_EQ(recorded_sleeps(), (std::vector<milliseconds>{1000ms, 1000ms}));
    EXPECT_EQ(b->metrics().counter_value("cwhook_client_retries_total", "reason=\"status_429\""), 2u);
}

TEST_F(Manage, ServiceUnavailableIsRetriedWithBackoff)
{
    auto b = open();
    ASSERT_TRUE(b);
    fault_callbacks(*b, 503, 2);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(emu->requests(emulator::route::callbacks_list), 3u);
    const auto sleeps = recorded_sleeps();
    ASSERT_EQ(sleeps.size(), 2u);
    EXPECT_LE(sleeps[0], 100ms);
    EXPECT_GE(sleeps[1], 100ms);
    EXPECT_LE(sleeps[1], 200ms);
    EXPECT_EQ(b->metrics().counter_value("cwhook_client_retries_total", "reason=\"status_5xx\""), 2u);
}

TEST_F(Manage, PersistentServerErrorGivesUpAfterMaxAttempts)
{
    auto b = open();
    ASSERT_TRUE(b);
    fault_callbacks(*b, 500, 0);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().status, 500u);
    EXPECT_THAT(got.error().message, HasSubstr("try again later"));
    EXPECT_EQ(emu->requests(emulator::route::callbacks_list), 4u);
}

TEST_F(Manage, BadRequestIsNotRetried)
{
    auto b = open();
    ASSERT_TRUE(b);
    fault_callbacks(*b, 400, 1);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().status, 400u);
    EXPECT_EQ(emu->requests(emulator::route::callbacks_list), 1u);
    EXPECT_TRUE(recorded_sleeps().empty());
    EXPECT_EQ(b->metrics().counter_value("cwhook_client_retries_total", "reason=\"status_5xx\""), 0u);
}

TEST_F(Manage, CreateIsNotRepeatedAfterAServerError)
{
    auto b = open();
    ASSERT_TRUE(b);
    fault_callbacks(*b, 503, 1);
    const manage::subscription s{"ticket", "owner", 1, receiver, "t"};
    auto c = b->run(b->async().create_callback(s, false));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().status, 503u);
    EXPECT_EQ(emu->requests(emulator::route::callbacks_create), 1u);
}

TEST_F(Manage, WrongKeysSayWhichSettingsToCheck)
{
    auto s = settings();
    s.private_key = "not-the-key";
    auto b = open(s);
    ASSERT_TRUE(b);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().status, 401u);
    EXPECT_THAT(got.error().message,
                HasSubstr("401 Unauthorized: check manage.company_id, manage.public_key and manage.private_key"));
    EXPECT_THAT(got.error().message, Not(HasSubstr("not-the-key")));
    EXPECT_EQ(emu->requests(emulator::route::callbacks_list), 1u);
}

TEST_F(Manage, WrongClientIdSaysToCheckClientId)
{
    auto s = settings();
    s.client_id = "00000000-0000-0000-0000-000000000000";
    auto b = open(s);
    ASSERT_TRUE(b);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().status, 400u);
    EXPECT_THAT(got.error().message, HasSubstr("400 InvalidClientId: check manage.client_id"));
}

TEST_F(Manage, MissingClientIdIsRefusedBeforeAnyRequest)
{
    auto s = settings();
    s.client_id.clear();
    auto b = manage::blocking_api::create(s);
    ASSERT_FALSE(b);
    EXPECT_THAT(b.error(), HasSubstr("manage.client_id: not set"));
    EXPECT_EQ(emu->total_requests(), 0u);
}

TEST_F(Manage, UnreachableSiteNamesTheHost)
{
    auto s = settings();
    const auto port = emu->port();
    emu->stop();
    s.max_attempts = 2;
    auto b = open(s);
    ASSERT_TRUE(b);
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().status, 0u);
    EXPECT_THAT(got.error().message, HasSubstr(fmt::format("cannot reach 127.0.0.1:{}", port)));
}

TEST_F(Manage, CodebaseComesFromCompanyInfoAndMovesAfterA404)
{
    auto b = open();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->run(b->async().codebase()), "v2025_1/");
    emu->set_codebase("v2026_1/");
    emu->reset_counters();
    auto got = list(*b, manage::paging_mode::forward_only, 1000);
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(b->run(b->async().codebase()), "v2026_1/");
    EXPECT_EQ(emu->requests(emulator::route::companyinfo), 1u);
}

TEST_F(Manage, ObjectExistsNamesTheMatchingEntry)
{
    const auto id = emu->add_callback(entry("ticket", "owner", 1, receiver));
    auto b = open();
    ASSERT_TRUE(b);
    const manage::subscription s{"ticket", "owner", 1, receiver, "again"};
    auto c = b->run(b->async().create_callback(s, false));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, "ObjectExists");
    EXPECT_EQ(c.error().existing_id, id);
    EXPECT_EQ(c.error().message, fmt::format("400 ObjectExists: a matching callback entry already exists (id {})", id));
}

TEST_F(Manage, CrudRoundTrip)
{
    auto b = open();
    ASSERT_TRUE(b);
    const manage::subscription s{"ticket", "board", 7, receiver, "board 7"};
    auto c = b->run(b->async().create_callback(s, false));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->object_id, 7);
    const std::optional<std::string> none;
    auto off = b->run(b->async().patch_callback(c->id, true, none));
    ASSERT_TRUE(off) << off.error().message;
    EXPECT_TRUE(off->inactive);
    EXPECT_TRUE(emu->find_callback(c->id)->inactive);
    auto got = b->run(b->async().get_callback(c->id));
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->inactive);
    ASSERT_TRUE(b->run(b->async().delete_callback(c->id)));
    EXPECT_FALSE(emu->find_callback(c->id));
    auto gone = b->run(b->async().get_callback(c->id));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().status, 404u);
}

// --- sync ---------------------------------------------------------------------------------

class Sync : public Manage {
protected:
    manage::plan sync(manage::blocking_api& b, bool prune, std::vector<manage::applied>* results = nullptr)
    {
        const manage::conditions everything;
        auto actual = b.run(b.async().list_callbacks(everything));
        EXPECT_TRUE(actual);
        auto plan = manage::make_plan(desired, actual ? *actual : std::vector<manage::callback>{}, prune);
        auto r = b.run(manage::apply_plan(b.async(), plan));
        for (const auto& a : r) {
            EXPECT_TRUE(a.ok) << a.message;
        }
        if (results != nullptr) {
            *results = std::move(r);
        }
        return plan;
    }

    std::vector<manage::subscription> desired{
        {"ticket", "owner", 1, receiver, "tickets"},
        {"company", "status", 3, receiver, "active companies"},
    };
};

TEST_F(Sync, CreatesWhatIsMissingThenChangesNothing)
{
    auto b = open();
    ASSERT_TRUE(b);
    const auto first = sync(*b, false);
    EXPECT_EQ(first.count(manage::action::create), 2u);
    EXPECT_EQ(emu->callbacks().size(), 2u);

    emu->reset_counters();
    const auto second = sync(*b, false);
    EXPECT_EQ(second.count(manage::action::unchanged), 2u);
    EXPECT_FALSE(second.has_changes());
    EXPECT_EQ(emu->requests(emulator::route::callbacks_create), 0u);
    EXPECT_EQ(emu->requests(emulator::route::callback_update), 0u);
    EXPECT_EQ(emu->requests(emulator::route::callback_delete), 0u);
}

TEST_F(Sync, ReenablesWhatManageDisabled)
{
    const auto id = emu->add_callback(entry("ticket", "owner", 1, receiver, true, "tickets"));
    auto b = open();
    ASSERT_TRUE(b);
    const auto p = sync(*b, false);
    EXPECT_EQ(p.count(manage::action::reenable), 1u);
    EXPECT_FALSE(emu->find_callback(id)->inactive);
}

TEST_F(Sync, UpdatesADriftedDescription)
{
    const auto id = emu->add_callback(entry("ticket", "owner", 1, receiver, false, "old words"));
    auto b = open();
    ASSERT_TRUE(b);
    const auto p = sync(*b, false);
    EXPECT_EQ(p.count(manage::action::update), 1u);
    EXPECT_EQ(emu->find_callback(id)->description, "tickets");
}

TEST_F(Sync, PruneDeletesOnlyOurExtras)
{
    const auto ours = emu->add_callback(entry("contact", "owner", 1, receiver));
    const auto theirs = emu->add_callback(entry("contact", "owner", 1, "https://other.example/x?recordId="));
    auto b = open();
    ASSERT_TRUE(b);
    const auto keep = sync(*b, false);
    EXPECT_EQ(keep.count(manage::action::remove), 1u);
    EXPECT_TRUE(emu->find_callback(ours));

    const auto prune = sync(*b, true);
    EXPECT_EQ(prune.count(manage::action::remove, true), 1u);
    EXPECT_FALSE(emu->find_callback(ours));
    EXPECT_TRUE(emu->find_callback(theirs));
}

TEST_F(Sync, CopesWithAnEntryCreatedBehindItsBack)
{
    auto b = open();
    ASSERT_TRUE(b);
    // The plan is made before the entry appears: create answers ObjectExists.
    const auto plan = manage::make_plan(desired, {}, false);
    const auto id = emu->add_callback(entry("ticket", "owner", 1, receiver, true, "tickets"));
    const auto results = b->run(manage::apply_plan(b->async(), plan));
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
        EXPECT_TRUE(r.ok) << r.message;
    }
    EXPECT_EQ(results[0].id, id);
    EXPECT_THAT(results[0].message, HasSubstr("exists already"));
    EXPECT_FALSE(emu->find_callback(id)->inactive);
    EXPECT_EQ(emu->callbacks().size(), 2u);
}

// --- the daemon ---------------------------------------------------------------------------

TEST_F(Manage, PeriodicCheckReportsAnInactiveSubscription)
{
    const auto id = emu->add_callback(entry("ticket", "owner", 1, receiver, true));
    app_options o;
    o.db = dir.file("var/cwhook.db");
    o.tweak = [&](callback::app_settings& s) {
        s.manage = settings();
        s.manage.check_interval = 50ms;
        s.subscriptions = {{"ticket", "owner", 1, receiver, ""}, {"company", "owner", 1, receiver, ""}};
    };
    running_app app(o);
    ASSERT_TRUE(eventually([&] { return app.counter("cwhook_subscription_checks_total", "outcome=\"ok\"") >= 1; }));
    EXPECT_EQ(app.get().metrics().gauge_value("cwhook_subscriptions_inactive"), 1);
    EXPECT_EQ(app.get().metrics().gauge_value("cwhook_subscriptions_missing"), 1);
    EXPECT_TRUE(emu->find_callback(id)->inactive); // reported, not repaired
    EXPECT_EQ(emu->requests(emulator::route::callbacks_create), 0u);
}

TEST_F(Manage, PeriodicCheckWithAutoHealRepairs)
{
    const auto id = emu->add_callback(entry("ticket", "owner", 1, receiver, true));
    app_options o;
    o.db = dir.file("var/cwhook.db");
    o.tweak = [&](callback::app_settings& s) {
        s.manage = settings();
        s.manage.check_interval = 50ms;
        s.manage.auto_heal = true;
        s.subscriptions = {{"ticket", "owner", 1, receiver, ""}, {"company", "owner", 1, receiver, ""}};
    };
    running_app app(o);
    ASSERT_TRUE(eventually([&] { return !emu->find_callback(id)->inactive && emu->callbacks().size() == 2; }));
    ASSERT_TRUE(eventually([&] {
        return app.get().metrics().gauge_value("cwhook_subscriptions_missing") == 0 &&
               app.get().metrics().gauge_value("cwhook_subscriptions_inactive") == 0;
    }));
    EXPECT_GE(app.counter("cwhook_subscription_repairs_total"), 2u);
}

TEST_F(Manage, FullLoopTriggerReachesCwhookAndIsStoredVerified)
{
    const auto db = dir.file("var/cwhook.db");
    app_options o;
    o.db = db;
    o.allowed_key_hosts = {emu->site()};
    o.companies = {emu->config().company};
    o.ca_file = emu->ca_file();
    running_app app(o);

    // cwhook subscriptions sync, in-process.
    auto b = open();
    ASSERT_TRUE(b);
    const std::vector<manage::subscription> want{
        {"ticket", "owner", 1, fmt::format("http://127.0.0.1:{}/callbacks?recordId=", app.http().port()), "loop"}};
    const auto plan = manage::make_plan(want, {}, false);
    const auto applied = b->run(manage::apply_plan(b->async(), plan));
    ASSERT_EQ(applied.size(), 1u);
    ASSERT_TRUE(applied[0].ok) << applied[0].message;

    emulator::trigger_request t;
    t.type = "ticket";
    t.action = "updated";
    t.id = 5000;
    const auto deliveries = emu->trigger(t);
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_TRUE(deliveries[0].delivered) << deliveries[0].status << " " << deliveries[0].error;
    EXPECT_EQ(deliveries[0].status, 200u);
    EXPECT_EQ(deliveries[0].url, want[0].url + "5000");

    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].type, "ticket");
    EXPECT_EQ(rows[0].action, "updated");
    EXPECT_EQ(rows[0].entity_id, 5000);
    EXPECT_EQ(rows[0].body, deliveries[0].body);
    EXPECT_EQ(emu->requests(emulator::route::callback_key), 1u);
}

TEST_F(Manage, ForgedDeliveryWithAKeyUrlOffTheAllowlistFetchesNothing)
{
    // A second emulator plays the forger's key server: cwhook must not even ask it.
    emulator::settings es;
    es.tls = true;
    es.state_dir = dir.file("forger");
    emulator::emulator forger(es);
    ASSERT_TRUE(forger.start());

    const auto db = dir.file("var/cwhook.db");
    app_options o;
    o.db = db;
    o.allowed_key_hosts = {emu->site()};
    o.companies = {emu->config().company};
    o.ca_file = emu->ca_file();
    running_app app(o);

    const auto body = make_payload(forger.key_url(), 5000);
    const auto res = send(app.http(), signed_call(body, forger.signing_key()));
    EXPECT_EQ(res.status, 403);
    EXPECT_THAT(res.body, HasSubstr("key_url_not_allowed"));
    EXPECT_EQ(forger.requests(emulator::route::callback_key), 0u);
    EXPECT_EQ(forger.total_requests(), 0u);
    EXPECT_EQ(count_rows(db, "events"), 0);
}

} // namespace
} // namespace cwhook::test
