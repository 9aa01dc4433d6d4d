// Several receivers on one PostgreSQL, as real processes: `cwhook serve` children sharing a
// database of the test cluster (or a private cluster a test stops), nginx balancing between
// them, and `cwhook events` moving a SQLite database over. Only the key server is a fake.
// The promise the serving cases check: a delivery answered 2xx is stored exactly once,
// whichever instance took it and whatever died meanwhile; the last one, that a database moves
// over byte for byte and reads the same on either backend.
#include "support/harness.hpp"
#include "support/pg_cluster.hpp"

#include "crypto/digest.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr const char* nginx_binary = nginx_child::binary;
constexpr std::string_view stored_total = "cwhook_events_stored_total";

tcp::endpoint loopback(std::uint16_t port)
{
    return {net::ip::make_address("127.0.0.1"), port};
}

bool is_2xx(const http_result& r)
{
    return r.status >= 200 && r.status < 300;
}

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

std::vector<std::string> split(const std::string& line, char sep = '|')
{
    std::vector<std::string> out;
    std::size_t start = 0;
    for (auto at = line.find(sep); at != std::string::npos; at = line.find(sep, start)) {
        out.push_back(line.substr(start, at - start));
        start = at + 1;
    }
    out.push_back(line.substr(start));
    return out;
}

// One stored event as the test reads it back from PostgreSQL.
struct pg_row {
    std::int64_t id = 0;
    int rows = 0; // rows carrying this MessageId (the unique dedupe key makes more than 1 a bug)
    std::int64_t deliveries = 0;
    std::string status;
    std::int64_t verify_attempts = 0;
};

std::map<std::string, pg_row> rows_by_message_id(const pg_database& db)
{
    std::map<std::string, pg_row> out;
    const auto text = db.psql("SELECT message_id, id, deliveries, status, verify_attempts FROM events ORDER BY id");
    for (const auto& line : lines_of(text)) {
        const auto f = split(line);
        if (f.size() != 5) {
            ADD_FAILURE() << "unexpected psql line: " << line;
            continue;
        }
        auto& r = out[f[0]];
        ++r.rows;
        r.id = std::stoll(f[1]);
        r.deliveries = std::stoll(f[2]);
        r.status = f[3];
        r.verify_attempts = std::stoll(f[4]);
    }
    return out;
}

// nginx (Debian's) balancing round-robin over the instances' plain listeners. A request the
// chosen instance did not answer (refused, reset mid-request) goes to the next one, POSTs
// included: proxy_next_upstream ... non_idempotent is safe here because a repeated delivery
// is deduplicated by its MessageId. A failed instance is tried again after 1 s.
class nginx_balancer {
public:
    // The error log goes to a file: one line per failed upstream attempt would fill a pipe.
    nginx_balancer(const temp_dir& dir, const std::vector<std::uint16_t>& upstreams)
        : root_(dir.path() / "nginx"),
          nginx_(
              root_,
              [&](std::uint16_t port) {
                  std::string servers;
                  for (const auto p : upstreams) {
                      servers += fmt::format("        server 127.0.0.1:{} max_fails=1 fail_timeout=1s;\n", p);
                  }
                  return fmt::format(R"(    upstream cwhook {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://cwhook;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout non_idempotent;
            proxy_connect_timeout 2s;
        }}
    }})",
                                     fmt::arg("servers", servers), fmt::arg("port", port));
              },
              (root_ / "error.log").string(), 512)
    {
    }

    tcp::endpoint endpoint() const { return loopback(nginx_.port()); }
    std::string error_log() const { return read_file((root_ / "error.log").string()); }

private:
    std::filesystem::path root_;
    nginx_child nginx_;
};

// One answer a load got: which delivery, and what came back.
struct answer {
    std::string message_id;
    http_result result;
};

// Client threads sending distinct signed deliveries to one address until stopped, one
// connection a request as Manage does. With `retry_refused`, a delivery answered 429 is sent
// again (the same bytes) until it is acknowledged, as Manage retries a 429, though sooner and
// without giving up; the thread moves on only then, also once stopped.
class load {
public:
    using make_fn = std::function<http_call(std::string_view message_id, std::int64_t entity)>;

