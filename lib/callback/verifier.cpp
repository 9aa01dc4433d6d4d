#include "callback/verifier.hpp"

#include "crypto/signature.hpp"

#include <algorithm>

namespace cwhook::callback {

namespace net = boost::asio;
using kind = key_verdict::kind;

namespace {

key_verdict from_failure(const boost::system::error_code& ec)
{
    switch (classify(ec)) {
    case key_failure::transient: return {kind::transient, std::nullopt};
    case key_failure::busy: return {kind::busy, refusal::key_fetch_busy};
    case key_failure::no_key: break;
    }
    return {kind::no_key, ec == errc::redirect_refused ? refusal::key_redirect : refusal::key_unavailable};
}

} // namespace

std::string_view key_verdict::reason() const noexcept
{
    if (why) {
        return describe(*why).code;
    }
    return what == kind::transient ? transient_reason : std::string_view{};
}

net::awaitable<key_verdict> check_signature(key_cache& keys, const key_target& target, const std::string& body,
                                            const crypto::digest256& signature, key_cache::clock::time_point arrived,
                                            key_cache::clock::time_point deadline)
{
    auto first = co_await keys.get(target, deadline);
    if (!first.key) {
        co_return from_failure(first.key.error());
    }
    if (crypto::verify_signature(*first.key, body, signature)) {
        co_return key_verdict{kind::verified, std::nullopt};
    }
    if (first.fetched_at >= arrived) {
        co_return key_verdict{kind::bad_signature, refusal::bad_signature};
    }
    // Keys rotate: a mismatch against a key fetched before the delivery arrived earns a fresh
    // one. A failed refresh leaves the cached key in place but settles nothing here.
    auto fresh = co_await keys.get_fresh(target, arrived, deadline);
    if (!fresh.key) {
        co_return from_failure(fresh.key.error());
    }
    if (crypto::verify_signature(*fresh.key, body, signature)) {
        co_return key_verdict{kind::verified, std::nullopt};
    }
    co_return key_verdict{kind::bad_signature, refusal::bad_signature};
}

net::awaitable<key_verdict> recheck(key_cache& keys, const key_url_policy& policy, const store::pending_event& row,
                                    std::chrono::milliseconds wait)
{
    auto target = policy.check(row.key_url);
    if (!target) {
        co_return key_verdict{kind::refused, target.error().reason};
    }
    const auto sig = crypto::decode_signature_header(row.signature);
    if (!sig) {
        co_return key_verdict{kind::refused, refusal::bad_signature};
    }
    // The row's receipt on the cache's clock: keys fetched since then can settle it.
    const auto wall_now = std::chrono::system_clock::now().time_since_epoch();
    const auto age = std::chrono::duration_cast<key_cache::clock::duration>(
        wall_now - std::chrono::microseconds(row.received_at_us));
    const auto now = keys.now();
    const auto arrived = now - std::max(age, key_cache::clock::duration::zero());
    auto v = co_await check_signature(keys, *target, row.body, *sig, arrived, now + wait);
    co_return v;
}

} // namespace cwhook::callback
