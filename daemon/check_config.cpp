#include "commands.hpp"

#include "config/config.hpp"

#include <cstdio>
#include <cstdlib>

namespace cwhook::daemon {

void add_config_option(CLI::App& cmd, common_options& common)
{
    cmd.add_option_function<std::string>(
           "-c,--config", [&common](const std::string& v) { common.config_file = v; },
           "TOML configuration file (default: $CWHOOK_CONFIG, else embedded defaults)")
        ->type_name("FILE");
}

std::optional<std::string> config_path(const common_options& common)
{
    if (common.config_file) {
        return common.config_file;
    }
    if (const char* env = std::getenv("CWHOOK_CONFIG"); env != nullptr && *env != '\0') {
        return std::string(env);
    }
    return std::nullopt;
}

command add_check_config(CLI::App& app, common_options& common)
{
    auto* cmd = app.add_subcommand("check-config",
                                   "Validate the configuration and print the effective settings (secrets redacted)");
    add_config_option(*cmd, common);
    return {cmd, [&common] {
        auto cfg = config::load(config_path(common), config::process_env());
        if (!cfg) {
            std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
            return 1;
        }
        const auto text = config::render(*cfg);
        std::fwrite(text.data(), 1, text.size(), stdout);
        for (const auto& w : config::warnings(*cfg)) {
            std::fprintf(stderr, "cwhook: warning: %s\n", w.c_str());
        }
        return 0;
    }};
}

} // namespace cwhook::daemon
