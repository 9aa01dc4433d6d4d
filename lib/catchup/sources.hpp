// Where each callback Type's records live in Manage's REST API: the collection catch-up asks
// "what changed since?". Pure data, thread-safe.
#pragma once

#include "manage/settings.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::catchup {

struct source {
    std::string_view type;       // callback Type, lower case
    std::string_view collection; // REST path under /apis/3.0/
    bool in_guide;               // named in ConnectWise's REST guide; otherwise an assumption
};

std::span<const source> sources();
std::optional<source> find_source(std::string_view type);

// The types catch-up reads: `configured` (catch_up.types) when not empty, else the types of
// the subscriptions that have a collection here, each once.
std::vector<std::string> types_to_read(const std::vector<std::string>& configured,
                                       std::span<const manage::subscription> subscriptions);

} // namespace cwhook::catchup
