// `cwhook deliveries ...` and `cwhook destinations ...`: the forwarding outbox for operators,
// on the database like `cwhook events` (their own connection, usable while the daemon runs: a
// retried delivery is due at once and a pause holds from the forwarder's next claim, in every
// instance), and the signed ping of a configured destination. Parsing and printing only:
// queries are lib/store's event_db, formats lib/events, the ping lib/forward.
#include "commands.hpp"
#include "db_command.hpp"

#include "config/config.hpp"
#include "core/time.hpp"
#include "crypto/tls.hpp"
#include "events/deliveries_render.hpp"
#include "events/filter.hpp"
#include "forward/ping.hpp"
#include "store/event_db.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace cwhook::daemon {

namespace {

struct delivery_filter_options {
    std::optional<std::string> destination, state, event;
};

void add_delivery_filter_options(CLI::App& cmd, delivery_filter_options& f)
{
    cmd.add_option("--destination", f.destination, "Only deliveries to this destination")->type_name("NAME");
    cmd.add_option("--state", f.state, "pending, failing, done, dead or cancelled")->type_name("STATE");
    cmd.add_option("--event", f.event, "Only deliveries of this event")->type_name("ID");
}

// The filter, or a usage error naming the option (exit 2).
bool set_terms(store::delivery_filter& f,
               std::initializer_list<std::pair<const char*, const std::optional<std::string>*>> given)
{
    for (const auto& [name, value] : given) {
        if (!*value) {
            continue;
        }
        if (auto why = events::set_delivery_filter(f, name, **value)) {
            std::fprintf(stderr, "cwhook: --%s: \"%s\": %s\n", name, (*value)->c_str(), why->c_str());
            return false;
        }
    }
    return true;
}

std::string deliveries_word(std::int64_t n)
{
    return n == 1 ? "delivery" : "deliveries";
}

// ---- deliveries list / show -------------------------------------------------------------

struct list_options {
    db_options db;
    delivery_filter_options filter;
    std::optional<std::string> limit, before;
    bool json = false;
    bool jsonl = false;
};

int run_list(const common_options& common, const list_options& o)
{
    store::delivery_filter f;
    if (!set_terms(f, {{"destination", &o.filter.destination},
                       {"state", &o.filter.state},
                       {"event", &o.filter.event},
                       {"limit", &o.limit},
                       {"before", &o.before}})) {
        return usage_error;
    }
    return list_rows(
        common, o.db, [&f](store::event_db& db) { return db.deliveries(f); }, o.json, o.jsonl,
        [](const store::delivery_row& d) { return events::delivery_json(d); },
        [](const std::vector<store::delivery_row>& rows) { return events::deliveries_table(rows); });
}

struct show_options {
    db_options db;
    std::string id;
    bool json = false;
};

int run_show(const common_options& common, const show_options& o)
{
    return show_one(
        common, o.db, o.id, "delivery", [](store::event_db& db, std::int64_t id) { return db.delivery(id); },
        [&o](store::event_db&, const store::delivery_row& d) {
            out(o.json ? events::delivery_json(d, true) + "\n" : events::delivery_text(d));
            return flush_stdout();
        });
}

// ---- deliveries retry -------------------------------------------------------------------

struct retry_options {
    db_options db;
    std::vector<std::string> ids;
    delivery_filter_options filter;
    bool all = false;
    bool dry_run = false;
    bool yes = false;
};

// Asks on the terminal; false unless the answer is yes.
bool confirmed(std::int64_t n)
{
    std::fprintf(stderr, "%lld %s will be retried. Continue? [y/N] ", static_cast<long long>(n),
                 deliveries_word(n).c_str());
    std::fflush(stderr);
    std::string answer;
    if (!std::getline(std::cin, answer)) {
        return false;
    }
    return answer == "y" || answer == "Y" || answer == "yes";
}

// Ids retry what they name. A selection by filter asks first (or takes --yes): it may hold
// many rows, done ones too, whose events would all go out again. Nothing at all selects
// every row only with --all, so that a forgotten filter never re-sends the whole outbox.
int run_retry(const common_options& common, const retry_options& o)
{
    auto given = parse_ids(o.ids);
    if (!given) {
        return usage_error;
    }
    const std::vector<std::int64_t> ids = std::move(*given);
    const bool filtered = o.filter.destination || o.filter.state || o.filter.event;
    if (!ids.empty() && (filtered || o.all)) {
        std::fprintf(stderr, "cwhook: give delivery ids or a selection (--destination, --state, --event, --all), not "
                             "both\n");
        return usage_error;
    }
    if (ids.empty() && !filtered && !o.all) {
        std::fprintf(stderr, "cwhook: give delivery ids, a selection (--destination, --state, --event), or --all to "
                             "retry every delivery not pending\n");
        return usage_error;
    }
    store::delivery_filter f;
    if (!set_terms(f,
                   {{"destination", &o.filter.destination}, {"state", &o.filter.state}, {"event", &o.filter.event}})) {
        return usage_error;
    }
    f.limit = 0;
    auto db = open_db(common, o.db, o.dry_run ? store::db_access::read_only : store::db_access::read_write, false);
    if (!db) {
        return 1;
    }
    const auto fail = [](const std::string& why) {
        std::fprintf(stderr, "cwhook: %s\n", why.c_str());
        return 1;
    };
    if (o.dry_run || (ids.empty() && !o.yes)) {
        auto n = db->retry_deliveries(ids, f, true);
        if (!n) {
            return fail(n.error());
        }
        if (o.dry_run) {
            out(fmt::format("{} {} will be retried\n", *n, deliveries_word(*n)));
            return flush_stdout();
        }
        if (*n > 0) {
            if (isatty(STDIN_FILENO) == 0) {
                std::fprintf(stderr, "cwhook: %lld %s would be retried; give --yes to retry them without asking\n",
                             static_cast<long long>(*n), deliveries_word(*n).c_str());
                return usage_error;
            }
            if (!confirmed(*n)) {
                std::fprintf(stderr, "cwhook: nothing retried\n");
                return 1;
            }
        }
    }
    auto n = db->retry_deliveries(ids, f, false);
    if (!n) {
        return fail(n.error());
    }
    out(fmt::format("retried {}\n", *n));
    return flush_stdout();
}

// ---- destinations -----------------------------------------------------------------------

struct destinations_list_options {
    db_options db;
    bool json = false;
    bool jsonl = false;
};

int run_destinations_list(const common_options& common, const destinations_list_options& o)
{
    const auto now = now_us();
    return list_rows(
        common, o.db, [](store::event_db& db) { return db.destinations(); }, o.json, o.jsonl,
        [now](const store::destination_status& s) { return events::destination_json(s, now); },
        [now](const std::vector<store::destination_status>& rows) { return events::destinations_table(rows, now); });
}

struct pause_options {
    db_options db;
    std::string name;
    std::string reason;
};

// "a, b" of the destinations the database knows, for an error about another name.
std::string known_names(store::event_db& db)
{
    auto all = db.destinations();
    if (!all || all->empty()) {
        return "none yet: the daemon records the configured ones when it starts";
    }
    std::string names;
    for (const auto& s : *all) {
        names += names.empty() ? s.name : ", " + s.name;
    }
    return names;
}

int run_set_paused(const common_options& common, const pause_options& o, bool paused)
{
    auto db = open_db(common, o.db, store::db_access::read_write, false);
    if (!db) {
        return 1;
    }
    auto known = db->set_destination_paused(o.name, paused, o.reason, now_us());
    if (!known) {
        std::fprintf(stderr, "cwhook: %s\n", known.error().c_str());
        return 1;
    }
    if (!*known) {
        std::fprintf(stderr, "cwhook: NAME: \"%s\": no such destination (known: %s)\n", o.name.c_str(),
                     known_names(*db).c_str());
        return 1;
    }
    out(fmt::format("{} {}\n", paused ? "paused" : "resumed", o.name));
    return flush_stdout();
}

struct test_options {
    std::string name;
};

boost::asio::awaitable<void> ping_into(client::https_client* client, forward::destination d, forward::ping_result* out)
{
    *out = co_await forward::ping(*client, std::move(d), now_us());
}

// The destination as the configuration gives it (the database knows no URLs or secrets),
// sent from here: what this host's network and forward.ca_file make of it.
int run_test(const common_options& common, const test_options& o)
{
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
        return 1;
    }
    const auto& all = cfg->app.destinations;
    const auto it = std::find_if(all.begin(), all.end(), [&o](const auto& d) { return d.name == o.name; });
    if (it == all.end()) {
        std::string names;
        for (const auto& d : all) {
            names += names.empty() ? d.name : ", " + d.name;
        }
        std::fprintf(stderr, "cwhook: NAME: \"%s\": no such destination in the configuration (configured: %s)\n",
                     o.name.c_str(), names.empty() ? "none" : names.c_str());
        return 1;
    }
    auto tls = crypto::make_client_context(cfg->app.forward.ca_file);
    if (!tls) {
        std::fprintf(stderr, "cwhook: forward.ca_file: %s\n", tls.error().message.c_str());
        return 1;
    }
    boost::asio::io_context ioc(1);
    client::https_client client(ioc.get_executor(), *tls);
    forward::ping_result r;
    boost::asio::co_spawn(ioc, ping_into(&client, *it, &r), [](const std::exception_ptr& e) {
        if (e) {
            std::rethrow_exception(e); // out of ioc.run(): a crash with its reason
        }
    });
    ioc.run();
    const double ms = static_cast<double>(r.latency_us) / 1000.0;
    if (r.ok()) {
        out(fmt::format("{}: {} in {:.1f} ms\n", o.name, r.http_status, ms));
    } else {
        out(fmt::format("{}: failed in {:.1f} ms: {}\n", o.name, ms, r.error));
    }
    const int flushed = flush_stdout();
    return r.ok() && flushed == 0 ? 0 : 1;
}

} // namespace

