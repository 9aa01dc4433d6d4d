// Command groups of the cwhook binary. Each adds its subcommand to the CLI and returns the
// exit code when it runs (0 success, 1 failure, 2 usage error).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

namespace cwhook::daemon {

// The --config option shared by every subcommand; CWHOOK_CONFIG is its default.
struct common_options {
    std::optional<std::string> config_file;
};

void add_config_option(CLI::App& cmd, common_options& common);

struct command {
    CLI::App* cli = nullptr;
    std::function<int()> run;
};

command add_serve(CLI::App& app, common_options& common);
command add_check_config(CLI::App& app, common_options& common);
command add_events(CLI::App& app, common_options& common);
command add_rejections(CLI::App& app, common_options& common);
command add_deliveries(CLI::App& app, common_options& common);
command add_destinations(CLI::App& app, common_options& common);
command add_healthcheck(CLI::App& app, common_options& common);
command add_emulate(CLI::App& app, common_options& common);
command add_subscriptions(CLI::App& app, common_options& common);
command add_admin(CLI::App& app, common_options& common);
command add_catch_up(CLI::App& app, common_options& common);

// The configuration file to read: --config, else $CWHOOK_CONFIG, else none (defaults).
std::optional<std::string> config_path(const common_options& common);

} // namespace cwhook::daemon
