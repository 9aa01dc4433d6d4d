// RFC 8288 (5988) Link headers as Manage sends them for paging:
//   <https://host/v2025_1/apis/3.0/system/callbacks?pageSize=50&page=2>; rel="next", <...>; rel="last"
// Pure, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::manage {

struct link {
    std::string url;
    std::string rel; // as given (may hold several space-separated relations)
};

// Every <url>; params entry; malformed entries are skipped (never throws).
std::vector<link> parse_link_header(std::string_view value);

// The URL of the first link whose rel includes `rel` (case-insensitive).
std::optional<std::string> find_link(std::string_view header, std::string_view rel);

// Origin-form request target ("/path?query") of an absolute or absolute-path URL; nullopt for
// anything else (relative references, other schemes).
std::optional<std::string> link_target(std::string_view url);

} // namespace cwhook::manage