command add_deliveries(CLI::App& app, common_options& common)
{
    auto* group = app.add_subcommand("deliveries", "Inspect and retry the deliveries of events to destinations");
    group->require_subcommand(1);
    auto leaves = std::make_shared<std::vector<leaf>>();
    {
        auto o = std::make_shared<list_options>();
        auto* cmd = group->add_subcommand("list", "List deliveries, newest first");
        add_db_options(*cmd, common, o->db);
        add_delivery_filter_options(*cmd, o->filter);
        cmd->add_option("--limit", o->limit, "At most this many (default 50)")->type_name("N");
        cmd->add_option("--before", o->before, "Only deliveries with a lower id (the next page)")->type_name("ID");
        auto* json = cmd->add_flag("--json", o->json, "One JSON array");
        cmd->add_flag("--jsonl", o->jsonl, "One JSON object per line")->excludes(json);
        leaves->push_back({cmd, [&common, o] { return run_list(common, *o); }});
    }
    {
        auto o = std::make_shared<show_options>();
        auto* cmd = group->add_subcommand("show", "One delivery with its attempts");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("ID", o->id, "Delivery id")->required();
        cmd->add_flag("--json", o->json, "As JSON");
        leaves->push_back({cmd, [&common, o] { return run_show(common, *o); }});
    }
    {
        auto o = std::make_shared<retry_options>();
        auto* cmd = group->add_subcommand(
            "retry", "Make deliveries pending again, due at once with a fresh retry schedule (pending ones are left)");
        add_db_options(*cmd, common, o->db);
        auto* ids = cmd->add_option("IDS", o->ids, "Delivery ids (or select with --destination, --state, --event)");
        add_delivery_filter_options(*cmd, o->filter);
        cmd->add_flag("--all", o->all, "Every delivery that is not pending")->excludes(ids);
        cmd->add_flag("--dry-run", o->dry_run, "Only count what would be retried");
        cmd->add_flag("--yes", o->yes, "Retry a selection without asking");
        leaves->push_back({cmd, [&common, o] { return run_retry(common, *o); }});
    }
    return {group, [leaves] { return run_parsed(*leaves); }};
}

