// The feed for consumers who pull, end to end: GET /api/feed on the admin listener of a
// receiver (real sockets, the fake key server signing deliveries), long-polls woken by commits
// of the receiver itself and of other writers on the same database (SQLite and PostgreSQL),
// and `cwhook events tail` as a child process following the same database.
#include "support/harness.hpp"
#include "support/pg_cluster.hpp"

#include "store/event_store.hpp"
#include "json/value.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <future>
#include <set>
#include <thread>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;
using steady = std::chrono::steady_clock;

// One answer of GET /api/feed, read back.
struct feed_answer {
    int status = 0;
    std::string body;
    std::vector<std::int64_t> ids;
    std::vector<std::string> cursors; // of the events
    std::string cursor;               // of the answer
    json::value doc;
};

feed_answer read_answer(const http_result& r)
{
    feed_answer a;
    a.status = r.status;
    a.body = r.body;
    auto parsed = json::parse_value(r.body);
    if (auto* v = std::get_if<json::value>(&parsed)) {
        a.doc = std::move(*v);
    }
    if (const auto* c = a.doc.find("cursor"); c != nullptr && c->as_string()) {
        a.cursor = std::string(*c->as_string());
    }
    if (const auto* list = a.doc.find("events"); list != nullptr && list->as_array() != nullptr) {
        for (const auto& e : *list->as_array()) {
            a.ids.push_back(e.find("id")->as_int().value_or(-1));
            a.cursors.emplace_back(e.find("cursor")->as_string().value_or(""));
        }
    }
    return a;
}

std::int64_t stored_id(const http_result& r)
{
    const auto pos = r.body.find("\"id\":");
    return pos == std::string::npos ? -1 : std::stoll(r.body.substr(pos + 5));
}

// A verified event as another writer stores it.
store::event_record record(const std::string& key)
{
    store::event_record ev;
    ev.received_at_us = 1'700'000'000'000'000;
    ev.status = store::event_status::verified;
    ev.dedupe_key = "m:" + key;
    ev.body_sha256 = std::string(64, 'a');
    ev.body = fmt::format(R"({{"MessageId":"{}","Action":"added","Type":"ticket","ID":7}})", key);
    ev.method = "POST";
    ev.path = "/callbacks";
    ev.client_addr = "192.0.2.10";
    ev.content_type = "application/json";
    ev.message_id = key;
    ev.type = "ticket";
    ev.action = "added";
    ev.entity_id = 7;
    ev.company_id = "Cobalt";
    return ev;
}

tcp::endpoint admin_ep(running_app& app)
{
    const auto eps = app.get().admin_endpoints();
    EXPECT_FALSE(eps.empty());
    return {boost::asio::ip::make_address("127.0.0.1"), eps.empty() ? std::uint16_t{0} : eps.front().port()};
}

feed_answer feed(running_app& app, const std::string& query, std::chrono::milliseconds timeout = 15s)
{
    http_call c;
    c.method = "GET";
    c.target = "/api/feed" + (query.empty() ? std::string() : "?" + query);
    c.headers.emplace_back("Authorization", "Bearer " + app.get().admin_token());
    return read_answer(send(admin_ep(app), c, {}, timeout));
}

// Long-polls parked between two looks at the database.
std::int64_t waiting(running_app& app)
{
    return app.get().metrics().gauge_value("cwhook_admin_feed_waiting_requests");
}

class Feed : public ::testing::Test, public receiver_env {
protected:
    http_call delivery(std::int64_t id)
    {
        auto c = signed_call(make_payload(keys.url(), id, fmt::format("msg-{}", id)), keys.key());
        c.headers.emplace_back("Content-Type", "application/json");
        return c;
    }

    std::int64_t deliver(running_app& app, std::int64_t id)
    {
        const auto r = send(app.http(), delivery(id));
        EXPECT_EQ(r.status, 200) << r.body << r.error;
        return stored_id(r);
    }
};

