// `cwhook subscriptions ...`: Manage's system/callbacks from the command line, and `sync`,
// which makes Manage hold the [[subscriptions]] of the configuration. Human tables on stdout
// by default, --json for scripts; messages and warnings on stderr. Exit codes: 0 success,
// 1 failure (configuration, Manage refused, cannot reach it), 2 usage error (bad type, level
// or id, named in the message), all decided before any request is sent.
#include "commands.hpp"

#include "config/config.hpp"
#include "core/text.hpp"
#include "json/value.hpp"
#include "manage/api.hpp"
#include "manage/sync.hpp"
#include "manage/types.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::daemon {

namespace {

using json::value;

struct subs_options {
    bool json = false;
    std::string type_filter;
    std::int64_t id = 0;
    manage::subscription create;
    std::optional<std::int64_t> object_id;
    bool inactive = false;
    bool dry_run = false;
    bool prune = false;
};

void out(std::string_view text)
{
    std::fwrite(text.data(), 1, text.size(), stdout);
}

void err(std::string_view text)
{
    std::fprintf(stderr, "cwhook: %.*s\n", static_cast<int>(text.size()), text.data());
}

std::vector<std::string> callback_row(const manage::callback& c)
{
    return {std::to_string(c.id),      c.type,       c.level, std::to_string(c.object_id), c.url,
            c.inactive ? "no" : "yes", c.description};
}

std::vector<std::string> callback_header()
{
    return {"ID", "TYPE", "LEVEL", "OBJECTID", "URL", "ACTIVE", "DESCRIPTION"};
}

std::string show_text(const manage::callback& c)
{
    std::vector<std::vector<std::string>> rows{
        {"id:", std::to_string(c.id)},
        {"type:", c.type},
        {"level:", c.level},
        {"objectId:", std::to_string(c.object_id)},
        {"url:", c.url},
        {"active:", c.inactive ? "no" : "yes"},
        {"description:", c.description},
        {"memberId:", std::to_string(c.member_id)},
        {"payloadVersion:", c.payload_version},
        {"selfSuppressed:", c.self_suppressed ? "yes" : "no"},
        {"connectWiseID:", c.connectwise_id},
        {"lastUpdated:", c.last_updated},
        {"updatedBy:", c.updated_by},
    };
    return aligned(rows);
}

void warn_record_id(std::string_view url)
{
    if (manage::lacks_record_id(url)) {
        std::fprintf(stderr,
                     "cwhook: warning: url %.*s does not end in recordId= (Manage appends the record id to the url "
                     "as given)\n",
                     static_cast<int>(url.size()), url.data());
    }
}

// Loads the configuration and opens the API; nullptr after printing why (exit 1).
std::unique_ptr<manage::blocking_api> open_api(const common_options& common, config::settings* cfg_out = nullptr)
{
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        err(cfg.error());
        return nullptr;
    }
    // The table is the report; per-change info lines would repeat it (warnings still show).
    log::configure(cfg->log.level == log::level::info ? log::level::warn : cfg->log.level, cfg->log.format);
    auto api = manage::blocking_api::create(cfg->app.manage);
    if (!api) {
        err(api.error());
        return nullptr;
    }
    if (cfg_out != nullptr) {
        *cfg_out = std::move(*cfg);
    }
    return std::move(*api);
}

int fail(const manage::failure& f)
{
    err(f.message);
    return 1;
}

int run_list(const common_options& common, const subs_options& o)
{
    if (!o.type_filter.empty()) {
        bool known = false;
        for (const auto& t : manage::callback_types()) {
            known = known || t.type == lower_ascii(o.type_filter);
        }
        if (!known) {
            err(fmt::format("--type \"{}\": {}", o.type_filter, *manage::check_type_level(o.type_filter, "owner")));
            return 2;
        }
    }
    auto api = open_api(common);
    if (!api) {
        return 1;
    }
    manage::conditions where;
    if (!o.type_filter.empty()) {
        where.where("type", manage::op::eq, lower_ascii(o.type_filter));
    }
    auto list = api->run(api->async().list_callbacks(where));
    if (!list) {
        return fail(list.error());
    }
    if (o.json) {
        out(manage::to_json(*list) + "\n");
        return 0;
    }
    std::vector<std::vector<std::string>> rows{callback_header()};
    for (const auto& c : *list) {
        rows.push_back(callback_row(c));
    }
    out(aligned(rows));
    return 0;
}

