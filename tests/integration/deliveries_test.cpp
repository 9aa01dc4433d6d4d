// The forwarding outbox for operators, end to end: `cwhook deliveries` / `cwhook destinations`
// as child processes on a SQLite file, and the admin API's routes over real sockets, on an
// outbox made the way the store makes it (destinations synced, verified events stored,
// deliveries claimed and answered: done, failing, dead and never tried); and the signed ping
// of a configured destination, from both, to a real downstream server.
#include "support/harness.hpp"
#include "support/sink.hpp"
#include "unit/store/store_calls.hpp"

#include "store/event_db.hpp"
#include "store/event_store.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;

constexpr std::int64_t hour_us = 3'600'000'000;

std::int64_t now_micros()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::size_t count_of(const std::string& text, std::string_view needle)
{
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
        ++n;
    }
    return n;
}

std::size_t lines_in(const std::string& text)
{
    return count_of(text, "\n");
}

store::event_record verified_event(int n)
{
    store::event_record ev;
    ev.received_at_us = now_micros();
    ev.status = store::event_status::verified;
    ev.dedupe_key = fmt::format("m:fwd-{}", n);
    ev.body = fmt::format(R"({{"MessageId":"fwd-{}","Action":"updated","Type":"ticket","ID":{}}})", n, n);
    ev.body_sha256 = std::string(64, 'a');
    ev.method = "POST";
    ev.path = "/callbacks";
    ev.client_addr = "192.0.2.10";
    ev.headers = "Content-Type: application/json\n";
    ev.content_type = "application/json";
    ev.message_id = fmt::format("fwd-{}", n);
    ev.type = "ticket";
    ev.action = "updated";
    ev.entity_id = n;
    ev.company_id = "Cobalt";
    return ev;
}

store::delivery_result answered(const store::claimed_delivery& c, store::delivery_state state, int status,
                                std::string error, std::int64_t next = 0)
{
    store::delivery_result r;
    r.id = c.id;
    r.lease_until_us = c.lease_until_us;
    r.state = state;
    r.next_attempt_at_us = next;
    r.at_us = now_micros();
    r.http_status = status;
    r.latency_us = 12'345;
    r.error = std::move(error);
    return r;
}

// Three events, two destinations that take them all:
//   crm:   e1 done (204), e2 failing (503, next in an hour), e3 dead (500)
//   audit: e1 failing (no answer, next in an hour), e2 and e3 pending (never tried)
struct outbox {
    std::int64_t e1 = 0, e2 = 0, e3 = 0;
    std::int64_t crm_done = 0, crm_failing = 0, crm_dead = 0;
    std::int64_t audit_failing = 0;
};

outbox seed(const std::string& db)
{
    using namespace store::test_calls;
    store::settings s;
    s.path = db;
    s.busy_timeout = 5s; // a running daemon may be committing
    auto opened = store::event_store::open(s);
    if (!opened) {
        throw std::runtime_error(opened.error());
    }
    auto& st = **opened;
    const auto now = now_micros();
    if (!sync_destinations(st, {route("crm"), route("audit")}, now)) {
        throw std::runtime_error("sync_destinations failed");
    }
    outbox o;
    std::int64_t* events[] = {&o.e1, &o.e2, &o.e3};
    for (int i = 0; i < 3; ++i) {
        auto r = insert(st, verified_event(i + 1));
        if (!r) {
            throw std::runtime_error(r.error().message());
        }
        *events[i] = r->id;
    }
    const auto by_event = [](std::vector<store::claimed_delivery> v) {
        std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.event_id < b.event_id; });
        return v;
    };
    auto crm = claim_deliveries(st, "crm", now, now + 60'000'000);
    auto audit = claim_deliveries(st, "audit", now, now + 60'000'000, false, 1);
    if (!crm || crm->size() != 3 || !audit || audit->size() != 1) {
        throw std::runtime_error("claim_deliveries failed");
    }
    const auto c = by_event(*crm);
    o.crm_done = c[0].id;
    o.crm_failing = c[1].id;
    o.crm_dead = c[2].id;
    o.audit_failing = audit->front().id;
    const auto later = now + hour_us;
    if (!deliver_results(
            st, {answered(c[0], store::delivery_state::done, 204, ""),
                 answered(c[1], store::delivery_state::failing, 503, "HTTP 503", later),
                 answered(c[2], store::delivery_state::dead, 500, "HTTP 500"),
                 answered(audit->front(), store::delivery_state::failing, 0, "connect: connection refused", later)})) {
        throw std::runtime_error("submit_delivery_results failed");
    }
    st.stop();
    return o;
}