    load(tcp::endpoint target, int threads, std::string prefix, make_fn make, bool retry_refused = false)
        : target_(target), prefix_(std::move(prefix)), make_(std::move(make)), retry_refused_(retry_refused)
    {
        for (int t = 0; t < threads; ++t) {
            threads_.emplace_back([this, t] { run(t); });
        }
    }
    ~load() { stop(); }
    load(const load&) = delete;
    load& operator=(const load&) = delete;

    void stop()
    {
        stop_ = true;
        for (auto& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
    }

    int acknowledged() const { return acknowledged_.load(); }
    int refused_with_retry_after() const { return refused_with_retry_after_.load(); }

    // Every answer in the order received (each attempt of a retried delivery is one).
    std::vector<answer> answers() const
    {
        std::lock_guard lock(mutex_);
        return answers_;
    }

private:
    void run(int t)
    {
        const auto deadline_after_stop = 30s;
        for (std::int64_t i = 0; !stop_; ++i) {
            const auto mid = fmt::format("{}-{}-{}", prefix_, t, i);
            const auto call = make_(mid, 1'000'000 * (t + 1) + i);
            std::optional<std::chrono::steady_clock::time_point> give_up;
            for (;;) {
                const auto r = send(target_, call, {}, 15s);
                record(mid, r);
                if (is_2xx(r) || !retry_refused_ || r.status != 429) {
                    break;
                }
                if (stop_ && !give_up) {
                    give_up = std::chrono::steady_clock::now() + deadline_after_stop;
                }
                if (give_up && std::chrono::steady_clock::now() > *give_up) {
                    break;
                }
                // Pacing, not waiting for an event: Manage would wait Retry-After (2 s).
                std::this_thread::sleep_for(50ms);
            }
        }
    }

    void record(const std::string& mid, const http_result& r)
    {
        if (is_2xx(r)) {
            acknowledged_.fetch_add(1);
        } else if (r.status == 429 && r.headers.contains("retry-after")) {
            refused_with_retry_after_.fetch_add(1);
        }
        std::lock_guard lock(mutex_);
        answers_.push_back({mid, r});
    }

    tcp::endpoint target_;
    std::string prefix_;
    make_fn make_;
    bool retry_refused_;
    std::atomic<bool> stop_{false};
    std::atomic<int> acknowledged_{0};
    std::atomic<int> refused_with_retry_after_{0};
    mutable std::mutex mutex_;
    std::vector<answer> answers_;
    std::vector<std::thread> threads_;
};

// The MessageIds answered 2xx; a failure for any acknowledged twice.
std::set<std::string> acknowledged_ids(const std::vector<answer>& answers)
{
    std::set<std::string> out;
    for (const auto& a : answers) {
        if (is_2xx(a.result)) {
            EXPECT_TRUE(out.insert(a.message_id).second) << "acknowledged twice: " << a.message_id;
        }
    }
    return out;
}

// Every acknowledged delivery is one row, once.
void expect_each_stored_once(const std::set<std::string>& acked, const std::map<std::string, pg_row>& rows)
{
    std::size_t missing = 0;
    for (const auto& mid : acked) {
        const auto it = rows.find(mid);
        if (it == rows.end()) {
            ++missing;
            ADD_FAILURE() << "acknowledged but not stored: " << mid;
        } else {
            EXPECT_EQ(it->second.rows, 1) << mid;
        }
    }
    EXPECT_EQ(missing, 0u);
}

class Scaleout : public ::testing::Test {
protected:
    temp_dir dir;
    test_cert cert = make_cert(dir);
    fake_key_server keys{cert};

    // A configuration file for instance `name` on the PostgreSQL at `url`: its own folder
    // (storage.path).
    std::string config(const std::string& name, const std::string& url)
    {
        const auto text = config_for(dir.file(name + "/cwhook.db"), keys.host_entry(), cert.cert) +
                          fmt::format("backend = \"postgres\"\nurl = \"{}\"\n", url);
        return dir.write(name + ".toml", text);
    }

