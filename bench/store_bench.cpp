// The store alone, without HTTP: how many rows per second cwhook's writer commits, and the
// CPU time each costs, for rows shaped like the ingest benchmark's deliveries (~1.5 KB body,
// headers, every indexed column filled, a distinct dedupe key per row). This is the ceiling
// of ingest on one core: the HTTP side needs CPU time on top of it.
//
//   cwhook-store-bench DB ROWS BATCH [full|normal] [cwhook|noindex|dedupe|bare]
//
// Submits ROWS events in waves of BATCH (each wave is one transaction: the writer takes the
// whole queue) and waits for each wave's completions before the next, so the batch size is
// exact. Prints one line "STORE key=value ...". Give DB as a path that does not exist yet:
// rows added to an existing database are measured against its size (bench/store.sh does so).
//
// The last argument picks what is measured:
//   cwhook   the real store (default): the events table, its dedupe key and 9 indexes;
//   noindex  the real store with the 9 secondary indexes dropped (row, dedupe key, writer);
//   dedupe   no cwhook code: this thread inserts each body and its dedupe key into
//            (id INTEGER PRIMARY KEY, dedupe_key TEXT UNIQUE, body BLOB) with the writer's
//            pragmas, BATCH rows per transaction (INSERT OR IGNORE). The least a receiver
//            that recognises redeliveries does.
//   bare     the same without the dedupe key: (id INTEGER PRIMARY KEY, body BLOB). The least
//            any receiver that keeps the payload in SQLite does.
#include "crypto/digest.hpp"
#include "store/event_store.hpp"

#include <fmt/format.h>

#include <sqlite3.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace cwhook;

double cpu_seconds()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

