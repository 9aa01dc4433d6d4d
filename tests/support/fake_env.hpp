// An environment for config::load and config::resolve made of a map, so tests never touch the
// process's own variables.
#pragma once

#include "config/config.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::test {

inline config::env_lookup fake_env(std::map<std::string, std::string> vars = {})
{
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        const auto it = vars.find(std::string(name));
        if (it == vars.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

} // namespace cwhook::test
