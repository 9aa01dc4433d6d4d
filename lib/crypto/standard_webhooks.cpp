#include "crypto/standard_webhooks.hpp"

#include "crypto/digest.hpp"

#include <fmt/format.h>

#include <iterator>
#include <span>

namespace cwhook::crypto {

boost::system::result<std::string, std::string> webhook_key(std::string_view secret)
{
    using out = boost::system::result<std::string, std::string>;
    constexpr std::string_view prefix = "whsec_";
    if (secret.starts_with(prefix)) {
        secret.remove_prefix(prefix.size());
    }
    if (secret.empty()) {
        return out(boost::system::in_place_error, "empty webhook secret");
    }
    auto key = base64_decode(secret);
    if (!key) {
        return out(boost::system::in_place_error, "webhook secret is not \"whsec_\" followed by base64");
    }
    // The specification asks for 24 to 64 bytes; fewer would be a guessable key.
    if (key->size() < 24 || key->size() > 64) {
        return out(boost::system::in_place_error,
                   fmt::format("webhook secret has {} key bytes; 24 to 64 expected", key->size()));
    }
    return out(boost::system::in_place_value, std::move(*key));
}

std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp, std::string_view body)
{
    std::string signed_content;
    signed_content.reserve(id.size() + 24 + body.size());
    fmt::format_to(std::back_inserter(signed_content), "{}.{}.", id, timestamp);
    signed_content.append(body);
    const auto mac = hmac_sha256(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()), signed_content);
    return "v1," + base64_encode(mac);
}

} // namespace cwhook::crypto
