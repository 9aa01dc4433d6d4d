// `cwhook events ...` and `cwhook rejections ...`: operators' tools on the database, usable
// while the daemon runs (their own connection; WAL readers never block its writer). Parsing
// and printing only: queries are lib/store's event_db, formats lib/events.
#include "commands.hpp"
#include "db_command.hpp"

#include "callback/app.hpp"
#include "callback/reverify.hpp"
#include "config/config.hpp"
#include "core/duration.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "crypto/tls.hpp"
#include "events/feed.hpp"
#include "events/filter.hpp"
#include "events/render.hpp"
#include "events/replay.hpp"
#include "json/pretty.hpp"
#include "store/event_db.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace cwhook::daemon {

namespace {

struct filter_options {
    std::optional<std::string> type, action, entity_id, company, status, source, since, until, callback_id, limit;
};

void add_filter_options(CLI::App& cmd, filter_options& f, bool with_limit = true)
{
    cmd.add_option("--type", f.type, "Callback type (ticket, contact, ...)");
    cmd.add_option("--action", f.action, "added, updated or deleted");
    cmd.add_option("--entity-id", f.entity_id, "Record id (the payload's ID)")->type_name("ID");
    cmd.add_option("--company", f.company, "Company id (the payload's CompanyId)");
    cmd.add_option("--status", f.status, "verified, pending, failed, unverified or synthesized");
    cmd.add_option("--source", f.source, "callback or catch_up");
    cmd.add_option("--since", f.since, "Received at or after: RFC 3339 time, or a duration back (2h, 7d)")
        ->type_name("TIME");
    cmd.add_option("--until", f.until, "Received before: RFC 3339 time, or a duration back (2h, 7d)")
        ->type_name("TIME");
    cmd.add_option("--callback-id", f.callback_id, "Registration that fired (CallbackObjectRecId)")->type_name("ID");
    if (with_limit) {
        cmd.add_option("--limit", f.limit, "At most this many events")->type_name("N");
    }
}

// Whether any selecting filter option was given (--limit only selects when asked to).
bool any_filter(const filter_options& o, bool count_limit)
{
    return o.type || o.action || o.entity_id || o.company || o.status || o.source || o.since || o.until ||
           o.callback_id || (count_limit && o.limit);
}

// The filter, or a usage error naming the option (exit 2).
std::optional<store::event_filter> to_filter(const filter_options& o, std::size_t default_limit)
{
    store::event_filter f;
    f.limit = default_limit;
    const auto now = now_us();
    const std::pair<const char*, const std::optional<std::string>*> given[] = {
        {"type", &o.type},       {"action", &o.action}, {"entity-id", &o.entity_id},
        {"company", &o.company}, {"status", &o.status}, {"source", &o.source},
        {"since", &o.since},     {"until", &o.until},   {"callback-id", &o.callback_id},
        {"limit", &o.limit},
    };
    for (const auto& [name, value] : given) {
        if (!*value) {
            continue;
        }
        if (auto why = events::set_filter(f, name, **value, now)) {
            std::fprintf(stderr, "cwhook: --%s: \"%s\": %s\n", name, (*value)->c_str(), why->c_str());
            return std::nullopt;
        }
    }
    return f;
}

// ---- list -------------------------------------------------------------------------------

struct list_options {
    db_options db;
    filter_options filter;
    bool json = false;
    bool jsonl = false;
};

int run_list(const common_options& common, const list_options& o)
{
    auto f = to_filter(o.filter, 50);
    if (!f) {
        return usage_error;
    }
    return list_rows(
        common, o.db, [&](store::event_db& db) { return db.list(*f); }, o.json, o.jsonl, events::summary_json,
        events::table);
}

// ---- show -------------------------------------------------------------------------------

struct show_options {
    db_options db;
    std::string id;
    bool raw = false;
    bool entity = false;
    bool json = false;
};

// The first schema with the forwarding outbox: an older database (read as it is) has none.
constexpr std::int64_t outbox_schema = 3;

int run_show(const common_options& common, const show_options& o)
{
    return show_one(
        common, o.db, o.id, "event", [](store::event_db& db, std::int64_t id) { return db.get(id); },
        [&o](store::event_db& db, const store::stored_event& e) {
            if (o.raw) {
                out(e.record.body);  // the exact bytes, no newline added
                return flush_stdout();
            }
            if (o.entity) {
                auto entity = json::decoded_entity(e.record.body, 2);
                if (!entity) {
                    std::fprintf(stderr, "cwhook: event %lld: the body has no decodable Entity\n",
                                 static_cast<long long>(e.id));
                    return 1;
                }
                out(*entity + "\n");
                return flush_stdout();
            }
            std::vector<store::delivery_row> forwarding;
            if (db.schema_version() >= outbox_schema) {
                auto rows = db.deliveries_of(e.id);
                if (!rows) {
                    std::fprintf(stderr, "cwhook: %s\n", rows.error().c_str());
                    return 1;
                }
                forwarding = std::move(*rows);
            }
            out(o.json ? events::detail_json(e, forwarding, 2) + "\n" : events::detail_text(e, forwarding));
            return flush_stdout();
        });
}

// ---- export / import --------------------------------------------------------------------

struct export_options {
    db_options db;
    filter_options filter;
    std::string format = "jsonl";
};

int run_export(const common_options& common, const export_options& o)
{
    if (o.format != "jsonl" && o.format != "json") {
        std::fprintf(stderr, "cwhook: --format: \"%s\": expected jsonl or json\n", o.format.c_str());
        return usage_error;
    }
    auto f = to_filter(o.filter, 0);
    if (!f) {
        return usage_error;
    }
    auto db = open_db(common, o.db, store::db_access::read_only);
    if (!db) {
        return 1;
    }
    const bool array = o.format == "json";
    bool first = true;
    bool write_failed = false;
    std::string line;
    if (array) {
        out("[\n");
    }
    // Oldest first: an import then assigns ids in the original order.
    auto r = db->scan(*f, store::scan_order::oldest_first, [&](const store::stored_event& e) {
        line.clear();
        if (array && !first) {
            line += ",\n";
        }
        first = false;
        line += events::export_line(e);
        if (!array) {
            line += '\n';
        }
        if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
            write_failed = true;
            return false;
        }
        return true;
    });
    if (array) {
        out(first ? "]\n" : "\n]\n");
    }
    if (!r) {
        std::fprintf(stderr, "cwhook: %s\n", r.error().c_str());
        return 1;
    }
    if (write_failed) {
        std::fprintf(stderr, "cwhook: cannot write to standard output\n");
        return 1;
    }
    return flush_stdout();
}