    http_call delivery(std::string_view message_id, std::int64_t entity, std::string_view key_id = {})
    {
        const auto key_url = key_id.empty() ? keys.url() : keys.url(key_id);
        return signed_call(make_payload(key_url, entity, message_id), keys.key());
    }

    load::make_fn deliveries()
    {
        return [this](std::string_view mid, std::int64_t entity) { return delivery(mid, entity); };
    }
};

// ---- two instances behind nginx, one killed -----------------------------------------------

TEST_F(Scaleout, KillNineBehindNginxLosesNothingAndTheInstanceRejoins)
{
    if (!std::filesystem::exists(nginx_binary)) {
        FAIL() << nginx_binary << " missing: install Debian's nginx (make test does)";
    }
    pg_database db;
    instance a(config("a", db.url()));
    instance b(config("b", db.url()));
    a.start();
    b.start();
    ASSERT_NE(a.port(), 0);
    ASSERT_NE(b.port(), 0);
    nginx_balancer nginx(dir, {a.port(), b.port()});

    load clients(nginx.endpoint(), 4, "lb", deliveries());
    // Round-robin: both instances store rows before one dies.
    ASSERT_TRUE(eventually([&] { return clients.acknowledged() >= 150; }, 30s)) << nginx.error_log();
    ASSERT_TRUE(eventually([&] { return a.metric(stored_total) > 0 && b.metric(stored_total) > 0; }, 10s));

    const auto a_port = a.port();
    ASSERT_EQ(a.kill9(), 128 + SIGKILL);
    const auto acked_at_kill = clients.acknowledged();
    const auto b_at_kill = b.metric(stored_total);
    // The survivor keeps answering: nginx passes everything to it.
    ASSERT_TRUE(eventually([&] { return clients.acknowledged() >= acked_at_kill + 150; }, 30s)) << nginx.error_log();
    EXPECT_GT(b.metric(stored_total), b_at_kill);

    // The same configuration on the port nginx knows: it takes its share again.
    a.start(a_port);
    ASSERT_EQ(a.port(), a_port) << a.output();
    EXPECT_TRUE(eventually([&] { return a.metric(stored_total) > 0; }, 20s)) << nginx.error_log();
    const auto acked_at_rejoin = clients.acknowledged();
    EXPECT_TRUE(eventually([&] { return clients.acknowledged() >= acked_at_rejoin + 50; }, 20s));
    clients.stop();

    const auto answers = clients.answers();
    const auto acked = acknowledged_ids(answers);
    // Nothing was lost to the kill: a request the dead instance left unanswered was passed
    // on, so every delivery got its 2xx (Manage would not have retried a 502).
    for (const auto& x : answers) {
        EXPECT_TRUE(is_2xx(x.result)) << x.message_id << ": " << x.result.status << " " << x.result.error
                                      << x.result.body;
    }
    const auto rows = rows_by_message_id(db);
    expect_each_stored_once(acked, rows);
    EXPECT_EQ(rows.size(), acked.size());
    RecordProperty("deliveries", static_cast<int>(answers.size()));
}

// ---- PostgreSQL restarted under load ------------------------------------------------------

TEST_F(Scaleout, PostgresRestartMidLoadIsRefusedWith429ThenRecoversByItself)
{
    const auto cluster = pg_cluster::start();
    pg_database db(*cluster);
    instance a(config("a", db.url()));
    a.start();
    ASSERT_NE(a.port(), 0);
    load clients(a.endpoint(), 4, "pgr", deliveries(), /*retry_refused=*/true);
    ASSERT_TRUE(eventually([&] { return clients.acknowledged() >= 100; }, 30s)) << a.output();

    cluster->stop(); // immediate: transactions in flight are cut off
    EXPECT_TRUE(eventually([&] { return clients.refused_with_retry_after() > 0; }, 20s)) << a.output();
    EXPECT_TRUE(eventually([&] { return a.readyz() == 503; }, 20s));
    const auto acked_while_down = clients.acknowledged();

    cluster->restart();
    // Nothing was done to cwhook: its writer reconnects on its own.
    ASSERT_TRUE(eventually([&] { return clients.acknowledged() >= acked_while_down + 100; }, 30s)) << a.output();
    EXPECT_TRUE(eventually([&] { return a.readyz() == 200; }, 20s));
    clients.stop();

    const auto answers = clients.answers();
    std::set<std::string> sent;
    for (const auto& x : answers) {
        sent.insert(x.message_id);
        // Only answers Manage retries: 2xx, or 429 with Retry-After (never a 5xx).
        if (!is_2xx(x.result)) {
            EXPECT_EQ(x.result.status, 429) << x.message_id << " " << x.result.error << x.result.body;
            EXPECT_TRUE(x.result.headers.contains("retry-after")) << x.message_id;
        }
    }
    const auto acked = acknowledged_ids(answers);
    EXPECT_EQ(acked, sent); // every refused delivery was acknowledged on a retry
    const auto rows = rows_by_message_id(db);
    expect_each_stored_once(acked, rows);
    EXPECT_EQ(rows.size(), acked.size());
}

// ---- the same MessageId at two instances at once ------------------------------------------

TEST_F(Scaleout, RacingDuplicatesOnTwoInstancesGiveOneRowOneStoredOneDuplicate)
{
    pg_database db;
    // Key fetches unthrottled: every round has a key_url of its own.
    const std::map<std::string, std::string> env{{"CWHOOK_VERIFY_KEY_FETCH_RATE", "1000"},
                                                 {"CWHOOK_VERIFY_KEY_FETCH_CONCURRENCY", "64"}};
    instance a(config("a", db.url()), env);
    instance b(config("b", db.url()), env);
    a.start();
    b.start();
    ASSERT_NE(a.port(), 0);
    ASSERT_NE(b.port(), 0);

    constexpr int rounds = 100;
    std::vector<std::array<http_result, 2>> results(rounds);
    const std::array<tcp::endpoint, 2> targets{a.endpoint(), b.endpoint()};
    for (int i = 0; i < rounds; ++i) {
        // Both copies wait inside their instance for the key, held until both have asked, and
        // are let go together: they reach the two writers at the same moment.
        const auto call = delivery(fmt::format("race-{}", i), 100 + i, fmt::format("rk-{}", i));
        const int fetched = keys.fetches();
        keys.hold();
        std::array<std::future<http_result>, 2> answers;
        for (std::size_t side = 0; side < 2; ++side) {
            answers[side] = std::async(std::launch::async, [&, side] { return send(targets[side], call); });
        }
        const bool both_waiting = eventually([&] { return keys.fetches() == fetched + 2; }, 20s);
        keys.release();
        for (std::size_t side = 0; side < 2; ++side) {
            results[static_cast<std::size_t>(i)][side] = answers[side].get();
        }
        ASSERT_TRUE(both_waiting) << "round " << i << ": " << keys.fetches() - fetched << " fetches";
    }

    const auto rows = rows_by_message_id(db);
    EXPECT_EQ(rows.size(), static_cast<std::size_t>(rounds));
    int stored_by_a = 0;
    for (int i = 0; i < rounds; ++i) {
        const auto& r = results[static_cast<std::size_t>(i)];
        const auto mid = fmt::format("race-{}", i);
        ASSERT_EQ(r[0].status, 200) << mid << r[0].error << r[0].body;
        ASSERT_EQ(r[1].status, 200) << mid << r[1].error << r[1].body;
        const auto it = rows.find(mid);
        ASSERT_NE(it, rows.end()) << mid;
        EXPECT_EQ(it->second.rows, 1) << mid;
        EXPECT_EQ(it->second.deliveries, 2) << mid;
        const auto id = it->second.id;
        const std::set<std::string> bodies{r[0].body, r[1].body};
        const std::set<std::string> expected{fmt::format("{{\"status\":\"stored\",\"id\":{}}}\n", id),
                                             fmt::format("{{\"status\":\"duplicate\",\"id\":{}}}\n", id)};
        EXPECT_EQ(bodies, expected) << mid;
        stored_by_a += r[0].body.find("\"stored\"") != std::string::npos ? 1 : 0;
    }
    RecordProperty("stored_by_a", stored_by_a);
}

// ---- pending rows settled once by two instances -------------------------------------------

TEST_F(Scaleout, PendingRowsAreVerifiedExactlyOnceByEitherInstance)
{
    pg_database db;
    // Key fetches unthrottled (one key_url per row) and patient (a held fetch waits for the
    // test); a failed fetch forgotten at once; the first re-verification 3 s after receipt.
    // A slow box may re-verify some rows during the outage: those attempts fail and the rows
    // stay pending, which changes nothing below (what counts is who settles them, and once).
    const std::map<std::string, std::string> env{
        {"CWHOOK_VERIFY_KEY_FETCH_RATE", "1000"},       {"CWHOOK_VERIFY_KEY_FETCH_CONCURRENCY", "64"},
        {"CWHOOK_VERIFY_KEY_FETCH_TIMEOUT", "60s"},     {"CWHOOK_VERIFY_KEY_FAILURE_TTL", "10ms"},
        {"CWHOOK_VERIFY_KEY_REFETCH_INTERVAL", "10ms"}, {"CWHOOK_VERIFY_PENDING_RETRY_MIN", "3s"}};
    instance a(config("a", db.url()), env);
    instance b(config("b", db.url()), env);

    keys.set_mode(fake_key_server::mode::fail_503);
    a.start();
    ASSERT_NE(a.port(), 0);
    // More rows than one claim takes (100): whoever claims first leaves rows to the other.
    constexpr int n = 200;
    {
        std::vector<std::thread> threads;
        std::atomic<int> pending{0};
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&, t] {
                for (int i = t; i < n; i += 4) {
                    // A key_url per row: a row settled twice would show as its key served twice.
                    const auto r =
                        send(a.endpoint(), delivery(fmt::format("pend-{}", i), 7000 + i, fmt::format("pk-{}", i)));
                    EXPECT_EQ(r.status, 202) << r.error << r.body;
                    if (r.body.find("\"status\":\"pending\"") != std::string::npos) {
                        pending.fetch_add(1);
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        ASSERT_EQ(pending.load(), n) << a.output();
    }
    b.start(); // it finds the pending rows at start
    ASSERT_NE(b.port(), 0);

    // The key server comes back holding every fetch: each instance re-verifies one row at a
    // time, so two fetches held at once show both instances in a round, on rows of their own.
    keys.set_mode(fake_key_server::mode::normal);
    keys.hold();
    ASSERT_TRUE(eventually([&] { return keys.parked() == 2; }, 60s)) << keys.parked();
    keys.release();

    ASSERT_TRUE(eventually([&] { return db.psql("SELECT count(*) FROM events WHERE status = 'pending'") == "0"; }, 60s))
        << a.output() << b.output();
    const auto rows = rows_by_message_id(db);
    ASSERT_EQ(rows.size(), static_cast<std::size_t>(n));
    for (const auto& [mid, row] : rows) {
        EXPECT_EQ(row.status, "verified") << mid;
        EXPECT_GE(row.verify_attempts, 1) << mid;
    }
    // Each row's key was handed out once, to the one instance that claimed and settled it.
    const auto served = keys.keys_served();
    EXPECT_EQ(served.size(), static_cast<std::size_t>(n));
    for (const auto& [id, times] : served) {
        EXPECT_EQ(times, 1) << id;
    }
    const auto verified_by_a = a.metric("cwhook_reverify_total{outcome=\"verified\"}");
    const auto verified_by_b = b.metric("cwhook_reverify_total{outcome=\"verified\"}");
    EXPECT_GT(verified_by_a, 0);
    EXPECT_GT(verified_by_b, 0);
    EXPECT_EQ(verified_by_a + verified_by_b, n);
}

// ---- moving a SQLite database over -------------------------------------------------------

// MessageId -> sha256 of the stored body, from each backend.
std::map<std::string, std::string> body_hashes(const std::string& sqlite_file)
{
    std::map<std::string, std::string> out;
    for (const auto& row : query_events(sqlite_file)) {
        out[row.message_id] = crypto::hex(crypto::sha256(row.body));
    }
    return out;
}

std::map<std::string, std::string> body_hashes(const pg_database& db)
{
    std::map<std::string, std::string> out;
    for (const auto& line : lines_of(db.psql("SELECT message_id, encode(sha256(body), 'hex') FROM events"))) {
        const auto f = split(line);
        out[f.at(0)] = f.at(1);
    }
    return out;
}

std::string sql_text(sqlite3_stmt* st, int col)
{
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
    std::string out = "'";
    for (const char c : std::string_view(p ? p : "")) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    return out + "'";
}

// export/import moves events; the refused requests are a log of their own, copied here row
// for row (same ids) so that `cwhook rejections` reads the same rows on both backends.
void copy_rejections(const std::string& sqlite_file, const pg_database& db)
{
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open_v2(sqlite_file.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(h,
                                 "SELECT id, received_at_us, http_status, reason, detail, client_addr, path, key_url, "
                                 "body_sha256, body_size, hex(body_head) FROM rejections ORDER BY id",
                                 -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(h);
    std::string sql;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sql += fmt::format("INSERT INTO rejections (id, received_at_us, http_status, reason, detail, client_addr, "
                           "path, key_url, body_sha256, body_size, body_head) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, "
                           "{}, {}, decode({}, 'hex'));\n",
                           sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                           sql_text(st, 3), sql_text(st, 4), sql_text(st, 5), sql_text(st, 6), sql_text(st, 7),
                           sql_text(st, 8), sqlite3_column_int64(st, 9), sql_text(st, 10));
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    ASSERT_FALSE(sql.empty());
    db.psql(sql);
}

TEST_F(Scaleout, SqliteExportImportsIntoPostgresByteExactAndEveryReaderAgrees)
{
    const auto sqlite_file = dir.file("old/cwhook.db");
    std::map<std::string, std::string> sent; // MessageId -> sha256 of the body as sent
    {
        app_options o;
        o.db = sqlite_file;
        o.allowed_key_hosts = {keys.host_entry()};
        o.ca_file = cert.cert;
        o.tweak = [](callback::app_settings& s) {
            s.verify.pending_retry_min = 1h; // pending rows stay pending
            s.verify.pending_retry_max = 1h;
        };
        running_app app(o);
        const auto post = [&](std::string_view mid, std::int64_t entity, std::string_view type, std::string_view action,
                              std::string_view key_id, int status) {
            auto body = make_payload(key_id.empty() ? keys.url() : keys.url(key_id), entity, mid, action, type);
            // Bytes a re-encoding would change: invalid UTF-8, escapes, a 2.00, CRLF in a string.
            body.insert(body.rfind('}'), ",\"Extra\":\"caf\xc3\xa9 \xff\xfe \\u00e9\\r\\n\",\"Budget\":2.00");
            sent[std::string(mid)] = crypto::hex(crypto::sha256(body));
            const auto r = send(app.http(), signed_call(body, keys.key()));
            EXPECT_EQ(r.status, status) << mid << " " << r.error << r.body;
        };
        const std::array<std::string_view, 3> types{"ticket", "contact", "company"};
        const std::array<std::string_view, 3> actions{"added", "updated", "deleted"};
        for (int i = 0; i < 9; ++i) {
            post(fmt::format("mv-{}", i), 9000 + i % 4, types[static_cast<std::size_t>(i % 3)],
                 actions[static_cast<std::size_t>(i / 3)], {}, 200);
        }
        post("mv-0", 9000, "ticket", "added", {}, 200); // a redelivery: deliveries = 2
        keys.set_mode(fake_key_server::mode::fail_503);
        post("mv-pending-0", 9100, "ticket", "updated", "mv-p0", 202);
        post("mv-pending-1", 9101, "contact", "added", "mv-p1", 202);
        keys.set_mode(fake_key_server::mode::not_found);
        post("mv-failed", 9200, "ticket", "deleted", "mv-f", 202);
        keys.set_mode(fake_key_server::mode::normal);
        auto forged = signed_call(make_payload(keys.url(), 9300, "mv-forged"), "not-the-key");
        EXPECT_EQ(send(app.http(), forged).status, 401);
        EXPECT_EQ(send(app.http(), signed_call("{not json", keys.key())).status, 400);
        app.stop(); // rejections are written after their answers; stopping flushes them
    }
    ASSERT_EQ(count_rows(sqlite_file, "rejections"), 2);

    const auto exported = run_cwhook({"events", "export", "--db", sqlite_file});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const auto export_file = dir.write("events.jsonl", exported.out);
    pg_database db;
    const auto imported = run_cwhook({"events", "import", "--db", db.url()}, export_file);
    ASSERT_EQ(imported.exit_code, 0) << imported.err;

    // Byte-exact: the same body hashes as sent, on both sides.
    EXPECT_EQ(body_hashes(sqlite_file), sent);
    EXPECT_EQ(body_hashes(db), sent);
    copy_rejections(sqlite_file, db);

    // Every reader prints the same for the same rows, whichever backend holds them.
    // prune names its cutoff, the time of each run: compared without it.
    const auto without_cutoff = [](std::string text) {
        if (const auto at = text.find(" before "); at != std::string::npos) {
            text.erase(at);
        }
        return text;
    };
    const auto same_output = [&](std::vector<std::string> args) {
        auto on_sqlite = args;
        on_sqlite.insert(on_sqlite.end(), {"--db", sqlite_file});
        auto on_postgres = args;
        on_postgres.insert(on_postgres.end(), {"--db", db.url()});
        const auto s = run_cwhook(on_sqlite);
        const auto p = run_cwhook(on_postgres);
        const auto what = fmt::format("cwhook {}", fmt::join(args, " "));
        EXPECT_EQ(s.exit_code, 0) << what << ": " << s.err;
        EXPECT_EQ(p.exit_code, 0) << what << ": " << p.err;
        EXPECT_FALSE(s.out.empty()) << what;
        if (args[1] == "prune") {
            EXPECT_EQ(without_cutoff(p.out), without_cutoff(s.out)) << what;
        } else {
            EXPECT_EQ(p.out, s.out) << what;
        }
    };
    const std::vector<std::vector<std::string>> reads{
        {"events", "list"},
        {"events", "list", "--json"},
        {"events", "list", "--jsonl", "--limit", "3"},
        {"events", "list", "--type", "contact"},
        {"events", "list", "--action", "deleted", "--json"},
        {"events", "list", "--entity-id", "9001"},
        {"events", "list", "--company", "Cobalt", "--status", "pending"},
        {"events", "list", "--status", "failed", "--json"},
        {"events", "list", "--callback-id", "26604", "--since", "1h"},
        {"events", "stats"},
        {"events", "stats", "--json"},
        {"events", "export"},
        {"events", "export", "--format", "json", "--status", "verified"},
        {"rejections", "list"},
        {"rejections", "list", "--json"},
        {"rejections", "list", "--reason", "bad_signature"},
        {"rejections", "show", "1"},
        {"rejections", "show", "2", "--json"},
    };
    for (const auto& args : reads) {
        same_output(args);
    }
    for (std::size_t id = 1; id <= sent.size(); ++id) {
        same_output({"events", "show", std::to_string(id)});
        same_output({"events", "show", std::to_string(id), "--json"});
        same_output({"events", "show", std::to_string(id), "--raw"});
    }

    // Retention by hand: the same rows go on both sides (pending ones stay).
    same_output({"events", "prune", "--older-than", "1ms", "--dry-run"});
    same_output({"events", "prune", "--older-than", "1ms"});
    same_output({"events", "list", "--json"});
    same_output({"events", "stats"});
    EXPECT_EQ(db.psql("SELECT string_agg(status, ',') FROM events"), "pending,pending");
}

} // namespace
} // namespace cwhook::test