int print_one(const manage::callback& c, bool as_json)
{
    out(as_json ? manage::to_json(c) + "\n" : show_text(c));
    return 0;
}

int run_show(const common_options& common, const subs_options& o)
{
    auto api = open_api(common);
    if (!api) {
        return 1;
    }
    auto c = api->run(api->async().get_callback(o.id));
    if (!c) {
        return fail(c.error());
    }
    return print_one(*c, o.json);
}

int run_create(const common_options& common, const subs_options& o)
{
    manage::subscription s = o.create;
    if (o.object_id) {
        s.object_id = *o.object_id;
    }
    if (auto why = manage::normalize(s, o.object_id.has_value())) {
        err(*why);
        return 2;
    }
    warn_record_id(s.url);
    auto api = open_api(common);
    if (!api) {
        return 1;
    }
    auto c = api->run(api->async().create_callback(s, o.inactive));
    if (!c) {
        return fail(c.error());
    }
    return print_one(*c, o.json);
}

int run_delete(const common_options& common, const subs_options& o)
{
    auto api = open_api(common);
    if (!api) {
        return 1;
    }
    auto r = api->run(api->async().delete_callback(o.id));
    if (!r) {
        return fail(r.error());
    }
    if (o.json) {
        out(json::serialize(value::make_object({{"deleted", value::make_int(o.id)}})) + "\n");
    } else {
        out(fmt::format("deleted {}\n", o.id));
    }
    return 0;
}

int run_set_active(const common_options& common, const subs_options& o, bool active)
{
    auto api = open_api(common);
    if (!api) {
        return 1;
    }
    const std::optional<std::string> no_description;
    auto c = api->run(api->async().patch_callback(o.id, !active, no_description));
    if (!c) {
        return fail(c.error());
    }
    return print_one(*c, o.json);
}

int run_types(const subs_options& o)
{
    if (o.json) {
        std::vector<value> items;
        for (const auto& t : manage::callback_types()) {
            std::vector<value> levels;
            for (const auto l : t.levels) {
                levels.push_back(value::make_string(std::string(l)));
            }
            items.push_back(value::make_object(
                {{"type", value::make_string(std::string(t.type))}, {"levels", value::make_array(std::move(levels))}}));
        }
        out(json::serialize(value::make_array(std::move(items))) + "\n");
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"TYPE", "LEVELS"}};
    for (const auto& t : manage::callback_types()) {
        rows.push_back({std::string(t.type), fmt::format("{}", fmt::join(t.levels, ", "))});
    }
    out(aligned(rows));
    out("Level owner takes objectId 1; every other level takes the id of that record (board, status, ...).\n");
    return 0;
}

int run_sync(const common_options& common, const subs_options& o)
{
    config::settings cfg;
    auto api = open_api(common, &cfg);
    if (!api) {
        return 1;
    }
    const auto& desired = cfg.app.subscriptions;
    if (desired.empty()) {
        err("no [[subscriptions]] in the configuration: nothing to sync");
        return 1;
    }
    for (const auto& d : desired) {
        warn_record_id(d.url);
    }
    const manage::conditions everything;
    auto actual = api->run(api->async().list_callbacks(everything));
    if (!actual) {
        return fail(actual.error());
    }
    const auto plan = manage::make_plan(desired, *actual, o.prune);
    std::vector<manage::applied> results;
    if (!o.dry_run && plan.has_changes()) {
        results = api->run(manage::apply_plan(api->async(), plan));
    }
    bool ok = true;
    for (const auto& r : results) {
        ok = ok && r.ok;
    }
    const auto rows = manage::report_rows(plan, results);

    if (o.json) {
        out(json::serialize(manage::report_json(rows, o.dry_run, o.prune)) + "\n");
        return ok ? 0 : 1;
    }

    std::vector<std::vector<std::string>> cells{{"ACTION", "ID", "TYPE", "LEVEL", "OBJECTID", "URL", "DESCRIPTION"}};
    if (!results.empty()) {
        cells.front().push_back("RESULT");
    }
    for (const auto& r : rows) {
        std::vector<std::string> row{
            r.label,      r.id != 0 ? std::to_string(r.id) : "-", r.type, r.level, std::to_string(r.object_id), r.url,
            r.description};
        if (!results.empty()) {
            row.push_back(r.result != nullptr ? r.result->message : "");
        }
        cells.push_back(std::move(row));
    }
    out(aligned(cells));
    out(fmt::format("{}: {} create, {} update, {} re-enable, {} delete{}, {} unchanged\n",
                    o.dry_run ? "plan (dry run, nothing changed)" : (plan.has_changes() ? "applied" : "in sync"),
                    plan.count(manage::action::create), plan.count(manage::action::update),
                    plan.count(manage::action::reenable), plan.count(manage::action::remove, true),
                    o.prune ? std::string()
                            : fmt::format(" ({} more with --prune)", plan.count(manage::action::remove)),
                    plan.count(manage::action::unchanged)));
    return ok ? 0 : 1;
}

} // namespace

