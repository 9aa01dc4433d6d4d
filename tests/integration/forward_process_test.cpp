// Forwarding as the cwhook binary does it, as real processes: `cwhook serve` children with
// [[destinations]] pointing at a recording sink in this process, callbacks signed by the fake
// key server. The promises checked: an acknowledged event reaches its destination even when
// the daemon is killed with the event's request on the wire (at least once, the duplicates
// counted); SIGHUP adds a destination for events from then on and cancels, never drops, the
// undelivered rows of one it removes; two instances on one PostgreSQL send each delivery once.
#include "support/harness.hpp"
#include "support/pg_cluster.hpp"
#include "support/sink.hpp"

#include "crypto/standard_webhooks.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <iostream>
#include <map>
#include <set>
#include <thread>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view applied_reloads = "cwhook_reloads_total{result=\"applied\"}";

// The event id of a stored callback's answer ({"status":"stored","id":N}); 0 when it is not one.
std::int64_t stored_id(const http_result& r)
{
    constexpr std::string_view marker = "\"status\":\"stored\",\"id\":";
    const auto at = r.body.find(marker);
    return r.status != 200 || at == std::string::npos ? 0 : std::stoll(r.body.substr(at + marker.size()));
}

// Whether a request at the sink carries a valid Standard Webhooks signature for `secret`.
bool signed_by_secret(const sink_request& r)
{
    const auto key = crypto::webhook_key(secret);
    const auto timestamp = r.header("webhook-timestamp");
    if (!key || r.header("webhook-id").empty() || timestamp.empty()) {
        return false;
    }
    return r.header("webhook-signature") ==
           crypto::webhook_signature(*key, r.header("webhook-id"), std::stoll(timestamp), r.body);
}

// What the sink received: each event id (X-Cwhook-Event-Id) with its count of validly signed
// requests, and the webhook-ids seen for it.
struct received {
    std::map<std::int64_t, int> requests;
    std::map<std::int64_t, std::set<std::string>> webhook_ids;
    int unsigned_requests = 0;

    int duplicates() const
    {
        int n = 0;
        for (const auto& [id, count] : requests) {
            n += count - 1;
        }
        return n;
    }

    bool has_all(const std::set<std::int64_t>& ids) const
    {
        for (const auto id : ids) {
            if (!requests.contains(id)) {
                return false;
            }
        }
        return true;
    }
};

received tally(const sink& s)
{
    received out;
    for (const auto& r : s.requests()) {
        if (!signed_by_secret(r)) {
            ++out.unsigned_requests;
            continue;
        }
        const auto id = std::stoll(r.header("x-cwhook-event-id"));
        ++out.requests[id];
        out.webhook_ids[id].insert(r.header("webhook-id"));
    }
    return out;
}

sink_answer after(std::chrono::milliseconds delay, unsigned status = 200)
{
    sink_answer a;
    a.status = status;
    a.delay = delay;
    return a;
}

class ForwardProcess : public ::testing::Test {
protected:
    temp_dir dir;
    test_cert cert = make_cert(dir);
    fake_key_server keys{cert};
    sink downstream;
    std::string db = dir.file("var/cwhook.db");
    std::string config_file = dir.file("cwhook.toml");

    ForwardProcess() { write_file(dir.file("app-secret"), fmt::format("{}\n", secret)); }

    // One [[destinations]] table named `name` pointing at the sink; `extra`: more of its keys.
    std::string destination(std::string_view name, std::string_view extra = {}) const
    {
        return fmt::format("[[destinations]]\nname = \"{}\"\nurl = \"{}\"\nsecret_file = \"{}\"\n{}", name,
                           downstream.url(), dir.file("app-secret"), extra);
    }

    // The configuration file: the smallest daemon configuration on `storage` (the [storage]
    // section's lines; "" is SQLite at `db`), then `more` ([forward], [[destinations]]).
    std::string write_config(std::string_view more, std::string_view storage = {}) const
    {
        return dir.write("cwhook.toml",
                         config_for(db, keys.host_entry(), cert.cert) + std::string(storage) + std::string(more));
    }

    // Sends one signed callback; returns the stored event's id (0 and a failure otherwise).
    std::int64_t callback(const boost::asio::ip::tcp::endpoint& ep, std::string_view message_id, std::int64_t entity)
    {
        const auto r = send(ep, signed_call(make_payload(keys.url(), entity, message_id), keys.key()));
        const auto id = stored_id(r);
        EXPECT_NE(id, 0) << message_id << ": " << r.status << " " << r.error << r.body;
        return id;
    }
};

// ---- kill -9 with deliveries on the wire --------------------------------------------------