// ---- the admin API ---------------------------------------------------------------------

http_call get(std::string target, std::string_view token)
{
    http_call c;
    c.method = "GET";
    c.target = std::move(target);
    c.headers.emplace_back("Authorization", "Bearer " + std::string(token));
    return c;
}

// A POST as a script sends it; tests change or drop headers.
http_call post(std::string target, std::string body, std::string_view token)
{
    http_call c;
    c.target = std::move(target);
    c.body = std::move(body);
    c.headers.emplace_back("Authorization", "Bearer " + std::string(token));
    c.headers.emplace_back("Content-Type", "application/json");
    return c;
}

class DeliveriesApi : public ::testing::Test {
protected:
    DeliveriesApi()
    {
        app_options o;
        o.db = db;
        o.mode = callback::verify_mode::off;
        app = std::make_unique<running_app>(o);
        // After the daemon started: whatever it does with destinations at start is done.
        rows = seed(db);
        const auto eps = app->get().admin_endpoints();
        ep = {boost::asio::ip::make_address("127.0.0.1"), eps.at(0).port()};
        token = app->get().admin_token();
    }

    http_result call(const http_call& c) { return send(ep, c); }
    http_result get(const std::string& target) { return call(test::get(target, token)); }
    http_result post(const std::string& target, std::string body) { return call(test::post(target, body, token)); }

    std::string state_of(std::int64_t delivery)
    {
        const auto db_ = store::event_db::open(db, store::db_access::read_only);
        auto row = (*db_)->delivery(delivery);
        return row && *row ? std::string(store::to_string((*row)->state)) : "missing";
    }

    temp_dir dir;
    std::string db = dir.file("var/cwhook.db");
    std::unique_ptr<running_app> app;
    outbox rows;
    tcp::endpoint ep;
    std::string token;
};

TEST_F(DeliveriesApi, ListsNewestFirstWithFilters)
{
    const auto all = get("/api/deliveries");
    ASSERT_EQ(all.status, 200) << all.body;
    EXPECT_EQ(count_of(all.body, "\"destination\":"), 6u) << all.body;
    EXPECT_NE(all.body.find("\"next_before\":null}"), std::string::npos) << all.body;
    // Newest first.
    EXPECT_LT(all.body.find(fmt::format("{{\"id\":{},", rows.crm_dead)),
              all.body.find(fmt::format("{{\"id\":{},", rows.crm_done)));

    const auto crm = get("/api/deliveries?destination=crm");
    EXPECT_EQ(count_of(crm.body, "\"destination\":\"crm\""), 3u) << crm.body;
    EXPECT_EQ(count_of(crm.body, "\"destination\":"), 3u) << crm.body;

    const auto dead = get("/api/deliveries?state=dead");
    EXPECT_EQ(count_of(dead.body, "\"destination\":"), 1u) << dead.body;
    EXPECT_NE(dead.body.find(fmt::format("\"id\":{},", rows.crm_dead)), std::string::npos) << dead.body;
    EXPECT_NE(dead.body.find("\"last_status\":500,\"last_error\":\"HTTP 500\""), std::string::npos) << dead.body;

    const auto of_event = get(fmt::format("/api/deliveries?event={}&destination=audit", rows.e1));
    EXPECT_EQ(count_of(of_event.body, "\"destination\":"), 1u) << of_event.body;
    EXPECT_NE(of_event.body.find("\"state\":\"failing\""), std::string::npos) << of_event.body;
    // The list carries no attempts; one delivery does.
    EXPECT_EQ(of_event.body.find("\"attempts\""), std::string::npos) << of_event.body;
}