struct import_options {
    db_options db;
    std::string file = "-";
};

int run_import(const common_options& common, const import_options& o)
{
    std::ifstream file;
    std::istream* in = &std::cin;
    if (o.file != "-") {
        file.open(o.file, std::ios::binary);
        if (!file) {
            std::fprintf(stderr, "cwhook: %s: cannot open\n", o.file.c_str());
            return 1;
        }
        in = &file;
    }
    auto db = open_db(common, o.db, store::db_access::read_write);
    if (!db) {
        return 1;
    }
    constexpr std::size_t batch_size = 500;
    std::vector<store::stored_event> batch;
    batch.reserve(batch_size);
    store::import_outcome total;
    const auto flush = [&]() -> bool {
        if (batch.empty()) {
            return true;
        }
        auto r = db->import(batch);
        batch.clear();
        if (!r) {
            std::fprintf(stderr, "cwhook: %s\n", r.error().c_str());
            return false;
        }
        total.inserted += r->inserted;
        total.duplicates += r->duplicates;
        return true;
    };
    std::string line;
    std::size_t number = 0;
    while (std::getline(*in, line)) {
        ++number;
        std::string_view text = line;
        // Both export formats: JSON lines, or the array of `--format json` (one event a line).
        while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == ',')) {
            text.remove_suffix(1);
        }
        while (!text.empty() && text.front() == ' ') {
            text.remove_prefix(1);
        }
        if (text.empty() || text == "[" || text == "]") {
            continue;
        }
        auto parsed = events::parse_export_line(text);
        if (auto* err = std::get_if<std::string>(&parsed)) {
            flush();
            std::fprintf(stderr, "cwhook: %s:%zu: %s (imported %lld before it)\n", o.file == "-" ? "<stdin>" : o.file.c_str(),
                         number, err->c_str(), static_cast<long long>(total.inserted));
            return 1;
        }
        batch.push_back(std::move(std::get<store::stored_event>(parsed)));
        if (batch.size() >= batch_size && !flush()) {
            return 1;
        }
    }
    if (!flush()) {
        return 1;
    }
    std::fprintf(stderr, "imported %lld, already present %lld\n", static_cast<long long>(total.inserted),
                 static_cast<long long>(total.duplicates));
    return 0;
}