TEST_F(ForwardProcess, KillNineWhileDeliveringLosesNothing)
{
    // Slow answers keep requests on the wire: four at a time (the default concurrency), so the
    // 60 take over 7 s, and the kill finds some sent, four in flight, the rest not yet claimed.
    downstream.respond([](const sink_request&, std::size_t) { return after(500ms); });
    // The lanes look for due rows every 100 ms: a lease that has run out is seen at once. A
    // lease is the 1 s timeout plus a 5 s margin.
    write_config("[forward]\npoll_interval = \"100ms\"\nlease_margin = \"5s\"\n" +
                 destination("app", "timeout = \"1s\"\n"));
    instance daemon(config_file);
    daemon.start();
    ASSERT_NE(daemon.port(), 0) << daemon.output();

    constexpr int n = 60;
    std::set<std::int64_t> acknowledged;
    for (int i = 0; i < n; ++i) {
        acknowledged.insert(callback(daemon.endpoint(), fmt::format("kill-{}", i), 1000 + i));
    }
    ASSERT_EQ(acknowledged.size(), static_cast<std::size_t>(n));
    ASSERT_FALSE(acknowledged.contains(0));

    ASSERT_TRUE(downstream.wait_for(8, 20s)) << daemon.output();
    const auto seen_at_kill = downstream.count();
    ASSERT_LT(seen_at_kill, static_cast<std::size_t>(n)) << "the sink saw everything before the kill";
    ASSERT_EQ(daemon.kill9(), 128 + SIGKILL);
    const auto killed = std::chrono::steady_clock::now();

    // The same configuration and database. What was never claimed goes at once; the
    // deliveries claimed before the kill (their answers lost with the process) are sent again
    // once their lease has run out: the destination's timeout plus forward.lease_margin.
    downstream.respond([](const sink_request&, std::size_t) { return after(0ms); });
    daemon.start();
    ASSERT_NE(daemon.port(), 0) << daemon.output();
    EXPECT_TRUE(eventually([&] { return tally(downstream).has_all(acknowledged); }, 60s))
        << tally(downstream).requests.size() << " of " << n << " events received\n"
        << daemon.output();
    const auto all_received = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually([&] { return count_rows(db, "deliveries", "state = 'done'") == n; }, 60s))
        << count_rows(db, "deliveries", "state = 'done'") << " of " << n << " done\n"
        << daemon.output();
    const auto all_done = std::chrono::steady_clock::now();

    const auto got = tally(downstream);
    EXPECT_EQ(got.unsigned_requests, 0);
    EXPECT_EQ(got.requests.size(), static_cast<std::size_t>(n));
    for (const auto& [id, ids] : got.webhook_ids) {
        EXPECT_TRUE(acknowledged.contains(id)) << "event " << id;
        EXPECT_EQ(ids.size(), 1u) << "event " << id << ": a resend has the webhook-id of the first send";
    }
    // Only a delivery on the wire at the kill can have been received twice.
    const int duplicates = got.duplicates();
    EXPECT_LE(duplicates, static_cast<int>(seen_at_kill));
    const auto ms = [&](auto since, auto until) {
        return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - since).count());
    };
    RecordProperty("seen_at_kill", static_cast<int>(seen_at_kill));
    RecordProperty("duplicates", duplicates);
    RecordProperty("kill_to_all_received_ms", ms(killed, all_received));
    RecordProperty("kill_to_all_done_ms", ms(killed, all_done));
    std::cout << "seen at kill: " << seen_at_kill << ", duplicates: " << duplicates
              << ", kill to all received: " << ms(killed, all_received)
              << " ms, kill to all done: " << ms(killed, all_done) << " ms\n";
}

// ---- SIGHUP adds and removes a destination ------------------------------------------------