TEST_F(Feed, PagesFollowEachOtherByCursor)
{
    running_app app(options());
    std::vector<std::int64_t> stored;
    for (int i = 1; i <= 5; ++i) {
        stored.push_back(deliver(app, 100 + i));
    }
    std::vector<std::int64_t> seen;
    std::string cursor;
    std::vector<std::string> cursors;
    for (int page = 0; page < 3; ++page) {
        const auto a = feed(app, cursor.empty() ? "limit=2" : "limit=2&after=" + cursor);
        ASSERT_EQ(a.status, 200) << a.body;
        EXPECT_EQ(a.ids.size(), page < 2 ? 2u : 1u) << a.body;
        seen.insert(seen.end(), a.ids.begin(), a.ids.end());
        cursors.insert(cursors.end(), a.cursors.begin(), a.cursors.end());
        ASSERT_FALSE(a.cursors.empty());
        EXPECT_EQ(a.cursor, a.cursors.back());
        cursor = a.cursor;
    }
    EXPECT_EQ(seen, stored);
    EXPECT_EQ(std::set<std::string>(cursors.begin(), cursors.end()).size(), 5u);

    // At the end: nothing, and the cursor given back.
    const auto end = feed(app, "after=" + cursor);
    EXPECT_EQ(end.status, 200);
    EXPECT_TRUE(end.ids.empty());
    EXPECT_EQ(end.cursor, cursor);

    // One event as the feed shows it: the summary fields and the payload with Entity decoded,
    // its numbers as Manage wrote them.
    const auto first = feed(app, "limit=1");
    ASSERT_EQ(first.ids.size(), 1u) << first.body;
    const auto& e = first.doc.find("events")->as_array()->front();
    EXPECT_EQ(e.find("type")->as_string().value_or(""), "ticket");
    EXPECT_EQ(e.find("action")->as_string().value_or(""), "updated");
    EXPECT_EQ(e.find("entity_id")->as_int().value_or(0), 101);
    EXPECT_EQ(e.find("company_id")->as_string().value_or(""), "Cobalt");
    EXPECT_EQ(e.find("status")->as_string().value_or(""), "verified");
    EXPECT_TRUE(e.find("received_at")->as_string().value_or("").ends_with("Z"));
    EXPECT_NE(first.body.find(R"("Entity":{"id":101,"summary":"Printer on fire","budgetHours":2.00})"),
              std::string::npos)
        << first.body;
}

TEST_F(Feed, LatestIsTheEndWithoutEvents)
{
    running_app app(options());
    deliver(app, 1);
    deliver(app, 2);
    const auto all = feed(app, "");
    ASSERT_EQ(all.ids.size(), 2u);
    const auto latest = feed(app, "after=latest");
    EXPECT_EQ(latest.status, 200) << latest.body;
    EXPECT_TRUE(latest.ids.empty()) << latest.body;
    EXPECT_EQ(latest.cursor, all.cursor);

    const auto later = deliver(app, 3);
    const auto next = feed(app, "after=" + latest.cursor);
    EXPECT_EQ(next.ids, std::vector<std::int64_t>{later});
}

TEST_F(Feed, UnverifiedEventsAreFedWhenVerificationIsOff)
{
    auto o = options();
    o.mode = callback::verify_mode::off;
    running_app app(o);
    const auto id = deliver(app, 9);
    const auto a = feed(app, "");
    ASSERT_EQ(a.ids, std::vector<std::int64_t>{id}) << a.body;
    EXPECT_NE(a.body.find(R"("status":"unverified")"), std::string::npos) << a.body;
}

TEST_F(Feed, LongPollAnswersAsSoonAsAnEventCommits)
{
    running_app app(options());
    deliver(app, 1);
    const auto end = feed(app, "after=latest");
    const auto started = steady::now();
    auto answer = std::async(std::launch::async, [&] { return feed(app, "wait=30s&after=" + end.cursor, 40s); });
    // Parked (it looked once and found nothing): the commit below comes after that look.
    ASSERT_TRUE(eventually([&] { return waiting(app) == 1; }));
    const auto id = deliver(app, 2);
    const auto a = answer.get();
    const auto took = steady::now() - started;
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.ids, std::vector<std::int64_t>{id});
    EXPECT_LT(took, 10s);
    EXPECT_EQ(waiting(app), 0);
}

TEST_F(Feed, LongPollThatTimesOutAnswersEmptyWithTheSameCursor)
{
    running_app app(options());
    deliver(app, 1);
    const auto end = feed(app, "after=latest");
    const auto started = steady::now();
    const auto a = feed(app, "wait=700ms&after=" + end.cursor);
    EXPECT_GE(steady::now() - started, 700ms);
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_TRUE(a.ids.empty());
    EXPECT_EQ(a.cursor, end.cursor);
    EXPECT_EQ(waiting(app), 0);
}