command add_destinations(CLI::App& app, common_options& common)
{
    auto* group = app.add_subcommand("destinations", "Where events are forwarded: state, pause, resume and test");
    group->require_subcommand(1);
    auto leaves = std::make_shared<std::vector<leaf>>();
    {
        auto o = std::make_shared<destinations_list_options>();
        auto* cmd = group->add_subcommand("list", "Every destination the database knows, with its deliveries");
        add_db_options(*cmd, common, o->db);
        auto* json = cmd->add_flag("--json", o->json, "One JSON array");
        cmd->add_flag("--jsonl", o->jsonl, "One JSON object per line")->excludes(json);
        leaves->push_back({cmd, [&common, o] { return run_destinations_list(common, *o); }});
    }
    {
        auto o = std::make_shared<pause_options>();
        auto* cmd = group->add_subcommand("pause", "Send nothing more to a destination until it is resumed");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("NAME", o->name, "Destination name")->required();
        cmd->add_option("--reason", o->reason, "Why (shown by destinations list)")->type_name("TEXT");
        leaves->push_back({cmd, [&common, o] { return run_set_paused(common, *o, true); }});
    }
    {
        auto o = std::make_shared<pause_options>();
        auto* cmd = group->add_subcommand("resume", "Send to a paused destination again");
        add_db_options(*cmd, common, o->db);
        cmd->add_option("NAME", o->name, "Destination name")->required();
        leaves->push_back({cmd, [&common, o] { return run_set_paused(common, *o, false); }});
    }
    {
        auto o = std::make_shared<test_options>();
        auto* cmd =
            group->add_subcommand("test", "Send a signed ping to a configured destination; exit 0 on a 2xx answer");
        add_config_option(*cmd, common);
        cmd->add_option("NAME", o->name, "Destination name (of [[destinations]])")->required();
        leaves->push_back({cmd, [&common, o] { return run_test(common, *o); }});
    }
    return {group, [leaves] { return run_parsed(*leaves); }};
}

} // namespace cwhook::daemon
