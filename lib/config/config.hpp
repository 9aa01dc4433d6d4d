// Configuration: a TOML file (optional) + CWHOOK_<SECTION>_<KEY> environment overrides ->
// immutable, validated settings. The only module that reads configuration files.
// Errors are one line naming the key, the value and why: "server.tls_cert: /x/y.pem: no such file".
// A reload (SIGHUP) applies a changed key either at once or only after a restart; every key is
// marked one or the other in the key table, and plan_reload() derives both lists from it.
// Pure functions (the environment is passed in), thread-safe.
#pragma once

#include "callback/settings.hpp"
#include "core/log.hpp"

#include <boost/system/result.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

namespace cwhook::config {

struct log_settings {
    log::level level = log::level::info;
    log::format format = log::format::text;
};

struct settings {
    callback::app_settings app;
    log_settings log;
};

// What a reload does with a changed value. Every key of the table is marked live or restart;
// unclassified is only the mark's unset state (a table row without one is a bug).
enum class reload_effect { unclassified, live, restart };

struct key_info {
    std::string name; // "server.listen"; "subscriptions", "destinations" for the arrays of tables
    reload_effect effect = reload_effect::unclassified;
};

// Every configuration key in table order, then "subscriptions" and "destinations".
std::vector<key_info> keys();

struct reload_plan {
    std::vector<std::string> live;     // changed keys that take effect now
    std::vector<std::string> restart;  // changed keys whose new value waits for a restart
    // The configuration in force after the reload: `next`, except that each key in `restart`
    // keeps its running value (and the runtime-only inherited sockets stay the running ones).
    settings in_force;
};

// A reload from `running` (the configuration in force) to `next` (just loaded and valid).
// Each changed key is named in exactly one of the two lists.
reload_plan plan_reload(const settings& running, const settings& next);

using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;

// Reads the process environment.
env_lookup process_env();

// file: nullopt = embedded defaults only. Unknown keys and sections are errors.
boost::system::result<settings, std::string> load(const std::optional<std::string>& file, const env_lookup& env);

// The same as load() for TOML text already in memory (syntax errors name the source "<text>").
boost::system::result<settings, std::string> load_text(std::string_view toml, const env_lookup& env);

// The effective configuration as TOML (every key, secrets shown as "<redacted>").
std::string render(const settings& s);

// Valid but probably not what the operator wants (one line each), e.g. no Manage company
// configured, so every callback is refused.
std::vector<std::string> warnings(const settings& s);

} // namespace cwhook::config