TEST_F(ForwardProcess, SighupAddsAndRemovesADestination)
{
    // One attempt now and the next an hour away: a failed delivery stays failing for the test.
    const std::string forward = "[forward]\nretry_schedule = [\"0\", \"1h\"]\n";
    write_config(forward);
    instance daemon(config_file);
    daemon.start();
    ASSERT_NE(daemon.port(), 0) << daemon.output();
    const auto before = callback(daemon.endpoint(), "hup-before", 1);

    write_config(forward + destination("app"));
    daemon.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return daemon.metric(applied_reloads) == 1; }, 20s)) << daemon.output();
    const auto added = callback(daemon.endpoint(), "hup-added", 2);
    ASSERT_TRUE(downstream.wait_for(1)) << daemon.output();
    ASSERT_TRUE(eventually([&] { return count_rows(db, "deliveries", "state = 'done'") == 1; }, 10s));
    // Deliveries are made when an event becomes forwardable, for the destinations configured
    // then: the event stored before the reload has none, so it is never sent.
    EXPECT_EQ(count_rows(db, "deliveries"), 1);
    EXPECT_EQ(count_rows(db, "deliveries", fmt::format("event_id = {}", before)), 0);
    EXPECT_EQ(count_rows(db, "deliveries", fmt::format("event_id = {} AND destination = 'app'", added)), 1);
    ASSERT_EQ(downstream.count(), 1u);
    const auto first = downstream.requests().front();
    EXPECT_EQ(first.header("x-cwhook-event-id"), std::to_string(added));
    EXPECT_TRUE(signed_by_secret(first));

    // The destination goes down: three deliveries fail once and wait for their next attempt.
    downstream.respond([](const sink_request&, std::size_t) { return after(0ms, 503); });
    std::set<std::int64_t> undelivered;
    for (int i = 0; i < 3; ++i) {
        undelivered.insert(callback(daemon.endpoint(), fmt::format("hup-down-{}", i), 10 + i));
    }
    ASSERT_TRUE(eventually([&] { return count_rows(db, "deliveries", "state = 'failing'") == 3; }, 20s))
        << daemon.output();
    EXPECT_EQ(downstream.count(), 4u);

    write_config(forward);
    daemon.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return daemon.metric(applied_reloads) == 2; }, 20s)) << daemon.output();
    // The reload has synced the destinations before it counts: the rows are cancelled by now.
    const auto cancelled =
        run_cwhook({"deliveries", "list", "--destination", "app", "--state", "cancelled", "--jsonl", "--db", db});
    ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
    std::set<std::int64_t> listed;
    for (std::size_t at = cancelled.out.find("\"event_id\":"); at != std::string::npos;
         at = cancelled.out.find("\"event_id\":", at + 1)) {
        listed.insert(std::stoll(cancelled.out.substr(at + 11)));
    }
    EXPECT_EQ(listed, undelivered) << cancelled.out;
    const auto done =
        run_cwhook({"deliveries", "list", "--destination", "app", "--state", "done", "--jsonl", "--db", db});
    ASSERT_EQ(done.exit_code, 0) << done.err;
    EXPECT_NE(done.out.find(fmt::format("\"event_id\":{},", added)), std::string::npos) << done.out;
    EXPECT_EQ(count_rows(db, "deliveries"), 4);
    EXPECT_EQ(count_rows(db, "destinations", "name = 'app' AND configured = 0"), 1);
}

// ---- two instances on one PostgreSQL ------------------------------------------------------

TEST_F(ForwardProcess, TwoInstancesOnPostgresSendEachDeliveryOnce)
{
    pg_database pg;
    // Both look for due rows every 50 ms besides their own commits: each lane claims rows the
    // other instance stored, so the two compete for every delivery.
    downstream.respond([](const sink_request&, std::size_t) { return after(10ms); });
    const auto storage = fmt::format("backend = \"postgres\"\nurl = \"{}\"\n", pg.url());
    write_config("[forward]\npoll_interval = \"50ms\"\n" + destination("app"), storage);
    instance a(config_file);
    instance b(config_file);
    a.start();
    b.start();
    ASSERT_NE(a.port(), 0) << a.output();
    ASSERT_NE(b.port(), 0) << b.output();

    constexpr int n = 100;
    std::set<std::int64_t> acknowledged;
    std::mutex mutex;
    std::vector<std::thread> senders;
    for (instance* target : {&a, &b}) {
        const int side = target == &a ? 0 : 1;
        senders.emplace_back([&, target, side] {
            for (int i = side; i < n; i += 2) {
                const auto id = callback(target->endpoint(), fmt::format("pg-{}", i), 2000 + i);
                std::lock_guard lock(mutex);
                acknowledged.insert(id);
            }
        });
    }
    for (auto& t : senders) {
        t.join();
    }
    ASSERT_EQ(acknowledged.size(), static_cast<std::size_t>(n));
    ASSERT_FALSE(acknowledged.contains(0));

    // Done rows are never claimed again: once all are done, the sink has everything it gets.
    ASSERT_TRUE(
        eventually([&] { return pg.psql("SELECT count(*) FROM deliveries WHERE state = 'done'") == "100"; }, 30s))
        << pg.psql("SELECT state, count(*) FROM deliveries GROUP BY state") << a.output() << b.output();
    const auto got = tally(downstream);
    EXPECT_EQ(got.unsigned_requests, 0);
    EXPECT_TRUE(got.has_all(acknowledged));
    EXPECT_EQ(downstream.count(), static_cast<std::size_t>(n));
    for (const auto& [id, count] : got.requests) {
        EXPECT_EQ(count, 1) << "event " << id << " sent " << count << " times";
    }
    std::set<std::string> webhook_ids;
    for (const auto& r : downstream.requests()) {
        EXPECT_TRUE(webhook_ids.insert(r.header("webhook-id")).second) << r.header("webhook-id") << " sent twice";
    }

    const std::string successes = "cwhook_forward_successes_total{destination=\"app\"}";
    const auto by_a = a.metric(successes);
    const auto by_b = b.metric(successes);
    EXPECT_GT(by_a, 0);
    EXPECT_GT(by_b, 0);
    EXPECT_EQ(by_a + by_b, n);
    RecordProperty("sent_by_a", static_cast<int>(by_a));
    RecordProperty("sent_by_b", static_cast<int>(by_b));
}

} // namespace
} // namespace cwhook::test
