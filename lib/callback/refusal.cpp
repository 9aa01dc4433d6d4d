#include "callback/refusal.hpp"


namespace cwhook::callback {

refusal_info describe(refusal r) noexcept
{
    switch (r) {
    case refusal::malformed_payload: return {400, "malformed_payload"};
    case refusal::body_too_large: return {413, "body_too_large"};
    case refusal::key_url_not_allowed: return {403, "key_url_not_allowed"};
    case refusal::key_url_not_key_endpoint: return {403, "key_url_not_key_endpoint"};
    case refusal::company_not_allowed: return {403, "company_not_allowed"};
    case refusal::company_mismatch: return {403, "company_mismatch"};
    case refusal::bad_signature: return {401, "bad_signature"};
    case refusal::key_unavailable: return {401, "key_unavailable"};
    case refusal::key_redirect: return {401, "key_redirect"};
    case refusal::pending_limit: return {429, "pending_limit"};
    case refusal::key_fetch_busy: return {429, "key_fetch_busy"};
    case refusal::storage_unavailable: return {429, "storage_unavailable"};
    }
    return {500, "internal_error"};
}

} // namespace cwhook::callback