// ---- prune / stats ----------------------------------------------------------------------

struct prune_options {
    db_options db;
    std::string older_than;
    std::optional<std::string> status;
    bool dry_run = false;
};

int run_prune(const common_options& common, const prune_options& o)
{
    const auto age = parse_duration(o.older_than);
    if (!age || age->count() <= 0) {
        std::fprintf(stderr, "cwhook: --older-than: \"%s\": expected a duration like 30d or 12h\n",
                     o.older_than.c_str());
        return usage_error;
    }
    std::optional<store::event_status> status;
    if (o.status) {
        status = store::parse_event_status(*o.status);
        if (!status) {
            std::fprintf(stderr,
                         "cwhook: --status: \"%s\": expected verified, pending, failed, unverified or synthesized\n",
                         o.status->c_str());
            return usage_error;
        }
    }
    const std::int64_t cutoff = now_us() - std::chrono::duration_cast<std::chrono::microseconds>(*age).count();
    auto db = open_db(common, o.db, o.dry_run ? store::db_access::read_only : store::db_access::read_write);
    if (!db) {
        return 1;
    }
    if (o.dry_run) {
        auto n = db->count_older(cutoff, status);
        if (!n) {
            std::fprintf(stderr, "cwhook: %s\n", n.error().c_str());
            return 1;
        }
        out(fmt::format("would delete {} events received before {}\n", *n, format_time(cutoff)));
        return flush_stdout();
    }
    auto n = db->prune(cutoff, status);
    if (!n) {
        std::fprintf(stderr, "cwhook: %s\n", n.error().c_str());
        return 1;
    }
    out(fmt::format("deleted {} events received before {}\n", *n, format_time(cutoff)));
    return flush_stdout();
}

struct stats_options {
    db_options db;
    std::optional<std::string> since;
    bool json = false;
};

int run_stats(const common_options& common, const stats_options& o)
{
    std::optional<std::int64_t> since;
    if (o.since) {
        auto t = parse_time(*o.since, now_us());
        if (!t) {
            std::fprintf(stderr, "cwhook: --since: \"%s\": expected an RFC 3339 time or a duration (2h, 7d)\n",
                         o.since->c_str());
            return usage_error;
        }
        since = *t;
    }
    auto db = open_db(common, o.db, store::db_access::read_only);
    if (!db) {
        return 1;
    }
    auto s = db->stats(since);
    if (!s) {
        std::fprintf(stderr, "cwhook: %s\n", s.error().c_str());
        return 1;
    }
    out(o.json ? events::stats_json(*s) + "\n" : events::stats_text(*s));
    return flush_stdout();
}

// ---- replay -----------------------------------------------------------------------------

struct replay_cli {
    db_options db;
    filter_options filter;
    std::vector<std::string> ids;
    std::string to;
    std::optional<std::string> sign_key_file;
    std::optional<std::string> ca_file;
    std::string timeout = "10s";
    bool dry_run = false;
    double rate = 0;
    std::size_t concurrency = 1;
    bool stop_on_error = false;
};

std::optional<std::string> read_key_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
        key.pop_back();
    }
    return key;
}

class progress_bar {
public:
    explicit progress_bar(std::size_t total) : enabled_(total > 5 && isatty(STDERR_FILENO) != 0) {}

    void update(const events::replay_summary& s)
    {
        if (!enabled_ || s.total == 0) {
            return;
        }
        constexpr std::size_t width = 30;
        const std::size_t filled = s.finished() * width / s.total;
        std::fprintf(stderr, "\r[%s%s] %zu/%zu", std::string(filled, '#').c_str(),
                     std::string(width - filled, ' ').c_str(), s.finished(), s.total);
        if (s.done) {
            std::fputc('\n', stderr);
        }
        std::fflush(stderr);
    }

private:
    bool enabled_;
};

