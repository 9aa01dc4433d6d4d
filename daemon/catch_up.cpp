// `cwhook catch-up run` and `cwhook catch-up status`: catch-up by hand, and where it stands.
// `run` uses the configuration's [manage] credentials and [storage] (its own connection and
// writer, usable while the daemon runs; a type a daemon is reading at that moment is reported
// busy); `status` reads the database only. Parsing and printing: the work is lib/catchup's.
#include "commands.hpp"
#include "db_command.hpp"

#include "catchup/engine.hpp"
#include "catchup/service.hpp"
#include "catchup/sources.hpp"
#include "config/config.hpp"
#include "core/json_string.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "manage/api.hpp"
#include "store/catch_up.hpp"
#include "store/event_store.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace cwhook::daemon {

namespace {

struct catch_up_options {
    db_options db;
    std::vector<std::string> types;
    std::optional<std::string> since;
    bool dry_run = false;
    bool json = false;
};

std::string time_or_dash(std::int64_t us)
{
    return us > 0 ? format_time(us, time_precision::seconds) : std::string("-");
}

std::string report_json(const catchup::type_report& r)
{
    std::string out = "{\"type\":";
    append_json_string(out, r.type);
    out += fmt::format(R"(,"examined":{},"synthesized":{},"already_seen":{},"deleted":{},"watermark_before":)",
                       r.examined, r.synthesized, r.seen, r.deleted);
    out += r.watermark_before_us > 0 ? json_quoted(format_time(r.watermark_before_us, time_precision::seconds))
                                     : std::string("null");
    out += ",\"watermark_after\":";
    out += r.watermark_after_us > 0 ? json_quoted(format_time(r.watermark_after_us, time_precision::seconds))
                                    : std::string("null");
    out += ",\"error\":";
    out += r.error.empty() ? std::string("null") : json_quoted(r.error);
    out += "}";
    return out;
}

std::string reports_table(const std::vector<catchup::type_report>& rows, bool dry_run)
{
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"TYPE", dry_run ? "EXAMINED" : "EXAMINED", dry_run ? "WOULD_SYNTHESIZE" : "SYNTHESIZED",
                     "ALREADY_SEEN", "WATERMARK_BEFORE", "WATERMARK_AFTER", "RESULT"});
    for (const auto& r : rows) {
        cells.push_back({r.type, std::to_string(r.examined), std::to_string(r.synthesized), std::to_string(r.seen),
                         time_or_dash(r.watermark_before_us), time_or_dash(r.watermark_after_us),
                         r.error.empty() ? "ok" : r.error});
    }
    return aligned(cells);
}

int run_catch_up(const common_options& common, const catch_up_options& o)
{
    for (const auto& t : o.types) {
        if (!catchup::find_source(t)) {
            std::fprintf(stderr, "cwhook: --type: \"%s\": not a type catch-up knows\n", t.c_str());
            return usage_error;
        }
    }
    std::optional<std::int64_t> since;
    if (o.since) {
        auto t = parse_time(*o.since, now_us());
        if (!t) {
            std::fprintf(stderr, "cwhook: --since: \"%s\": not a time (RFC 3339) or a duration back from now (2h)\n",
                         o.since->c_str());
            return usage_error;
        }
        since = *t;
    }
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
        return 1;
    }
    log::configure(cfg->log.level == log::level::info ? log::level::warn : cfg->log.level, cfg->log.format);
    auto types = o.types.empty() ? catchup::types_to_read(cfg->app.catch_up.types, cfg->app.subscriptions) : o.types;
    if (types.empty()) {
        std::fprintf(stderr, "cwhook: no types to catch up: set catch_up.types, declare [[subscriptions]], or "
                             "pass --type\n");
        return usage_error;
    }
    auto api = manage::blocking_api::create(cfg->app.manage);
    if (!api) {
        std::fprintf(stderr, "cwhook: %s\n", api.error().c_str());
        return 1;
    }
    auto storage = storage_settings(common, o.db);
    if (!storage) {
        return 1;
    }
    auto st = store::event_store::open(*storage);
    if (!st) {
        std::fprintf(stderr, "cwhook: cannot open the database: %s\n", st.error().c_str());
        return 1;
    }
    auto settings = cfg->app.catch_up;
    settings.types = types;
    metrics::registry metrics;
    catchup::engine eng((*api)->executor(), **st, (*api)->async(), settings, cfg->app.manage.company_id,
                        catchup::default_instance_name() + ":cli", metrics);
    catchup::run_options ro;
    ro.types = types;
    ro.since_us = since;
    ro.dry_run = o.dry_run;
    ro.trigger = "command";
    const auto reports = (*api)->run(eng.run(ro));
    (*st)->stop();
    print_rows(reports, o.json, false, report_json, [&](const auto& rows) { return reports_table(rows, o.dry_run); });
    const bool failed = std::any_of(reports.begin(), reports.end(), [](const auto& r) { return !r.error.empty(); });
    const int flushed = flush_stdout();
    return failed ? 1 : flushed;
}

