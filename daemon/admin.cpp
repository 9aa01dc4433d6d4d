// `cwhook admin token`: the admin API's bearer token, for scripts and the operator's curl
// (curl -H "Authorization: Bearer $(cwhook admin token)" ...).
#include "commands.hpp"

#include "callback/admin_token.hpp"
#include "config/config.hpp"

#include <cstdio>

namespace cwhook::daemon {

namespace {

int print_token(const common_options& common)
{
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
        return 1;
    }
    std::string token = cfg->app.admin.token;
    if (token.empty()) {
        auto generated = callback::read_admin_token(callback::admin_token_file(cfg->app.storage.path));
        if (!generated) {
            std::fprintf(stderr, "cwhook: %s\n", generated.error().c_str());
            return 1;
        }
        token = std::move(*generated);
    }
    token.push_back('\n');
    if (std::fwrite(token.data(), 1, token.size(), stdout) != token.size() || std::fflush(stdout) != 0) {
        return 1;
    }
    return 0;
}

} // namespace

command add_admin(CLI::App& app, common_options& common)
{
    auto* group = app.add_subcommand("admin", "The admin API's credentials");
    group->require_subcommand(1);
    auto* token = group->add_subcommand(
        "token", "Print the admin API's bearer token: admin.token if set, else the one the daemon generated");
    add_config_option(*token, common);
    return {group, [&common] { return print_token(common); }};
}

} // namespace cwhook::daemon
