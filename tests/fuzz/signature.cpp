// Fuzz target: the x-content-signature header decoder and the strict base64 decoder under
// it. Decoding is canonical (each byte string has exactly one accepted encoding), so every
// accepted text must re-encode to itself; and a signature made with sign() must verify.
#include "crypto/signature.hpp"
#include "crypto/digest.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

namespace {

void require(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "signature fuzz: %s\n", what);
        std::abort();
    }
}

std::span<const std::uint8_t> bytes_of(std::string_view s)
{
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace cwhook::crypto;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    if (const auto decoded = base64_decode(input)) {
        require(base64_encode(bytes_of(*decoded)) == input, "base64_decode accepted a non-canonical text");
    }
    const auto encoded = base64_encode(bytes_of(input));
    const auto back = base64_decode(encoded);
    require(back && *back == input, "base64 did not round-trip");

    if (const auto signature = decode_signature_header(input)) {
        const auto text = base64_encode(*signature);
        require(text.size() == 44, "a signature does not encode to 44 characters");
        // Only header whitespace may surround the accepted text.
        const auto at = input.find(text);
        require(at != std::string_view::npos, "the decoded signature is not in the header value");
        const auto around = std::string(input.substr(0, at)) + std::string(input.substr(at + text.size()));
        require(around.find_first_not_of(" \t\r\n") == std::string::npos, "a signature was read around other bytes");
    }

    // The input split in two: a signing key and a body.
    const auto key = input.substr(0, input.size() / 2);
    const auto body = input.substr(input.size() / 2);
    const auto header = decode_signature_header(sign(key, body));
    require(header.has_value(), "sign() made a header that does not decode");
    require(verify_signature(digest_signing_key(key), body, *header), "a signature made by sign() does not verify");
    if (!body.empty()) {
        require(!verify_signature(digest_signing_key(key), body.substr(1), *header),
                "a signature verified another body");
    }
    return 0;
}
