// Fuzz target: the callback body parser and the key server's answer parser, both fed bytes
// straight from the network. Besides "no crash, no sanitizer report", it checks that
// json_quoted() and the parsers agree: any text quoted into a payload field reads back as
// itself (valid UTF-8) or as itself with each offending byte replaced by '?' (invalid UTF-8).
#include "json/payload.hpp"

#include "core/json_string.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace {

void require(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "payload fuzz: %s\n", what);
        std::abort();
    }
}

void check_quote_round_trip(std::string_view text)
{
    using namespace cwhook::json;
    const std::string body = R"({"Action":)" + cwhook::json_quoted(text) +
                             R"(,"Type":"ticket","ID":1,"Metadata":{"key_url":"https://na.myconnectwise.net/"}})";
    const auto parsed = parse_payload(body);
    require(std::holds_alternative<payload>(parsed), "a quoted string made the payload invalid");
    const auto& p = std::get<payload>(parsed);
    require(p.action.size() == text.size(), "lenient UTF-8 reading changed a string's length");
    if (p.utf8_valid) {
        require(p.action == text, "a quoted string did not read back as itself");
    }

    // The key parser is strict about UTF-8 and refuses an empty key.
    const auto key = parse_signing_key(R"({"signing_key":)" + cwhook::json_quoted(text) + "}");
    if (p.utf8_valid && !text.empty()) {
        require(key && *key == text, "a quoted signing key did not read back as itself");
    } else {
        require(!key, "an empty or non-UTF-8 signing key was accepted");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const auto parsed = cwhook::json::parse_payload(input);
    if (const auto* error = std::get_if<cwhook::json::parse_error>(&parsed)) {
        require(!error->detail.empty(), "a refused payload has no detail");
    }
    (void)cwhook::json::parse_signing_key(input);

    check_quote_round_trip(input);
    return 0;
}
