// Fuzz target: the TOML configuration loader on in-memory text with an empty environment.
// A configuration it accepts must survive the check-config round trip: render() output loads
// again (unless a checked secret in it is redacted) and renders the same.
#include "config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace {

void require(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "config fuzz: %s\n", what);
        std::abort();
    }
}

std::optional<std::string> no_environment(std::string_view)
{
    return std::nullopt;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace cwhook::config;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const env_lookup env = no_environment;

    const auto loaded = load_text(text, env);
    if (!loaded) {
        require(!loaded.error().empty(), "a refusal without a reason");
        require(loaded.error().find('\n') == std::string::npos, "an error message spans several lines");
        return 0;
    }
    const auto rendered = render(*loaded);
    const auto again = load_text(rendered, env);
    // "<redacted>" is not a valid value of a secret the loader checks (storage.url, a
    // destination's whsec_ secret): such a rendering need not load again.
    if (!again && rendered.find("\"<redacted>\"") != std::string::npos) {
        return 0;
    }
    if (!again) {
        std::fprintf(stderr, "%s\n%s\n", rendered.c_str(), again.error().c_str());
    }
    require(again.has_value(), "the rendered configuration does not load");
    require(render(*again) == rendered, "the rendered configuration does not render the same");
    return 0;
}
