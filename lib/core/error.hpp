// Project error codes, registered as a boost::system error category ("cwhook"), and the
// result<T> alias every lib/ API returns for expected failures. Thread-safe (immutable).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstdlib>
#include <type_traits>

namespace cwhook {

enum class errc {
    ok = 0,
    malformed_payload,       // body is not a callback payload
    key_url_not_allowed,     // key_url fails the allowlist / scheme / shape rules
    missing_signature,       // no x-content-signature header
    bad_signature,           // signature does not match the body
    key_unavailable,         // key server gave a definitive non-key answer (4xx, not JSON, ...)
    key_fetch_failed,        // transient: connect/TLS/timeout/5xx/429
    key_fetch_busy,          // no key fetch possible before the deadline (per-host budget, refetch interval)
    response_too_large,      // upstream answer exceeds the configured bound
    redirect_refused,        // upstream answered 3xx; redirects are never followed
    private_address,         // host resolved to a private/loopback address not explicitly allowed
    storage_busy,            // database locked by someone else
    storage_full,            // disk or page limit reached
    storage_queue_full,      // writer queue at its bound
    storage_closed,          // store is shutting down
    storage_error,           // any other SQLite failure
    pending_limit,           // too many events awaiting verification
    invalid_argument,
    not_found,
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

template <class T>
using result = boost::system::result<T>;

[[noreturn]] void check_failed(const char* expr, const char* file, int line) noexcept;

} // namespace cwhook

template <>
struct boost::system::is_error_code_enum<cwhook::errc> : std::true_type {};

// Invariant check: aborts with file:line. For "can't happen", never for untrusted input.
#define CWHOOK_CHECK(expr) \
    ((expr) ? static_cast<void>(0) : ::cwhook::check_failed(#expr, __FILE__, __LINE__))