TEST_F(DeliveriesApi, PagesWithBefore)
{
    const auto page = get("/api/deliveries?limit=4");
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(count_of(page.body, "\"destination\":"), 4u);
    const auto pos = page.body.find("\"next_before\":");
    ASSERT_NE(pos, std::string::npos);
    const auto next = std::stoll(page.body.substr(pos + 14));
    const auto rest = get(fmt::format("/api/deliveries?limit=4&before={}", next));
    ASSERT_EQ(rest.status, 200) << rest.body;
    EXPECT_EQ(count_of(rest.body, "\"destination\":"), 2u) << rest.body;
    EXPECT_NE(rest.body.find("\"next_before\":null"), std::string::npos) << rest.body;
    EXPECT_NE(rest.body.find(fmt::format("\"id\":{},", rows.crm_done)), std::string::npos) << rest.body;
}

TEST_F(DeliveriesApi, RefusesBadParametersNamingThem)
{
    const std::pair<const char*, const char*> cases[] = {
        {"state=failed",
         R"({"error":"bad_query","detail":"state: expected pending, failing, done, dead or cancelled"})"},
        {"limit=1001", R"({"error":"bad_query","detail":"limit: at most 1000"})"},
        {"event=x", R"({"error":"bad_query","detail":"event: expected an event id"})"},
        {"before=-1", R"({"error":"bad_query","detail":"before: expected a delivery id"})"},
        {"type=ticket", R"({"error":"bad_query","detail":"type: unknown filter"})"},
    };
    for (const auto& [query, body] : cases) {
        const auto r = get(std::string("/api/deliveries?") + query);
        EXPECT_EQ(r.status, 400) << query;
        EXPECT_EQ(r.body, std::string(body) + "\n") << query;
    }
}

TEST_F(DeliveriesApi, OneDeliveryHasItsAttempts)
{
    const auto r = get(fmt::format("/api/deliveries/{}", rows.crm_failing));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"state\":\"failing\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"attempt_count\":1,\"tries\":1"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"http_status\":503,\"latency_ms\":12.345,\"error\":\"HTTP 503\"}]"), std::string::npos)
        << r.body;
    const auto refused = get(fmt::format("/api/deliveries/{}", rows.audit_failing));
    EXPECT_NE(refused.body.find("\"http_status\":null,\"latency_ms\":12.345,\"error\":\"connect: connection refused\""),
              std::string::npos)
        << refused.body;

    const auto missing = get("/api/deliveries/999999");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.body, "{\"error\":\"not_found\",\"detail\":\"no delivery 999999\"}\n");
    EXPECT_EQ(get("/api/deliveries/abc").status, 404);
}

TEST_F(DeliveriesApi, EventDetailHasItsForwarding)
{
    const auto r = get(fmt::format("/api/events/{}", rows.e1));
    ASSERT_EQ(r.status, 200) << r.body;
    // Manage's delivery count keeps its name; the destinations' deliveries are "forwarding".
    EXPECT_NE(r.body.find("\"deliveries\":1,"), std::string::npos) << r.body;
    const auto fwd = r.body.find("\"forwarding\":[");
    ASSERT_NE(fwd, std::string::npos) << r.body;
    const auto audit = r.body.find("\"destination\":\"audit\",\"state\":\"failing\"", fwd);
    const auto crm = r.body.find("\"destination\":\"crm\",\"state\":\"done\"", fwd);
    EXPECT_NE(audit, std::string::npos) << r.body;
    EXPECT_NE(crm, std::string::npos) << r.body;
    EXPECT_LT(audit, crm); // by destination
    EXPECT_NE(r.body.find("\"http_status\":204", crm), std::string::npos) << r.body;
}

TEST_F(DeliveriesApi, RetryDryRunCountsAndRetryMakesRowsDue)
{
    // crm: done, failing, dead are not pending: three.
    const auto dry = post("/api/deliveries/retry", R"({"destination":"crm","dry_run":true})");
    ASSERT_EQ(dry.status, 200) << dry.body;
    EXPECT_EQ(dry.body, "{\"count\":3,\"dry_run\":true}\n");
    EXPECT_EQ(state_of(rows.crm_dead), "dead");

    const auto dead = post("/api/deliveries/retry", R"({"destination":"crm","state":"dead"})");
    ASSERT_EQ(dead.status, 200) << dead.body;
    EXPECT_EQ(dead.body, "{\"count\":1,\"dry_run\":false}\n");
    EXPECT_EQ(state_of(rows.crm_dead), "pending");
    EXPECT_EQ(state_of(rows.crm_failing), "failing");

    const auto by_id = post("/api/deliveries/retry", fmt::format(R"({{"ids":[{},{}]}})", rows.crm_done, rows.crm_dead));
    EXPECT_EQ(by_id.body, "{\"count\":1,\"dry_run\":false}\n"); // the dead one is pending already
    EXPECT_EQ(state_of(rows.crm_done), "pending");

    // Everything not pending: the two failing rows.
    const auto all = post("/api/deliveries/retry", R"({"all":true,"dry_run":true})");
    EXPECT_EQ(all.body, "{\"count\":2,\"dry_run\":true}\n");
}

