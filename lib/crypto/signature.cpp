#include "crypto/signature.hpp"

#include <cstring>

namespace cwhook::crypto {
namespace {

// Optional whitespace around a field value (RFC 9110 section 5.5); CR/LF too, in case a
// proxy or a test tool leaves a line ending behind.
constexpr std::string_view header_whitespace = " \t\r\n";

std::string_view trim(std::string_view value) noexcept
{
    const auto first = value.find_first_not_of(header_whitespace);
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = value.find_last_not_of(header_whitespace);
    return value.substr(first, last - first + 1);
}

} // namespace

key_digest digest_signing_key(std::string_view signing_key)
{
    // Manage keys the HMAC with SHA-256 of the key text, not with the key itself.
    return sha256(signing_key);
}

std::optional<digest256> decode_signature_header(std::string_view value)
{
    const auto decoded = base64_decode(trim(value));
    if (!decoded || decoded->size() != digest256{}.size()) {
        return std::nullopt;
    }
    digest256 out{};
    std::memcpy(out.data(), decoded->data(), out.size());
    return out;
}

bool verify_signature(const key_digest& key, std::string_view body, const digest256& signature) noexcept
{
    const digest256 expected = hmac_sha256(key, body);
    return constant_time_equal(expected, signature);
}

std::string sign(std::string_view signing_key, std::string_view body)
{
    return base64_encode(hmac_sha256(digest_signing_key(signing_key), body));
}

} // namespace cwhook::crypto
