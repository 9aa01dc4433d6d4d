// Design: thin wrappers over OpenSSL 3's non-deprecated EVP interfaces. OpenSSL failures here
// mean a broken installation or exhausted memory, never bad input, so they are invariant
// checks. base64 is written by hand because EVP_DecodeBlock neither reports padding nor
// rejects non-canonical input, and the signature header must be decoded strictly.
#include "crypto/digest.hpp"

#include "core/error.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

namespace cwhook::crypto {
namespace {

struct mac_ctx_deleter {
    void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
using mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, mac_ctx_deleter>;

constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char hex_digits[] = "0123456789abcdef";

// OpenSSL rejects a null pointer in some paths even with a zero length.
const std::uint8_t empty_input[1] = {0};

// Fetching an algorithm takes a provider lock; do it once. The fetched EVP_MAC is immutable
// and may be shared by all threads. It is intentionally never freed: it lives as long as the
// process, and freeing it from a static destructor could race OpenSSL's own exit handler.
EVP_MAC* hmac_algorithm()
{
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    CWHOOK_CHECK(mac != nullptr);
    return mac;
}

// Six-bit value of a standard-alphabet character, or -1.
int base64_value(char c) noexcept
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

} // namespace

digest256 sha256(std::string_view data)
{
    digest256 out{};
    unsigned int length = 0;
    const void* input = data.empty() ? static_cast<const void*>(empty_input) : data.data();
    CWHOOK_CHECK(EVP_Digest(input, data.size(), out.data(), &length, EVP_sha256(), nullptr) == 1);
    CWHOOK_CHECK(length == out.size());
    return out;
}

digest256 hmac_sha256(std::span<const std::uint8_t> key, std::string_view message)
{
    mac_ctx_ptr ctx{EVP_MAC_CTX_new(hmac_algorithm())};
    CWHOOK_CHECK(ctx != nullptr);

    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    // A null key means "keep the previous key" to EVP_MAC_init, so an empty key needs a
    // non-null pointer to mean what it says.
    const std::uint8_t* key_data = key.empty() ? empty_input : key.data();
    CWHOOK_CHECK(EVP_MAC_init(ctx.get(), key_data, key.size(), params) == 1);

    const auto* input = message.empty() ? empty_input : reinterpret_cast<const std::uint8_t*>(message.data());
    CWHOOK_CHECK(EVP_MAC_update(ctx.get(), input, message.size()) == 1);

    digest256 out{};
    std::size_t length = 0;
    CWHOOK_CHECK(EVP_MAC_final(ctx.get(), out.data(), &length, out.size()) == 1);
    CWHOOK_CHECK(length == out.size());
    return out;
}

std::string base64_encode(std::span<const std::uint8_t> data)
{
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const std::uint32_t group = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
        out += base64_alphabet[(group >> 18) & 0x3F];
        out += base64_alphabet[(group >> 12) & 0x3F];
        out += base64_alphabet[(group >> 6) & 0x3F];
        out += base64_alphabet[group & 0x3F];
    }
    const std::size_t rest = data.size() - i;
    if (rest == 1) {
        const std::uint32_t group = std::uint32_t{data[i]} << 16;
        out += base64_alphabet[(group >> 18) & 0x3F];
        out += base64_alphabet[(group >> 12) & 0x3F];
        out += "==";
    } else if (rest == 2) {
        const std::uint32_t group = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
        out += base64_alphabet[(group >> 18) & 0x3F];
        out += base64_alphabet[(group >> 12) & 0x3F];
        out += base64_alphabet[(group >> 6) & 0x3F];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text)
{
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        // '=' may only end the final quantum, as "xx==" or "xxx=".
        std::size_t padding = 0;
        if (last && text[i + 3] == '=') {
            padding = text[i + 2] == '=' ? 2 : 1;
        }
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const int value = k < 4 - padding ? base64_value(text[i + k]) : 0;
            if (value < 0) {
                return std::nullopt;
            }
            group = (group << 6) | static_cast<std::uint32_t>(value);
        }
        // The bits under the padding must be zero: each byte string then has exactly one
        // accepted encoding.
        if ((padding == 1 && (group & 0xFF) != 0) || (padding == 2 && (group & 0xFFFF) != 0)) {
            return std::nullopt;
        }
        out += static_cast<char>((group >> 16) & 0xFF);
        if (padding < 2) {
            out += static_cast<char>((group >> 8) & 0xFF);
        }
        if (padding < 1) {
            out += static_cast<char>(group & 0xFF);
        }
    }
    return out;
}

std::string hex(std::span<const std::uint8_t> data)
{
    std::string out;
    out.reserve(data.size() * 2);
    for (const std::uint8_t byte : data) {
        out += hex_digits[byte >> 4];
        out += hex_digits[byte & 0x0F];
    }
    return out;
}

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept
{
    // Lengths are not secret (a signature is always 32 bytes); the content comparison still
    // runs over the common prefix so the time never depends on where the inputs differ.
    const std::size_t common = std::min(a.size(), b.size());
    const int differs = common == 0 ? 0 : CRYPTO_memcmp(a.data(), b.data(), common);
    const bool same_length = a.size() == b.size();
    const bool same_content = differs == 0;
    return same_length && same_content;
}

std::string random_hex(std::size_t n)
{
    std::vector<std::uint8_t> bytes(n);
    if (n > 0) {
        CWHOOK_CHECK(n <= static_cast<std::size_t>(INT_MAX));
        CWHOOK_CHECK(RAND_bytes(bytes.data(), static_cast<int>(n)) == 1);
    }
    return hex(bytes);
}

} // namespace cwhook::crypto