int run_status(const common_options& common, const catch_up_options& o)
{
    auto db = open_db(common, o.db, store::db_access::read_only, false);
    if (!db) {
        return 1;
    }
    auto marks = db->watermarks();
    if (!marks) {
        std::fprintf(stderr, "cwhook: %s\n", marks.error().c_str());
        return 1;
    }
    auto runs = db->catch_up_runs(std::nullopt, 200);
    if (!runs) {
        std::fprintf(stderr, "cwhook: %s\n", runs.error().c_str());
        return 1;
    }
    struct row {
        store::watermark mark;
        std::optional<store::catch_up_run> last;
    };
    std::vector<row> rows;
    for (const auto& m : *marks) {
        row r{m, std::nullopt};
        for (const auto& run : *runs) { // newest first
            if (run.type == m.type && run.company == m.company) {
                r.last = run;
                break;
            }
        }
        rows.push_back(std::move(r));
    }
    const auto now = now_us();
    print_rows(
        rows, o.json, false,
        [now](const row& r) {
            std::string out = "{\"company\":";
            append_json_string(out, r.mark.company);
            out += ",\"type\":";
            append_json_string(out, r.mark.type);
            out += ",\"watermark\":";
            out += r.mark.last_updated_us > 0
                       ? json_quoted(format_time(r.mark.last_updated_us, time_precision::seconds))
                       : std::string("null");
            out += fmt::format(",\"watermark_age_s\":{}",
                               r.mark.last_updated_us > 0 ? (now - r.mark.last_updated_us) / 1'000'000 : -1);
            out += ",\"last_run\":";
            if (!r.last) {
                out += "null}";
                return out;
            }
            const auto& l = *r.last;
            out += "{\"started\":" + json_quoted(format_time(l.started_at_us, time_precision::seconds));
            out += ",\"finished\":";
            out += l.finished_at_us > 0 ? json_quoted(format_time(l.finished_at_us, time_precision::seconds))
                                        : std::string("null");
            out += ",\"trigger\":" + json_quoted(l.trigger);
            out += fmt::format(R"(,"examined":{},"synthesized":{},"already_seen":{},"deleted":{},"dry_run":{})",
                               l.examined, l.synthesized, l.seen, l.deleted, l.dry_run ? "true" : "false");
            out += ",\"error\":";
            out += l.error.empty() ? std::string("null") : json_quoted(l.error);
            out += "}}";
            return out;
        },
        [now](const std::vector<row>& rs) {
            std::vector<std::vector<std::string>> cells;
            cells.push_back(
                {"COMPANY", "TYPE", "WATERMARK", "AGE", "LAST_RUN", "TRIGGER", "EXAMINED", "SYNTHESIZED", "RESULT"});
            for (const auto& r : rs) {
                const bool has = r.mark.last_updated_us > 0;
                std::vector<std::string> c{r.mark.company, r.mark.type, time_or_dash(r.mark.last_updated_us),
                                           has ? fmt::format("{}s", (now - r.mark.last_updated_us) / 1'000'000)
                                               : std::string("-")};
                if (r.last) {
                    c.push_back(time_or_dash(r.last->started_at_us));
                    c.push_back(r.last->trigger);
                    c.push_back(std::to_string(r.last->examined));
                    c.push_back(std::to_string(r.last->synthesized + r.last->deleted));
                    c.push_back(r.last->finished_at_us == 0 ? "running or interrupted"
                                : r.last->error.empty()     ? "ok"
                                                            : r.last->error);
                } else {
                    c.insert(c.end(), {"-", "-", "-", "-", "-"});
                }
                cells.push_back(std::move(c));
            }
            return aligned(cells);
        });
    return flush_stdout();
}

} // namespace

command add_catch_up(CLI::App& app, common_options& common)
{
    auto* cmd = app.add_subcommand("catch-up", "Find changes Manage made but never delivered (its REST API)");
    cmd->require_subcommand(1);
    auto o = std::make_shared<catch_up_options>();

    auto* run = cmd->add_subcommand("run", "Read changed records and store the missed ones as synthesized events");
    add_db_options(*run, common, o->db);
    run->add_option("--type", o->types, "Only this type (repeatable; default: catch_up.types or the subscriptions')")
        ->type_name("TYPE");
    run->add_option("--since", o->since, "Look back to this time (RFC 3339) or this long ago (2h), not the watermark")
        ->type_name("TIME");
    run->add_flag("--dry-run", o->dry_run, "Count what would be synthesized; store nothing, move no watermark");
    run->add_flag("--json", o->json, "Print JSON instead of a table");

    auto* status = cmd->add_subcommand("status", "Print each type's watermark and last run");
    add_db_options(*status, common, o->db);
    status->add_flag("--json", o->json, "Print JSON instead of a table");

    return {cmd, [&common, o, run, status] {
                if (run->parsed()) {
                    return run_catch_up(common, *o);
                }
                if (status->parsed()) {
                    return run_status(common, *o);
                }
                return usage_error;
            }};
}

} // namespace cwhook::daemon
