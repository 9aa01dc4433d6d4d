// The web console's static files (ui/ in the source tree), compiled into the binary by
// cmake/embed_files.cmake. Immutable; thread-safe.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace cwhook::callback::detail {

struct ui_asset {
    std::string_view path; // relative to ui/, e.g. "js/main.js"
    const unsigned char* data;
    std::size_t size;
};

// Every file, in the order CMake listed them.
std::span<const ui_asset> ui_assets() noexcept;

} // namespace cwhook::callback::detail
