// Configuration: a TOML file (optional) + CWHOOK_<SECTION>_<KEY> environment overrides ->
// immutable, validated settings. The only module that reads configuration files.
// Errors are one line naming the key, the value and why: "server.tls_cert: /x/y.pem: no such file".
// Pure functions (the environment is passed in), thread-safe.
#pragma once

#include "callback/app.hpp"
#include "core/log.hpp"

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
