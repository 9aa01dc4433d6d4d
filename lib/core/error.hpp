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
    key_unavailable,    // key server gave a definitive non-key answer (4xx, not JSON, too large, ...)
    key_fetch_failed,   // transient: the key server could not be reached, or answered 5xx/429
    key_fetch_busy,     // no key fetch possible before the deadline (per-host budget, refetch interval)
    redirect_refused,   // key server answered 3xx; redirects are never followed
    storage_busy,       // database locked by someone else
    storage_full,       // disk or page limit reached
    storage_queue_full, // writer queue at its bound
    storage_unavailable, // database server unreachable, read-only (failover) or shutting down
    storage_error,      // any other database failure
    invalid_argument,
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