// The command runs the replay on one thread that also owns the database: the hooks do their
// work at once and complete without suspending.
boost::asio::awaitable<std::optional<store::stored_event>> load_event(store::event_db* db, std::int64_t id)
{
    auto e = db->get(id, false);
    co_return e ? std::move(*e) : std::nullopt;
}

boost::asio::awaitable<void> record_attempt(store::event_db* db, bool* warned, const store::replay_attempt& a)
{
    if (auto r = db->record_replay(a); !r && !*warned) {
        *warned = true;
        std::fprintf(stderr, "cwhook: warning: replay history not recorded: %s\n", r.error().c_str());
    }
    co_return;
}

int run_replay(const common_options& common, const replay_cli& o)
{
    events::replay_options opt;
    opt.to = o.to;
    opt.rate = o.rate;
    opt.concurrency = o.concurrency;
    opt.stop_on_error = o.stop_on_error;
    const auto timeout = parse_duration(o.timeout);
    if (!timeout || timeout->count() <= 0) {
        std::fprintf(stderr, "cwhook: --timeout: \"%s\": expected a duration like 10s\n", o.timeout.c_str());
        return usage_error;
    }
    opt.timeout = *timeout;
    if (auto checked = events::replay_request_for(opt); !checked) {
        std::fprintf(stderr, "cwhook: --to: \"%s\": %s\n", o.to.c_str(), checked.error().c_str());
        return usage_error;
    }
    auto given_ids = parse_ids(o.ids);
    if (!given_ids) {
        return usage_error;
    }
    std::vector<std::int64_t> ids = std::move(*given_ids);
    auto f = to_filter(o.filter, 0);
    if (!f) {
        return usage_error;
    }
    if (ids.empty() == !any_filter(o.filter, false)) {
        std::fprintf(stderr, "cwhook: give event ids or filters (--type, --since, ...), not both and not neither\n");
        return usage_error;
    }
    if (o.sign_key_file) {
        opt.sign_key = read_key_file(*o.sign_key_file);
        if (!opt.sign_key || opt.sign_key->empty()) {
            std::fprintf(stderr, "cwhook: --sign-key-file: %s: cannot read a key\n", o.sign_key_file->c_str());
            return 1;
        }
    }
    auto db = open_db(common, o.db, o.dry_run ? store::db_access::read_only : store::db_access::read_write);
    if (!db) {
        return 1;
    }
    if (ids.empty()) {
        auto found = db->ids(*f);
        if (!found) {
            std::fprintf(stderr, "cwhook: %s\n", found.error().c_str());
            return 1;
        }
        ids = std::move(*found);
    }
    if (o.dry_run) {
        std::string text = fmt::format("{} events would be replayed to {}\n", ids.size(), o.to);
        std::vector<store::event_summary> first;
        for (std::size_t i = 0; i < ids.size() && i < 10; ++i) {
            auto e = db->get(ids[i], false);
            if (e && *e) {
                first.push_back(events::summary_of(**e));
            }
        }
        if (!first.empty()) {
            text += events::table(first);
        }
        if (ids.size() > first.size()) {
            text += fmt::format("... and {} more\n", ids.size() - first.size());
        }
        out(text);
        return flush_stdout();
    }

    auto tls = crypto::make_client_context(o.ca_file.value_or(std::string()));
    if (!tls) {
        std::fprintf(stderr, "cwhook: --ca-file: %s\n", tls.error().message.c_str());
        return 1;
    }
    boost::asio::io_context ioc(1);
    client::https_client client(ioc.get_executor(), *tls);
    progress_bar bar(ids.size());
    events::replay_summary summary;
    bool history_warned = false;
    events::replay_hooks hooks;
    hooks.load = [raw = db.get()](std::int64_t id) { return load_event(raw, id); };
    hooks.record = [raw = db.get(), warned = &history_warned](const store::replay_attempt& a) {
        return record_attempt(raw, warned, a);
    };
    hooks.progress = [&](const events::replay_summary& s) {
        bar.update(s);
        if (s.done) {
            summary = s;
        }
    };
    events::start_replay(ioc.get_executor(), client, std::move(ids), std::move(opt), std::move(hooks));
    ioc.run();
    out(events::describe(summary) + "\n");
    const int flushed = flush_stdout();
    return summary.all_ok() && flushed == 0 ? 0 : 1;
}

