// The reasons a delivery is refused or deferred, each with its HTTP status and its reason
// code (the JSON "error" of the answer, the rejections table's reason and the metric label).
// One table (refusal.cpp) holds the mapping, so an answer, its row and its counter can never
// disagree. Plain data; thread-safe.
#pragma once

#include <string_view>

namespace cwhook::callback {

enum class refusal {
    malformed_payload,         // 400: the body is not a callback payload
    body_too_large,            // 413: refused by the server before it was read
    key_url_not_allowed,       // 403: scheme, host or port of key_url not allowlisted
    key_url_not_key_endpoint,  // 403: key_url is not Manage's key endpoint (path, query)
    company_not_allowed,       // 403: key_url's companyName absent or not in verify.companies
    company_mismatch,          // 403: the payload's CompanyId differs from key_url's companyName
    bad_signature,             // 401: missing, malformed or not matching a fresh key
    key_unavailable,           // 401: no usable key, and verify.max_failed quarantined rows held
    key_redirect,              // 401: the key server redirected, and verify.max_failed held
    pending_limit,             // 429: verify.max_pending rows await verification
    key_fetch_busy,            // 429: the key could not be had within verify.answer_deadline
    storage_unavailable,       // 429: the store cannot take the event now
};

struct refusal_info {
    unsigned status;
    std::string_view code;
};

refusal_info describe(refusal r) noexcept;

// True when Manage retries the answer (it retries 404/409/419/429 only): a deferral, not a
// verdict. Deferrals are not written to the rejections table.
inline bool is_deferral(refusal r) noexcept { return describe(r).status == 429; }

} // namespace cwhook::callback