store::event_record make_event(std::mt19937_64& rng, std::int64_t n)
{
    static const char* const types[] = {"ticket", "ticket", "ticket", "company", "contact", "time", "activity"};
    static const char* const actions[] = {"updated", "updated", "added", "deleted"};
    const std::int64_t entity = static_cast<std::int64_t>(rng() % 50'000) + 1;
    const std::string company = fmt::format("company{:02}", rng() % 40);
    const std::string message_id = fmt::format("{:08x}-{:04x}-4000-8000-{:012x}", rng() & 0xffffffff, n & 0xffff, n);
    // A compact payload with a JSON-encoded Entity padded to ~1.5 KB like ingest.lua's.
    std::string entity_json = fmt::format(
        R"({{\"id\":{},\"summary\":\"Printer offline on floor {}\",\"company\":{{\"identifier\":\"{}\"}},)"
        R"(\"status\":{{\"name\":\"New\"}},\"notes\":\")",
        entity, n % 7, company);
    while (entity_json.size() < 1250) {
        entity_json += "lorem ipsum dolor sit amet ";
    }
    entity_json += R"(\"})";
    store::event_record ev;
    ev.received_at_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    ev.status = store::event_status::verified;
    ev.type = types[rng() % std::size(types)];
    ev.action = actions[rng() % std::size(actions)];
    ev.body = fmt::format(
        R"({{"MessageId":"{}","FromUrl":"na.myconnectwise.net","CompanyId":"{}","MemberId":"admin1",)"
        R"("Action":"{}","Type":"{}","ID":{},"ProductInstanceId":"aaaa-bbbb","PartnerId":"partner",)"
        R"("Entity":"{}","Metadata":{{"key_url":"https://na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkey?id=x"}},"CallbackObjectRecId":17}})",
        message_id, company, ev.action, ev.type, entity, entity_json);
    ev.body_sha256 = crypto::hex(crypto::sha256(ev.body));
    ev.dedupe_key = "m:" + message_id;
    ev.method = "POST";
    ev.path = "/callbacks";
    ev.query = "recordId=" + std::to_string(entity);
    ev.client_addr = "127.0.0.1";
    ev.headers = fmt::format("Host: 127.0.0.1:8080\nContent-Type: application/json\nContent-Length: {}\n"
                             "x-content-signature: {}\nUser-Agent: ConnectWise Manage\n",
                             ev.body.size(), std::string(44, 'A'));
    ev.content_type = "application/json";
    ev.signature = std::string(44, 'A');
    ev.message_id = message_id;
    ev.entity_id = entity;
    ev.company_id = company;
    ev.member_id = "admin1";
    ev.from_url = "na.myconnectwise.net";
    ev.product_instance_id = "aaaa-bbbb";
    ev.partner_id = "partner";
    ev.callback_id = 17;
    ev.key_url = "https://na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkey?id=x";
    return ev;
}

// The secondary indexes of the events table, all but the dedupe key's.
constexpr const char* secondary_indexes[] = {
    "events_received_at", "events_type_action", "events_entity", "events_company", "events_status",
    "events_callback",    "events_due_pending", "events_type",   "events_action",
};

bool exec(sqlite3* db, const std::string& sql)
{
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::fprintf(stderr, "%s: %s\n", sql.c_str(), err != nullptr ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return false;
    }
    return true;
}

// The real store's schema without its secondary indexes, through a second connection.
bool drop_secondary_indexes(const std::string& path)
{
    sqlite3* db = nullptr;
    bool ok = sqlite3_open(path.c_str(), &db) == SQLITE_OK;
    if (!ok) {
        std::fprintf(stderr, "cannot open %s\n", path.c_str());
    }
    sqlite3_busy_timeout(db, 5000);  // the writer may still hold its open-time lock
    for (const char* index : secondary_indexes) {
        ok = ok && exec(db, fmt::format("DROP INDEX {}", index));
    }
    sqlite3_close(db);
    return ok;
}

struct bare_result {
    double seconds = 0;
    double cpu = 0;
    bool ok = false;
};

// One thread, one connection, one small table: the floor under any store.
bare_result run_bare(const std::string& path, const std::vector<store::event_record>& events, std::int64_t batch,
                     bool full, int cache_mib, bool with_dedupe_key)
{
    bare_result out;
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
        std::fprintf(stderr, "cannot open %s\n", path.c_str());
        sqlite3_close(db);
        return out;
    }
    bool ok = exec(db, "PRAGMA journal_mode = WAL") &&
              exec(db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") &&
              exec(db, "PRAGMA temp_store = MEMORY") &&
              exec(db, fmt::format("PRAGMA cache_size = -{}", cache_mib * 1024)) &&
              exec(db, with_dedupe_key
                           ? "CREATE TABLE bodies (id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)"
                           : "CREATE TABLE bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    sqlite3_stmt* insert = nullptr;
    const char* sql = with_dedupe_key ? "INSERT OR IGNORE INTO bodies (body, dedupe_key) VALUES (?1, ?2)"
                                      : "INSERT INTO bodies (body) VALUES (?1)";
    ok = ok && sqlite3_prepare_v2(db, sql, -1, &insert, nullptr) == SQLITE_OK;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const auto rows = static_cast<std::int64_t>(events.size());
    for (std::int64_t first = 0; ok && first < rows; first += batch) {
        ok = exec(db, "BEGIN");
        for (std::int64_t i = first; ok && i < std::min(first + batch, rows); ++i) {
            const auto& ev = events[static_cast<std::size_t>(i)];
            sqlite3_bind_blob(insert, 1, ev.body.data(), static_cast<int>(ev.body.size()), SQLITE_STATIC);
            if (with_dedupe_key) {
                sqlite3_bind_text(insert, 2, ev.dedupe_key.data(), static_cast<int>(ev.dedupe_key.size()), SQLITE_STATIC);
            }
            ok = sqlite3_step(insert) == SQLITE_DONE;
            sqlite3_reset(insert);
        }
        ok = ok && exec(db, "COMMIT");
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.cpu = cpu_seconds() - cpu0;
    out.ok = ok;
    sqlite3_finalize(insert);
    sqlite3_close(db);
    return out;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s DB ROWS BATCH [full|normal] [cwhook|noindex|dedupe|bare]\n", argv[0]);
        return 2;
    }
    store::settings s;
    s.path = argv[1];
    const auto rows = std::strtoll(argv[2], nullptr, 10);
    const auto batch = std::strtoll(argv[3], nullptr, 10);
    if (rows <= 0 || batch <= 0) {
        std::fprintf(stderr, "ROWS and BATCH must be positive\n");
        return 2;
    }
    s.synchronous = argc > 4 && std::string(argv[4]) == "normal" ? store::synchronous_mode::normal
                                                                  : store::synchronous_mode::full;
    const std::string schema = argc > 5 ? argv[5] : "cwhook";
    if (schema != "cwhook" && schema != "noindex" && schema != "dedupe" && schema != "bare") {
        std::fprintf(stderr, "schema \"%s\": expected cwhook, noindex, dedupe or bare\n", schema.c_str());
        return 2;
    }
    const char* sync_name = s.synchronous == store::synchronous_mode::full ? "full" : "normal";

    // Rows are made before the clock starts: only the store is measured.
    std::mt19937_64 rng(42);
    std::vector<store::event_record> events;
    events.reserve(static_cast<std::size_t>(rows));
    for (std::int64_t i = 0; i < rows; ++i) {
        events.push_back(make_event(rng, i));
    }

    if (schema == "bare" || schema == "dedupe") {
        const auto r = run_bare(s.path, events, batch, s.synchronous == store::synchronous_mode::full,
                                static_cast<int>(s.cache_mib), schema == "dedupe");
        std::printf("STORE schema=%s rows=%lld batch=%lld committed_batch=%lld sync=%s seconds=%.3f "
                    "rows_per_s=%.0f cpu_us_per_row=%.1f failed=%d\n",
                    schema.c_str(), static_cast<long long>(rows), static_cast<long long>(batch),
                    static_cast<long long>(std::min(batch, rows)), sync_name, r.seconds,
                    static_cast<double>(rows) / r.seconds, r.cpu / static_cast<double>(rows) * 1e6, r.ok ? 0 : 1);
        return r.ok ? 0 : 1;
    }

    s.max_batch = static_cast<std::size_t>(batch);
    s.queue_limit = static_cast<std::size_t>(batch) + 1;
    std::atomic<std::int64_t> commits{0};
    std::atomic<std::int64_t> committed_jobs{0};
    auto st = store::event_store::open(s, [&](std::size_t jobs, std::chrono::duration<double>) {
        commits.fetch_add(1);
        committed_jobs.fetch_add(static_cast<std::int64_t>(jobs));
    });
    if (!st) {
        std::fprintf(stderr, "%s\n", st.error().c_str());
        return 1;
    }
    if (schema == "noindex" && !drop_secondary_indexes(s.path)) {
        return 1;
    }

    std::mutex m;
    std::condition_variable cv;
    std::int64_t done = 0;
    std::int64_t failed = 0;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t first = 0; first < rows; first += batch) {
        const std::int64_t n = std::min(batch, rows - first);
        {
            std::lock_guard lock(m);
            done = 0;
        }
        // The writer wakes at the first row and takes what is queued by then, so a wave may
        // be committed in several transactions: the average batch actually committed is
        // printed (run pinned to one CPU, as the daemon is in the ingest benchmark, and the
        // waves mostly stay whole).
        for (std::int64_t i = first; i < first + n; ++i) {
            const bool ok = (*st)->submit_event(std::move(events[static_cast<std::size_t>(i)]),
                                                [&](cwhook::result<store::insert_outcome> r) {
                                                    std::lock_guard lock(m);
                                                    failed += r ? 0 : 1;
                                                    // Only the wave's last row wakes the
                                                    // submitter: a wake per row would cost two
                                                    // context switches a row on the shared core.
                                                    if (++done == n) {
                                                        cv.notify_one();
                                                    }
                                                });
            if (!ok) {
                std::fprintf(stderr, "queue refused a row\n");
                return 1;
            }
        }
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return done == n; });
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    (*st)->stop();
    std::printf("STORE schema=%s rows=%lld batch=%lld committed_batch=%.1f sync=%s seconds=%.3f rows_per_s=%.0f "
                "cpu_us_per_row=%.1f failed=%lld\n",
                schema.c_str(), static_cast<long long>(rows), static_cast<long long>(batch),
                static_cast<double>(committed_jobs.load()) / static_cast<double>(std::max<std::int64_t>(commits.load(), 1)),
                sync_name, secs,
                static_cast<double>(rows) / secs, cpu / static_cast<double>(rows) * 1e6,
                static_cast<long long>(failed));
    return failed == 0 ? 0 : 1;
}