// ---- reverify ---------------------------------------------------------------------------

struct reverify_cli {
    db_options db;
    filter_options filter;
    std::vector<std::string> ids;
    bool json = false;
};

boost::asio::awaitable<std::optional<bool>> settle_row(store::event_db* db, const store::status_update& u)
{
    auto r = db->settle(u);
    if (!r) {
        std::fprintf(stderr, "cwhook: %s\n", r.error().c_str());
        co_return std::nullopt;
    }
    co_return *r;
}

boost::asio::awaitable<void> run_reverify_rows(callback::key_cache* keys, const callback::key_url_policy* policy,
                                               std::chrono::milliseconds wait, const std::vector<std::int64_t>* ids,
                                               store::event_db* db, callback::reverify_summary* out)
{
    const callback::row_loader load = [db](std::int64_t id) { return load_event(db, id); };
    const callback::row_writer write = [db](const store::status_update& u) { return settle_row(db, u); };
    *out = co_await callback::reverify(*keys, *policy, wait, *ids, load, write);
}

// Re-checks pending and failed events against the key server, with the configuration's
// [verify] settings (allowlist, companies, CA bundle), and settles what gets a definitive
// answer. The daemon's counts of such rows catch up within a minute.
int run_reverify(const common_options& common, const reverify_cli& o)
{
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
        return 1;
    }
    auto given_ids = parse_ids(o.ids);
    if (!given_ids) {
        return usage_error;
    }
    std::vector<std::int64_t> ids = std::move(*given_ids);
    auto f = to_filter(o.filter, 0);
    if (!f) {
        return usage_error;
    }
    if (f->status && *f->status != store::event_status::pending && *f->status != store::event_status::failed) {
        std::fprintf(stderr, "cwhook: --status: \"%s\": only pending or failed events are re-checked\n",
                     o.filter.status->c_str());
        return usage_error;
    }
    if (!ids.empty() && any_filter(o.filter, true)) {
        std::fprintf(stderr, "cwhook: give event ids or filters (--status, --since, ...), not both\n");
        return usage_error;
    }
    const auto policy = callback::key_url_policy::make(cfg->app.verify.allowed_key_hosts,
                                                       callback::trusted_companies(cfg->app));
    if (!policy) {
        std::fprintf(stderr, "cwhook: verify: %s\n", policy.error().c_str());
        return 1;
    }
    auto tls = crypto::make_client_context(cfg->app.verify.ca_file);
    if (!tls) {
        std::fprintf(stderr, "cwhook: verify.ca_file: %s\n", tls.error().message.c_str());
        return 1;
    }
    auto db = open_db(common, o.db, store::db_access::read_write);
    if (!db) {
        return 1;
    }
    if (ids.empty()) {
        for (const auto st : {store::event_status::pending, store::event_status::failed}) {
            if (f->status && *f->status != st) {
                continue;
            }
            store::event_filter one = *f;
            one.status = st;
            auto found = db->ids(one);
            if (!found) {
                std::fprintf(stderr, "cwhook: %s\n", found.error().c_str());
                return 1;
            }
            ids.insert(ids.end(), found->begin(), found->end());
        }
    }
    const auto& verify = cfg->app.verify;
    boost::asio::io_context ioc(1);
    metrics::registry metrics;
    client::https_client client(ioc.get_executor(), *tls);
    callback::key_cache keys(ioc.get_executor(), callback::key_cache::https_fetcher(client, verify, metrics), verify,
                             metrics);
    const auto wait = verify.key_fetch_timeout + verify.key_refetch_interval + verify.answer_deadline;
    callback::reverify_summary summary;
    boost::asio::co_spawn(ioc, run_reverify_rows(&keys, &*policy, wait, &ids, db.get(), &summary),
                          [](const std::exception_ptr& e) {
                              if (e) {
                                  std::rethrow_exception(e);  // out of ioc.run(): a crash with its reason
                              }
                          });
    ioc.run();
    out(o.json ? summary.json() + "\n" : summary.text() + "\n");
    const int flushed = flush_stdout();
    return summary.errors == 0 && flushed == 0 ? 0 : 1;
}

