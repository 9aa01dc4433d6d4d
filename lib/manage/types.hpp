// The callback types and the levels each accepts (docs/PROTOCOL.md section 5), and validation of
// a desired subscription against them. Pure, thread-safe.
#pragma once

#include "manage/settings.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::manage {

struct callback_type {
    std::string_view type;
    std::vector<std::string_view> levels;
};

// In docs/PROTOCOL.md's order.
std::span<const callback_type> callback_types();

// nullopt when known; else why, naming what is accepted.
std::optional<std::string> check_type_level(std::string_view type, std::string_view level);

// Type and level (lower-cased in place), owner => objectId 1, other levels need a positive
// objectId, url is http(s), description at most 100 characters. Returns why not, or nullopt.
std::optional<std::string> normalize(subscription& s, bool object_id_given);

// True when the URL does not end in "recordId=" (Manage appends the record id).
bool lacks_record_id(std::string_view url);


} // namespace cwhook::manage