TEST_F(DeliveriesApi, RetryRefusesAnEmptyOrMixedSelection)
{
    const std::pair<const char*, const char*> cases[] = {
        {"{}", "give ids, a selection (destination, state, event), or \\\"all\\\": true to retry every delivery "
               "not pending"},
        {R"({"dry_run":true})", "give ids, a selection (destination, state, event), or \\\"all\\\": true to retry "
                                "every delivery not pending"},
        {R"({"ids":[1],"state":"dead"})", "give either ids or a selection (destination, state, event, all)"},
        {R"({"state":"failed"})", "state: expected pending, failing, done, dead or cancelled"},
        {R"({"ids":[0]})", "ids: 0 is not a delivery id"},
        {R"({"ids":"1"})", "field ids is not an array"},
        {R"({"to":"x"})", "unknown field to"},
    };
    for (const auto& [body, detail] : cases) {
        const auto r = post("/api/deliveries/retry", body);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_EQ(r.body, fmt::format("{{\"error\":\"bad_request\",\"detail\":\"{}\"}}\n", detail)) << body;
    }
    EXPECT_EQ(state_of(rows.crm_dead), "dead");
}

TEST_F(DeliveriesApi, PauseAndResumeShowInDestinations)
{
    const auto before = get("/api/destinations");
    ASSERT_EQ(before.status, 200) << before.body;
    EXPECT_EQ(before.body.rfind("{\"destinations\":[{\"name\":\"audit\",\"configured\":true,\"paused\":false,", 0), 0u)
        << before.body;
    EXPECT_NE(before.body.find("{\"name\":\"crm\",\"configured\":true,\"paused\":false,\"pause_reason\":\"\""),
              std::string::npos)
        << before.body;
    EXPECT_NE(before.body.find("\"pending\":0,\"failing\":1,\"dead\":1,\"done\":1,\"cancelled\":0"), std::string::npos)
        << before.body;
    EXPECT_NE(before.body.find("\"pending\":2,\"failing\":1,\"dead\":0,\"done\":0,\"cancelled\":0"), std::string::npos)
        << before.body;

    const auto paused = post("/api/destinations/crm/pause", R"({"reason":"maintenance until 14:00"})");
    ASSERT_EQ(paused.status, 200) << paused.body;
    EXPECT_EQ(paused.body, "{\"name\":\"crm\",\"paused\":true}\n");
    const auto during = get("/api/destinations");
    EXPECT_NE(during.body.find("{\"name\":\"crm\",\"configured\":true,\"paused\":true,"
                               "\"pause_reason\":\"maintenance until 14:00\""),
              std::string::npos)
        << during.body;

    // No body at all is a pause without a reason; resume takes none.
    EXPECT_EQ(post("/api/destinations/audit/pause", "").status, 200);
    const auto resumed = post("/api/destinations/crm/resume", "{}");
    ASSERT_EQ(resumed.status, 200) << resumed.body;
    EXPECT_EQ(resumed.body, "{\"name\":\"crm\",\"paused\":false}\n");
    const auto after = get("/api/destinations");
    EXPECT_NE(after.body.find("{\"name\":\"crm\",\"configured\":true,\"paused\":false,\"pause_reason\":\"\""),
              std::string::npos)
        << after.body;
    EXPECT_NE(after.body.find("{\"name\":\"audit\",\"configured\":true,\"paused\":true,\"pause_reason\":\"\""),
              std::string::npos)
        << after.body;
}