// ---- tail -------------------------------------------------------------------------------

struct tail_options {
    db_options db;
    filter_options filter;
    std::string after = "0";
    bool follow = false;
    bool json = false;
    std::string interval = "1s";
};

constexpr std::size_t tail_page = 500;

// SIGINT or SIGTERM arrived (they are blocked: taken here, never by a handler). Waits up to
// `timeout` for one.
bool stop_signal(const sigset_t& set, std::chrono::milliseconds timeout)
{
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(timeout);
    const timespec ts{static_cast<time_t>(s.count()), static_cast<long>((timeout - s).count() * 1'000'000)};
    for (;;) {
        const int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            return true;
        }
        if (sig < 0 && errno == EINTR) {
            continue; // another signal: the remaining time is not worth tracking to the ms
        }
        return false;
    }
}

// The feed from the database (events/feed.hpp): every forwardable event after the cursor, in
// commit order; with --follow, new ones as they commit, looked for every --interval. Filters
// apply here, to what was read: the cursor moves past events they leave out. The last cursor
// goes to stderr on the way out, so that `--after` resumes where this left off.
int run_tail(const common_options& common, const tail_options& o)
{
    auto f = to_filter(o.filter, 0);
    if (!f) {
        return usage_error;
    }
    const auto interval = parse_duration(o.interval);
    if (!interval || interval->count() <= 0) {
        std::fprintf(stderr, "cwhook: --interval: \"%s\": expected a duration like 1s or 500ms\n", o.interval.c_str());
        return usage_error;
    }
    const bool latest = o.after == "latest";
    const auto given = events::parse_feed_cursor(o.after);
    if (!latest && !given) {
        std::fprintf(stderr, "cwhook: --after: \"%s\": expected a cursor printed by an earlier tail, or latest\n",
                     o.after.c_str());
        return usage_error;
    }
    // Blocked before the first read, so that a signal is never lost; taken between pages.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    auto db = open_db(common, o.db, store::db_access::read_only);
    if (!db) {
        return 1;
    }
    std::int64_t cursor = given.value_or(0);
    if (latest) {
        auto end = db->feed_end();
        if (!end) {
            std::fprintf(stderr, "cwhook: %s\n", end.error().c_str());
            return 1;
        }
        cursor = *end;
    }
    const auto finish = [&cursor](int code) {
        const auto text = events::format_feed_cursor(cursor);
        std::fprintf(stderr, "last cursor: %s (resume with --after %s)\n", text.c_str(), text.c_str());
        return code;
    };
    if (o.follow) {
        std::fprintf(stderr, "following the feed after cursor %s (Ctrl-C stops)\n",
                     events::format_feed_cursor(cursor).c_str());
    }
    std::string text;
    for (;;) {
        auto page = events::read_feed(*db, cursor, tail_page);
        if (!page) {
            std::fprintf(stderr, "cwhook: %s\n", page.error().c_str());
            return finish(1);
        }
        text.clear();
        for (const auto& e : page->events) {
            if (events::matches(*f, e.event)) {
                text += o.json ? events::feed_json(e) + "\n" : events::summary_line(events::summary_of(e.event));
            }
        }
        out(text);
        // Whole pages as they are read: whoever reads a pipe sees each event when it commits.
        if (flush_stdout() != 0) {
            return finish(1);
        }
        cursor = page->last;
        if (page->positions == tail_page) {
            if (stop_signal(stop, std::chrono::milliseconds(0))) {
                return finish(0);
            }
            continue; // more is there already
        }
        if (!o.follow || stop_signal(stop, *interval)) {
            return finish(0);
        }
    }
}

// ---- rejections -------------------------------------------------------------------------

struct rejections_list_options {
    db_options db;
    std::optional<std::string> reason, since, until, limit;
    bool json = false;
    bool jsonl = false;
};

