#include "json/signing_key.hpp"

#include "json/detail/document.hpp"

namespace cwhook::json {
namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

} // namespace

std::optional<std::string> parse_signing_key(std::string_view body)
{
    // The key server's Content-Type is not reliably JSON and some servers prepend a BOM.
    if (body.substr(0, utf8_bom.size()) == utf8_bom) {
        body.remove_prefix(utf8_bom.size());
    }
    // No UTF-8 leniency here: a key read with bytes replaced would be a wrong key that fails
    // every verification, which is worse than reporting the key as unavailable.
    const detail::document doc = detail::parse_document(body, false);
    if (doc.error != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view key;
    if (doc.root["signing_key"].get_string().get(key) != simdjson::SUCCESS || key.empty()) {
        return std::nullopt;
    }
    return std::string{key};
}

} // namespace cwhook::json
