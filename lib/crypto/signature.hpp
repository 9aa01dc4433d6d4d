// The ConnectWise callback signature (docs/PROTOCOL.md section 2):
//   x-content-signature = base64(HMAC-SHA256(key = SHA256(signing_key), raw body)).
// Only the SHA-256 of a signing key is ever kept in memory by the daemon (key_digest).
// Pure functions, thread-safe.
#pragma once

#include "crypto/digest.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace cwhook::crypto {

using key_digest = digest256;

key_digest digest_signing_key(std::string_view signing_key);

// Decodes the header value: surrounding whitespace trimmed, strict base64, exactly 32 bytes.
std::optional<digest256> decode_signature_header(std::string_view value);

// Constant-time check of a decoded signature against the body.
bool verify_signature(const key_digest& key, std::string_view body, const digest256& signature) noexcept;

// base64 signature for a body, as Manage computes it (emulator, replay re-signing, tests).
std::string sign(std::string_view signing_key, std::string_view body);

} // namespace cwhook::crypto