TEST_F(Feed, ShutdownAnswersAWaitingLongPollAtOnce)
{
    running_app app(options());
    auto answer = std::async(std::launch::async, [&] { return feed(app, "wait=60s&after=latest", 70s); });
    ASSERT_TRUE(eventually([&] { return waiting(app) == 1; }));
    const auto started = steady::now();
    app.stop();
    const auto a = answer.get();
    EXPECT_EQ(a.status, 200) << a.body; // not a connection closed by the drain deadline
    EXPECT_TRUE(a.ids.empty());
    EXPECT_EQ(a.cursor, "0");
    EXPECT_LT(steady::now() - started, 5s);
}

TEST_F(Feed, BadValuesAreRefusedNamingThem)
{
    running_app app(options());
    deliver(app, 1);
    for (const char* query : {"limit=0", "limit=1001", "limit=ten", "wait=61s", "wait=soon", "after=-1", "after=abc",
                              "after=1.5", "since=2h"}) {
        const auto a = feed(app, query);
        EXPECT_EQ(a.status, 400) << query;
        EXPECT_EQ(a.doc.find("error")->as_string().value_or(""), "bad_query") << a.body;
        const std::string q = query;
        const auto name = q.substr(0, q.find('='));
        const auto detail = std::string(a.doc.find("detail")->as_string().value_or(""));
        EXPECT_TRUE(detail.starts_with(name + ":")) << detail;
        if (name != "since") {
            EXPECT_NE(detail.find(q.substr(q.find('=') + 1)), std::string::npos) << detail;
        }
    }
    // The bounds themselves (an event is there: the wait ends at once).
    EXPECT_EQ(feed(app, "limit=1000&wait=60s&after=0", 5s).status, 200);
    EXPECT_EQ(feed(app, "limit=1&wait=0&after=latest", 5s).status, 200);
}

TEST_F(Feed, RequestsWithoutTheTokenAreRefused)
{
    running_app app(options());
    deliver(app, 1);
    for (const std::string auth : {"", "Bearer wrong-token"}) {
        http_call c;
        c.method = "GET";
        c.target = "/api/feed";
        if (!auth.empty()) {
            c.headers.emplace_back("Authorization", auth);
        }
        const auto r = send(admin_ep(app), c);
        EXPECT_EQ(r.status, 401) << auth;
        EXPECT_EQ(r.body.find("Printer"), std::string::npos);
    }
}

// ---- other writers on the same database ---------------------------------------------------

class FeedWriters : public ::testing::TestWithParam<store::backend>, public receiver_env {};

std::string backend_name(const ::testing::TestParamInfo<store::backend>& info)
{
    return info.param == store::backend::sqlite ? "sqlite" : "postgres";
}

INSTANTIATE_TEST_SUITE_P(Backends, FeedWriters, ::testing::Values(store::backend::sqlite, store::backend::postgres),
                         backend_name);

