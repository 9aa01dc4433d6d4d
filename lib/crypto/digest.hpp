// Hashes, HMAC, base64, hex and constant-time comparison over OpenSSL. Pure functions,
// thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace cwhook::crypto {

using digest256 = std::array<std::uint8_t, 32>;

digest256 sha256(std::string_view data);
digest256 hmac_sha256(std::span<const std::uint8_t> key, std::string_view message);

std::string base64_encode(std::span<const std::uint8_t> data);
// Strict standard base64 with padding; nullopt on any other character or bad length.
std::optional<std::string> base64_decode(std::string_view text);

std::string hex(std::span<const std::uint8_t> data);

// Compares in time that depends only on the lengths.
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

// n random bytes from the OpenSSL CSPRNG, hex encoded (request ids, tokens).
std::string random_hex(std::size_t n);

} // namespace cwhook::crypto