TEST_F(DeliveriesApi, UnknownDestinationsAndActionsAreNotFound)
{
    const auto r = post("/api/destinations/nope/pause", "{}");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, "{\"error\":\"not_found\",\"detail\":\"no destination \\\"nope\\\"\"}\n");
    EXPECT_EQ(post("/api/destinations/crm/stop", "{}").status, 404);
    EXPECT_EQ(post("/api/destinations/crm", "{}").status, 404);
    EXPECT_EQ(post("/api/destinations", "{}").status, 404);
    const auto bad = post("/api/destinations/crm/resume", R"({"reason":"x"})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body, "{\"error\":\"bad_request\",\"detail\":\"unknown field reason\"}\n");
    EXPECT_EQ(post("/api/destinations/crm/pause", R"({"reason":5})").status, 400);
}

// The gate guards the new state-changing routes as it does the others: without the token,
// from a web page's origin, or as a form, nothing is retried or paused.
TEST_F(DeliveriesApi, NewPostRoutesAreGated)
{
    const std::string targets[] = {"/api/deliveries/retry", "/api/destinations/crm/pause",
                                   "/api/destinations/crm/resume"};
    const std::string body = R"({"destination":"crm","state":"dead"})";
    for (const auto& target : targets) {
        const std::string b = target == "/api/deliveries/retry" ? body : "{}";
        auto anonymous = test::post(target, b, token);
        anonymous.headers.erase(anonymous.headers.begin());
        EXPECT_EQ(call(anonymous).status, 401) << target;
        auto wrong = test::post(target, b, "not-the-token");
        EXPECT_EQ(call(wrong).status, 401) << target;
        auto page = test::post(target, b, token);
        page.headers.emplace_back("Origin", "https://evil.example");
        const auto refused = call(page);
        EXPECT_EQ(refused.status, 403) << target;
        EXPECT_NE(refused.body.find("\"error\":\"origin_not_allowed\""), std::string::npos) << refused.body;
        auto form = test::post(target, b, token);
        form.headers.back().second = "text/plain";
        EXPECT_EQ(call(form).status, 415) << target;
    }
    EXPECT_EQ(app->counter("cwhook_admin_unauthorized_total"), 6u);
    EXPECT_EQ(app->counter("cwhook_admin_refused_total", "reason=\"origin_not_allowed\""), 3u);
    EXPECT_EQ(state_of(rows.crm_dead), "dead");
    EXPECT_NE(get("/api/destinations").body.find("{\"name\":\"crm\",\"configured\":true,\"paused\":false"),
              std::string::npos);
}

// ---- the command line ------------------------------------------------------------------

class DeliveriesCli : public ::testing::Test {
protected:
    DeliveriesCli() : rows(seed(db)) {}

    command_result cli(std::vector<std::string> args)
    {
        args.push_back("--db");
        args.push_back(db);
        return run_cwhook(args);
    }

    std::string state_of(std::int64_t delivery)
    {
        const auto db_ = store::event_db::open(db, store::db_access::read_only);
        auto row = (*db_)->delivery(delivery);
        return row && *row ? std::string(store::to_string((*row)->state)) : "missing";
    }

    temp_dir dir;
    std::string db = dir.file("cwhook.db");
    outbox rows;
};