command add_subscriptions(CLI::App& app, common_options& common)
{
    auto* cmd = app.add_subcommand("subscriptions", "Manage's callback subscriptions (system/callbacks)");
    cmd->require_subcommand(1);
    auto o = std::make_shared<subs_options>();

    const auto with_common = [&common, o](CLI::App* sub) {
        add_config_option(*sub, common);
        sub->add_flag("--json", o->json, "Print JSON instead of a table");
        return sub;
    };
    const auto id_arg = [o](CLI::App* sub) {
        sub->add_option("ID", o->id, "Callback id")->required()->check(CLI::PositiveNumber);
    };

    auto* list = with_common(cmd->add_subcommand("list", "List the callbacks Manage holds"));
    list->add_option("--type", o->type_filter, "Only this type (ticket, company, ...)");

    auto* show = with_common(cmd->add_subcommand("show", "Show one callback"));
    id_arg(show);

    auto* create = with_common(cmd->add_subcommand("create", "Register a callback"));
    create->add_option("--type", o->create.type, "Record type (see `subscriptions types`)")->required();
    create->add_option("--level", o->create.level, "Level (owner, board, status, ...)")->required();
    create->add_option_function<std::int64_t>(
        "--object-id", [o](const std::int64_t& v) { o->object_id = v; },
        "Id of the level's record (level owner: 1, the default)");
    create->add_option("--url", o->create.url, "Where Manage posts; should end in ?recordId=")->required();
    create->add_option("--description", o->create.description, "Label (at most 100 characters)");
    create->add_flag("--inactive", o->inactive, "Create it disabled");

    auto* del = with_common(cmd->add_subcommand("delete", "Delete a callback"));
    id_arg(del);
    auto* enable = with_common(cmd->add_subcommand("enable", "Re-enable a callback (inactiveFlag = false)"));
    id_arg(enable);
    auto* disable = with_common(cmd->add_subcommand("disable", "Disable a callback (inactiveFlag = true)"));
    id_arg(disable);
    auto* types = with_common(cmd->add_subcommand("types", "Print the callback types and their levels"));

    auto* sync = with_common(
        cmd->add_subcommand("sync", "Make Manage hold the configuration's [[subscriptions]] (prints the plan)"));
    sync->add_flag("--dry-run", o->dry_run, "Print the plan, change nothing");
    sync->add_flag("--prune", o->prune,
                   "Also delete callbacks pointing at this receiver that the configuration does not list");

    return {cmd, [&common, o, list, show, create, del, enable, disable, types, sync] {
                if (list->parsed()) {
                    return run_list(common, *o);
                }
                if (show->parsed()) {
                    return run_show(common, *o);
                }
                if (create->parsed()) {
                    return run_create(common, *o);
                }
                if (del->parsed()) {
                    return run_delete(common, *o);
                }
                if (enable->parsed()) {
                    return run_set_active(common, *o, true);
                }
                if (disable->parsed()) {
                    return run_set_active(common, *o, false);
                }
                if (types->parsed()) {
                    return run_types(*o);
                }
                if (sync->parsed()) {
                    return run_sync(common, *o);
                }
                return 2;
            }};
}

} // namespace cwhook::daemon