int run_rejections_list(const common_options& common, const rejections_list_options& o)
{
    store::rejection_filter f;
    f.reason = o.reason;
    store::event_filter scratch;
    const auto now = now_us();
    const std::pair<const char*, const std::optional<std::string>*> given[] = {
        {"since", &o.since}, {"until", &o.until}, {"limit", &o.limit}};
    for (const auto& [name, value] : given) {
        if (*value) {
            if (auto why = events::set_filter(scratch, name, **value, now)) {
                std::fprintf(stderr, "cwhook: --%s: \"%s\": %s\n", name, (*value)->c_str(), why->c_str());
                return usage_error;
            }
        }
    }
    f.since_us = scratch.since_us;
    f.until_us = scratch.until_us;
    f.limit = scratch.limit;
    return list_rows(
        common, o.db, [&](store::event_db& db) { return db.rejections(f); }, o.json, o.jsonl, events::rejection_json,
        events::rejections_table);
}

struct rejections_show_options {
    db_options db;
    std::string id;
    bool json = false;
};

int run_rejections_show(const common_options& common, const rejections_show_options& o)
{
    return show_one(
        common, o.db, o.id, "rejection", [](store::event_db& db, std::int64_t id) { return db.rejection(id); },
        [&o](store::event_db&, const store::stored_rejection& r) {
            out(o.json ? events::rejection_json(r) + "\n" : events::rejection_text(r));
            return flush_stdout();
        });
}

} // namespace

command add_events(CLI::App& app, common_options& common)
{
    auto* group = app.add_subcommand("events", "Inspect, replay, export, import and prune stored events");
    group->require_subcommand(1);
    // The options live as long as the CLI (main keeps the commands until it returns).
    auto leaves = std::make_shared<std::vector<leaf>>();

    {
        auto o = std::make_shared<list_options>();
        auto* cmd = group->add_subcommand("list", "List events, newest first");
        add_db_options(*cmd, common, o->db);
        add_filter_options(*cmd, o->filter);
        auto* json = cmd->add_flag("--json", o->json, "One JSON array");
        cmd->add_flag("--jsonl", o->jsonl, "One JSON object per line")->excludes(json);
        leaves->push_back({cmd, [&common, o] { return run_list(common, *o); }});
    }
    {
        auto o = std::make_shared<show_options>();
        auto* cmd = group->add_subcommand(
            "show", "One event: metadata, headers, body with Entity decoded, replays, forwarding");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("ID", o->id, "Event id")->required();
        auto* raw = cmd->add_flag("--raw", o->raw, "Write the exact stored body bytes to stdout");
        auto* entity = cmd->add_flag("--entity", o->entity, "Print only the decoded Entity")->excludes(raw);
        cmd->add_flag("--json", o->json, "Everything as one JSON object")->excludes(raw)->excludes(entity);
        leaves->push_back({cmd, [&common, o] { return run_show(common, *o); }});
    }
    {
        auto o = std::make_shared<replay_cli>();
        auto* cmd = group->add_subcommand("replay", "POST stored events again (exact bytes and signature) to a URL");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("IDS", o->ids, "Event ids (or select with filters)");
        add_filter_options(*cmd, o->filter);
        cmd->add_option("--to", o->to, "Target URL (http:// or https://)")->required()->type_name("URL");
        cmd->add_option("--sign-key-file", o->sign_key_file, "Re-sign each body with the signing key in this file")
            ->type_name("FILE");
        cmd->add_option("--ca-file", o->ca_file, "Extra CA bundle for an https:// target")->type_name("FILE");
        cmd->add_option("--rate", o->rate, "At most N events per second (default: no limit)")
            ->type_name("N")
            ->check(CLI::NonNegativeNumber);
        cmd->add_option("--concurrency", o->concurrency, "Requests in flight (default 1)")
            ->type_name("N")
            ->check(CLI::Range(1, 256));
        cmd->add_option("--timeout", o->timeout, "Per request (default 10s)")->type_name("DURATION");
        cmd->add_flag("--stop-on-error", o->stop_on_error, "Send nothing more after a non-2xx answer or a failure");
        cmd->add_flag("--dry-run", o->dry_run, "Print how many events match and the first few");
        leaves->push_back({cmd, [&common, o] { return run_replay(common, *o); }});
    }
    {
        auto o = std::make_shared<reverify_cli>();
        auto* cmd = group->add_subcommand(
            "reverify", "Check pending and failed events against the key server again and settle them");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("IDS", o->ids, "Event ids (or select with filters; default: every pending and failed event)");
        add_filter_options(*cmd, o->filter);
        cmd->add_flag("--json", o->json, "The summary as one JSON object");
        leaves->push_back({cmd, [&common, o] { return run_reverify(common, *o); }});
    }
    {
        auto o = std::make_shared<tail_options>();
        auto* cmd = group->add_subcommand(
            "tail", "Forwardable events in commit order from a cursor; with --follow, new ones as they commit");
        add_db_options(*cmd, common, o->db);
        add_filter_options(*cmd, o->filter, false);
        cmd->add_option("--after", o->after,
                        "Start after this cursor (printed on exit), or latest for only what commits from now (default: "
                        "the beginning)")
            ->type_name("CURSOR|latest");
        cmd->add_flag("-f,--follow", o->follow, "Keep reading as events commit, until SIGINT or SIGTERM");
        cmd->add_option("--interval", o->interval, "With --follow: how often to look (default 1s)")
            ->type_name("DURATION");
        cmd->add_flag("--json", o->json, "One JSON object per line, with its cursor");
        leaves->push_back({cmd, [&common, o] { return run_tail(common, *o); }});
    }
    {
        auto o = std::make_shared<export_options>();
        auto* cmd = group->add_subcommand("export", "Write events to stdout (jsonl or json), oldest first");
        add_db_options(*cmd, common, o->db);
        add_filter_options(*cmd, o->filter);
        cmd->add_option("--format", o->format, "jsonl (default) or json");
        leaves->push_back({cmd, [&common, o] { return run_export(common, *o); }});
    }
    {
        auto o = std::make_shared<import_options>();
        auto* cmd = group->add_subcommand("import", "Read events written by export (duplicates are skipped)");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("FILE", o->file, "Export file, - for stdin (default)");
        leaves->push_back({cmd, [&common, o] { return run_import(common, *o); }});
    }
    {
        auto o = std::make_shared<prune_options>();
        auto* cmd = group->add_subcommand("prune", "Delete old events (pending ones only with --status pending)");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("--older-than", o->older_than, "Received longer ago than this (30d, 12h)")
            ->required()
            ->type_name("DURATION");
        cmd->add_option("--status", o->status, "Only events of this status");
        cmd->add_flag("--dry-run", o->dry_run, "Only count what would be deleted");
        leaves->push_back({cmd, [&common, o] { return run_prune(common, *o); }});
    }
    {
        auto o = std::make_shared<stats_options>();
        auto* cmd = group->add_subcommand("stats", "Counts by type, action, status and day");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("--since", o->since, "Only events received since (RFC 3339 or 7d)")->type_name("TIME");
        cmd->add_flag("--json", o->json, "As JSON");
        leaves->push_back({cmd, [&common, o] { return run_stats(common, *o); }});
    }
    return {group, [leaves] { return run_parsed(*leaves); }};
}