TEST_F(DeliveriesCli, ListIsATableOrJson)
{
    const auto table = cli({"deliveries", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(lines_in(table.out), 7u) << table.out;
    EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table.out;
    EXPECT_NE(table.out.find("LAST ERROR"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("connect: connection refused"), std::string::npos) << table.out;

    const auto dead = cli({"deliveries", "list", "--destination", "crm", "--state", "dead"});
    ASSERT_EQ(dead.exit_code, 0) << dead.err;
    EXPECT_EQ(lines_in(dead.out), 2u) << dead.out;
    EXPECT_NE(dead.out.find("HTTP 500"), std::string::npos) << dead.out;

    const auto page = cli({"deliveries", "list", "--limit", "2", "--before", std::to_string(rows.crm_dead)});
    EXPECT_EQ(lines_in(page.out), 3u) << page.out;

    const auto json = cli({"deliveries", "list", "--event", std::to_string(rows.e2), "--json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(json.out.rfind("[{\"id\":", 0), 0u) << json.out;
    EXPECT_TRUE(json.out.ends_with("}]\n")) << json.out;
    EXPECT_EQ(count_of(json.out, "\"event_id\":"), 2u) << json.out;
    const auto jsonl = cli({"deliveries", "list", "--jsonl"});
    EXPECT_EQ(lines_in(jsonl.out), 6u) << jsonl.out;
    EXPECT_EQ(count_of(jsonl.out, "}\n{"), 5u) << jsonl.out;
}

TEST_F(DeliveriesCli, ListRefusesBadValuesNamingThem)
{
    const auto state = cli({"deliveries", "list", "--state", "failed"});
    EXPECT_EQ(state.exit_code, 2);
    EXPECT_EQ(state.err, "cwhook: --state: \"failed\": expected pending, failing, done, dead or cancelled\n");
    const auto limit = cli({"deliveries", "list", "--limit", "0"});
    EXPECT_EQ(limit.exit_code, 2);
    EXPECT_NE(limit.err.find("--limit: \"0\""), std::string::npos) << limit.err;
    EXPECT_EQ(cli({"deliveries", "list", "--event", "x"}).exit_code, 2);
}

TEST_F(DeliveriesCli, ShowListsTheAttempts)
{
    const auto text = cli({"deliveries", "show", std::to_string(rows.audit_failing)});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("destination  audit\n"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("state        failing (next attempt "), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("\nattempts:\n  "), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("  -  12.3 ms  connect: connection refused\n"), std::string::npos) << text.out;

    const auto json = cli({"deliveries", "show", std::to_string(rows.crm_done), "--json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_NE(json.out.find("\"attempts\":[{\"at\":"), std::string::npos) << json.out;
    EXPECT_NE(json.out.find("\"http_status\":204"), std::string::npos) << json.out;

    const auto missing = cli({"deliveries", "show", "999"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "cwhook: no delivery 999\n");
    EXPECT_EQ(cli({"deliveries", "show", "abc"}).exit_code, 2);
}

TEST_F(DeliveriesCli, RetryNeedsIdsASelectionOrAll)
{
    const auto bare = cli({"deliveries", "retry"});
    EXPECT_EQ(bare.exit_code, 2);
    EXPECT_NE(bare.err.find("--all"), std::string::npos) << bare.err;
    const auto both = cli({"deliveries", "retry", std::to_string(rows.crm_dead), "--state", "dead"});
    EXPECT_EQ(both.exit_code, 2);
    EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;
    const auto all = cli({"deliveries", "retry", "--all", "--dry-run"});
    ASSERT_EQ(all.exit_code, 0) << all.err;
    EXPECT_EQ(all.out, "4 deliveries will be retried\n");
    EXPECT_EQ(state_of(rows.crm_dead), "dead");
}

TEST_F(DeliveriesCli, RetryOfASelectionAsksUnlessYes)
{
    const auto dry = cli({"deliveries", "retry", "--destination", "crm", "--dry-run"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_EQ(dry.out, "3 deliveries will be retried\n");

    // Standard input is not a terminal here: no question, a refusal.
    const auto unasked = cli({"deliveries", "retry", "--state", "dead"});
    EXPECT_EQ(unasked.exit_code, 2);
    EXPECT_EQ(unasked.err, "cwhook: 1 delivery would be retried; give --yes to retry them without asking\n");
    EXPECT_EQ(state_of(rows.crm_dead), "dead");

    const auto yes = cli({"deliveries", "retry", "--state", "dead", "--yes"});
    ASSERT_EQ(yes.exit_code, 0) << yes.err;
    EXPECT_EQ(yes.out, "retried 1\n");
    EXPECT_EQ(state_of(rows.crm_dead), "pending");
}

TEST_F(DeliveriesCli, RetryByIdNeedsNoQuestion)
{
    const auto r = cli({"deliveries", "retry", std::to_string(rows.crm_done), std::to_string(rows.audit_failing)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "retried 2\n");
    EXPECT_EQ(state_of(rows.crm_done), "pending");
    EXPECT_EQ(state_of(rows.audit_failing), "pending");
    EXPECT_EQ(cli({"deliveries", "retry", "0"}).exit_code, 2);
}

TEST_F(DeliveriesCli, DestinationsListPauseResume)
{
    const auto table = cli({"destinations", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(lines_in(table.out), 3u) << table.out;
    EXPECT_NE(table.out.find("OLDEST UNDELIVERED"), std::string::npos) << table.out;

    const auto paused = cli({"destinations", "pause", "crm", "--reason", "maintenance"});
    ASSERT_EQ(paused.exit_code, 0) << paused.err;
    EXPECT_EQ(paused.out, "paused crm\n");
    const auto shown = cli({"destinations", "list"});
    EXPECT_NE(shown.out.find("yes: maintenance"), std::string::npos) << shown.out;
    const auto json = cli({"destinations", "list", "--json"});
    EXPECT_NE(json.out.find("{\"name\":\"crm\",\"configured\":true,\"paused\":true,\"pause_reason\":\"maintenance\""),
              std::string::npos)
        << json.out;

    const auto resumed = cli({"destinations", "resume", "crm"});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_EQ(resumed.out, "resumed crm\n");
    EXPECT_NE(
        cli({"destinations", "list", "--json"}).out.find("{\"name\":\"crm\",\"configured\":true,\"paused\":false"),
        std::string::npos);
}

TEST_F(DeliveriesCli, AMistypedDatabaseIsNotCreated)
{
    const auto typo = dir.file("cwhok.db");
    for (const std::vector<std::string>& args : {std::vector<std::string>{"destinations", "pause", "crm"},
                                                 std::vector<std::string>{"deliveries", "retry", "1"}}) {
        auto with_db = args;
        with_db.insert(with_db.end(), {"--db", typo});
        const auto r = run_cwhook(with_db);
        EXPECT_EQ(r.exit_code, 1) << args[0];
        EXPECT_EQ(r.err, fmt::format("cwhook: {}: no such database\n", typo));
    }
    EXPECT_FALSE(std::filesystem::exists(typo));
}

TEST_F(DeliveriesCli, UnknownDestinationIsNamed)
{
    for (const char* verb : {"pause", "resume"}) {
        const auto r = cli({"destinations", verb, "nope"});
        EXPECT_EQ(r.exit_code, 1) << verb;
        EXPECT_EQ(r.err, "cwhook: NAME: \"nope\": no such destination (known: audit, crm)\n") << verb;
        EXPECT_EQ(r.out, "");
    }
}

TEST_F(DeliveriesCli, EventsShowHasTheForwarding)
{
    const auto text = cli({"events", "show", std::to_string(rows.e1)});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("\nforwarding:\n  audit: failing (next attempt "), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("  crm: done ("), std::string::npos) << text.out;
    EXPECT_NE(text.out.find(fmt::format("1 attempt (delivery {})\n", rows.crm_done)), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("  204  12.3 ms\n"), std::string::npos) << text.out;

    const auto json = cli({"events", "show", std::to_string(rows.e1), "--json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_NE(json.out.find("\"forwarding\": ["), std::string::npos) << json.out;
    EXPECT_NE(json.out.find("\"destination\": \"crm\""), std::string::npos) << json.out;
}

// ---- the ping of a configured destination ----------------------------------------------

constexpr std::string_view secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// An answer of this status, the rest as the sink's defaults.
sink_answer answer(unsigned status)
{
    sink_answer a;
    a.status = status;
    return a;
}

// A port nothing listens on (a sink's, after it stopped).
std::uint16_t closed_port()
{
    sink gone;
    return gone.port();
}

forward::destination destination_at(std::string name, std::string url)
{
    forward::destination d;
    d.name = std::move(name);
    d.url = std::move(url);
    d.secret = std::string(secret);
    d.timeout = 2s;
    return d;
}

TEST(DestinationTest, ApiPingsOnlyAConfiguredDestination)
{
    temp_dir dir;
    sink downstream;
    app_options o;
    o.db = dir.file("cwhook.db");
    o.mode = callback::verify_mode::off;
    o.tweak = [&](callback::app_settings& s) {
        s.destinations = {destination_at("crm", downstream.url()),
                          destination_at("down", fmt::format("http://127.0.0.1:{}/hook", closed_port()))};
    };
    running_app app(o);
    const tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), app.get().admin_endpoints().at(0).port()};
    const auto token = app.get().admin_token();

    const auto ok = send(ep, post("/api/destinations/crm/test", "", token));
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.body.rfind("{\"name\":\"crm\",\"ok\":true,\"http_status\":200,\"latency_ms\":", 0), 0u) << ok.body;
    EXPECT_TRUE(ok.body.ends_with(",\"error\":\"\"}\n")) << ok.body;
    ASSERT_EQ(downstream.count(), 1u);
    const auto ping = downstream.requests().front();
    EXPECT_EQ(ping.body.rfind(R"({"type":"cwhook.ping","destination":"crm","at":")", 0), 0u) << ping.body;
    EXPECT_EQ(ping.header("x-cwhook-type"), "ping");
    EXPECT_FALSE(ping.header("webhook-signature").empty());

    downstream.respond([](const sink_request&, std::size_t) { return answer(503); });
    const auto refused = send(ep, post("/api/destinations/crm/test", "{}", token));
    ASSERT_EQ(refused.status, 200) << refused.body;
    EXPECT_NE(refused.body.find("\"ok\":false,\"http_status\":503,"), std::string::npos) << refused.body;
    EXPECT_TRUE(refused.body.ends_with(",\"error\":\"HTTP 503\"}\n")) << refused.body;

    const auto down = send(ep, post("/api/destinations/down/test", "", token));
    ASSERT_EQ(down.status, 200) << down.body;
    EXPECT_NE(down.body.find("\"ok\":false,\"http_status\":null,"), std::string::npos) << down.body;

    const auto unknown = send(ep, post("/api/destinations/nope/test", "", token));
    EXPECT_EQ(unknown.status, 404);
    EXPECT_EQ(unknown.body,
              "{\"error\":\"not_found\",\"detail\":\"no destination \\\"nope\\\" in the configuration\"}\n");
    EXPECT_EQ(send(ep, post("/api/destinations/crm/test", R"({"url":"http://elsewhere/"})", token)).status, 400);

    // The gate as for every route: no token, a web page's origin.
    auto anonymous = post("/api/destinations/crm/test", "", token);
    anonymous.headers.erase(anonymous.headers.begin());
    EXPECT_EQ(send(ep, anonymous).status, 401);
    auto page = post("/api/destinations/crm/test", "", token);
    page.headers.emplace_back("Origin", "https://evil.example");
    EXPECT_EQ(send(ep, page).status, 403);
    EXPECT_EQ(downstream.count(), 2u);
}

TEST(DestinationTest, CommandPingsAConfiguredDestination)
{
    temp_dir dir;
    sink downstream;
    const auto config = dir.file("c.toml");
    write_file(config, fmt::format(R"([storage]
path = "{}"

[[destinations]]
name = "crm"
url = "{}"
secret = "{}"

[[destinations]]
name = "down"
url = "http://127.0.0.1:{}/hook"
secret = "{}"
timeout = "2s"
)",
                                   dir.file("cwhook.db"), downstream.url(), secret, closed_port(), secret));
    const auto ok = run_cwhook({"destinations", "test", "crm", "--config", config});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out.rfind("crm: 200 in ", 0), 0u) << ok.out;
    EXPECT_TRUE(ok.out.ends_with(" ms\n")) << ok.out;
    ASSERT_EQ(downstream.count(), 1u);
    EXPECT_NE(downstream.requests().front().body.find("\"destination\":\"crm\""), std::string::npos);

    downstream.respond([](const sink_request&, std::size_t) { return answer(410); });
    const auto gone = run_cwhook({"destinations", "test", "crm", "--config", config});
    EXPECT_EQ(gone.exit_code, 1);
    EXPECT_NE(gone.out.find("crm: failed in "), std::string::npos) << gone.out;
    EXPECT_TRUE(gone.out.ends_with(" ms: HTTP 410\n")) << gone.out;

    const auto down = run_cwhook({"destinations", "test", "down", "--config", config});
    EXPECT_EQ(down.exit_code, 1);
    EXPECT_EQ(down.out.rfind("down: failed in ", 0), 0u) << down.out;

    const auto unknown = run_cwhook({"destinations", "test", "nope", "--config", config});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_EQ(unknown.err,
              "cwhook: NAME: \"nope\": no such destination in the configuration (configured: crm, down)\n");
}

} // namespace
} // namespace cwhook::test