// Two event stores that are not the receiver's commit side by side (the receiver learns of
// their commits only by looking) while a client follows the feed with long-polls of a few
// events each: it sees every event once, in increasing cursor order.
TEST_P(FeedWriters, AFollowerSeesEveryEventOnceInCommitOrder)
{
    std::unique_ptr<pg_database> pg;
    store::settings storage;
    storage.path = db;
    if (GetParam() == store::backend::postgres) {
        pg = std::make_unique<pg_database>();
        storage.backend = store::backend::postgres;
        storage.url = pg->conninfo();
    }
    running_app app(options([&storage](callback::app_settings& s) { s.storage = storage; }));
    auto a = store::event_store::open(storage);
    auto b = store::event_store::open(storage);
    ASSERT_TRUE(a && b);

    constexpr int per_writer = 120;
    std::set<std::int64_t> stored;
    std::mutex stored_mutex;
    const auto write = [&](store::event_store& st, std::string prefix) {
        std::vector<std::future<result<store::insert_outcome>>> pending;
        for (int i = 0; i < per_writer; ++i) {
            auto p = std::make_shared<std::promise<result<store::insert_outcome>>>();
            pending.push_back(p->get_future());
            ASSERT_TRUE(st.submit_event(record(fmt::format("{}{}", prefix, i)),
                                        [p](result<store::insert_outcome> r) { p->set_value(std::move(r)); }));
        }
        for (auto& f : pending) {
            auto r = f.get();
            ASSERT_TRUE(r) << r.error().message();
            std::lock_guard lock(stored_mutex);
            stored.insert(r->id);
        }
    };

    std::vector<std::int64_t> seen;
    std::int64_t last = 0;
    std::string cursor = "0";
    std::atomic<bool> written{false};
    std::thread follower([&] {
        const auto deadline = steady::now() + 60s;
        while (steady::now() < deadline) {
            const bool last_round = written.load();
            const auto ans = feed(app, "limit=7&wait=1s&after=" + cursor);
            ASSERT_EQ(ans.status, 200) << ans.body;
            for (std::size_t i = 0; i < ans.ids.size(); ++i) {
                const auto seq = std::stoll(ans.cursors[i]);
                EXPECT_GT(seq, last);
                last = seq;
                seen.push_back(ans.ids[i]);
            }
            cursor = ans.cursor;
            if (last_round && ans.ids.empty()) {
                return;
            }
        }
        ADD_FAILURE() << "the follower did not catch up";
    });
    std::thread wa([&] { write(**a, "a"); });
    std::thread wb([&] { write(**b, "b"); });
    wa.join();
    wb.join();
    written = true;
    follower.join();
    EXPECT_EQ(stored.size(), 2u * per_writer);
    EXPECT_EQ(seen.size(), stored.size());
    EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()), stored);
}

// ---- events tail ---------------------------------------------------------------------------

TEST_F(Feed, TailPrintsTheFeedAndTheCursorToResumeFrom)
{
    running_app app(options());
    const auto first = deliver(app, 1);
    const auto second = deliver(app, 2);
    const auto all = run_cwhook({"events", "tail", "--db", db});
    EXPECT_EQ(all.exit_code, 0) << all.err;
    EXPECT_TRUE(all.out.starts_with(fmt::format("{:<8}  ", first))) << all.out;
    EXPECT_NE(all.out.find(fmt::format("\n{:<8}  ", second)), std::string::npos) << all.out;
    EXPECT_NE(all.out.find("ticket"), std::string::npos);
    EXPECT_NE(all.err.find("last cursor: 2 (resume with --after 2)"), std::string::npos) << all.err;

    const auto rest = run_cwhook({"events", "tail", "--db", db, "--after", "1", "--json"});
    EXPECT_EQ(rest.exit_code, 0) << rest.err;
    EXPECT_TRUE(rest.out.starts_with(fmt::format(R"({{"cursor":"2","id":{},"type":"ticket")", second))) << rest.out;
    EXPECT_EQ(std::count(rest.out.begin(), rest.out.end(), '\n'), 1);

    // Filters apply to what is read; the cursor passes what they leave out.
    const auto none = run_cwhook({"events", "tail", "--db", db, "--type", "company"});
    EXPECT_EQ(none.exit_code, 0) << none.err;
    EXPECT_EQ(none.out, "");
    EXPECT_NE(none.err.find("last cursor: 2"), std::string::npos) << none.err;

    EXPECT_EQ(run_cwhook({"events", "tail", "--db", db, "--after", "soon"}).exit_code, 2);
    EXPECT_EQ(run_cwhook({"events", "tail", "--db", db, "--follow", "--interval", "0"}).exit_code, 2);
}

TEST_F(Feed, TailFollowPicksUpAnEventCommittedAfterItStarted)
{
    running_app app(options());
    deliver(app, 1);
    child_process tail(
        {"events", "tail", "--db", db, "--follow", "--after", "latest", "--json", "--interval", "100ms"});
    ASSERT_NE(tail.wait_for_line("following the feed after cursor 1"), "") << tail.output();
    const auto id = deliver(app, 2);
    const auto line = tail.wait_for_line(fmt::format(R"("id":{},)", id));
    EXPECT_TRUE(line.starts_with(R"({"cursor":"2",)")) << tail.output();
    tail.signal(SIGTERM);
    EXPECT_EQ(tail.wait(), 0);
    EXPECT_NE(tail.output().find("last cursor: 2 (resume with --after 2)"), std::string::npos) << tail.output();
}

} // namespace
} // namespace cwhook::test