command add_rejections(CLI::App& app, common_options& common)
{
    auto* group = app.add_subcommand("rejections", "Inspect refused requests (400/401/403/413)");
    group->require_subcommand(1);
    auto leaves = std::make_shared<std::vector<leaf>>();
    {
        auto o = std::make_shared<rejections_list_options>();
        auto* cmd = group->add_subcommand("list", "List refused requests, newest first");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("--reason", o->reason, "bad_signature, malformed_payload, key_url_not_allowed, ...");
        cmd->add_option("--since", o->since, "RFC 3339 time or a duration back (2h, 7d)")->type_name("TIME");
        cmd->add_option("--until", o->until, "RFC 3339 time or a duration back (2h, 7d)")->type_name("TIME");
        cmd->add_option("--limit", o->limit, "At most this many (default 50)")->type_name("N");
        auto* json = cmd->add_flag("--json", o->json, "One JSON array");
        cmd->add_flag("--jsonl", o->jsonl, "One JSON object per line")->excludes(json);
        leaves->push_back({cmd, [&common, o] { return run_rejections_list(common, *o); }});
    }
    {
        auto o = std::make_shared<rejections_show_options>();
        auto* cmd = group->add_subcommand("show", "One refused request");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("ID", o->id, "Rejection id")->required();
        cmd->add_flag("--json", o->json, "As JSON");
        leaves->push_back({cmd, [&common, o] { return run_rejections_show(common, *o); }});
    }
    return {group, [leaves] { return run_parsed(*leaves); }};
}

} // namespace cwhook::daemon
