// Signing of outgoing requests per the Standard Webhooks specification
// (standardwebhooks.com): the consumer's secret is "whsec_" followed by base64 key bytes; each
// request carries webhook-id (stable per event, the consumer's dedupe key), webhook-timestamp
// (Unix seconds of this attempt) and webhook-signature "v1,<base64 HMAC-SHA256(key,
// id.timestamp.body)>". Pure functions, thread-safe.
#pragma once

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook::crypto {

// The key bytes of a "whsec_<base64>" secret (the prefix may be left out, as the reference
// libraries allow). The error says what is wrong, never the secret.
boost::system::result<std::string, std::string> webhook_key(std::string_view secret);

// "v1,<base64 signature>" of one attempt.
std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp, std::string_view body);

} // namespace cwhook::crypto
