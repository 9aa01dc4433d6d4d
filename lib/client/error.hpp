// Why an outbound request got no HTTP answer: client::errc, registered as the error category
// "cwhook.client", and client::failure, which carries the code together with the human detail
// of one failure (host and cause, never secrets) inside the result of a fetch.
// Thread-safe (immutable).
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace cwhook::client {

enum class errc {
    resolve_failed = 1,   // the host name did not resolve
    special_address,      // the host resolves only to special-purpose addresses (allow_private unset)
    tls_setup_failed,     // no TLS context, or OpenSSL refused the peer name
    connect_failed,       // no TCP connection (refused, unreachable)
    tls_handshake_failed, // the TLS handshake failed for a reason other than the certificate
    certificate_rejected, // the peer certificate failed verification (chain, name, validity)
    timed_out,            // a step's deadline passed (resolve, connect, handshake, exchange)
    connection_lost,      // the connection failed while writing the request or reading the answer
    bad_response,         // the answer is not valid HTTP/1.1
    response_too_large,   // the answer exceeds options::max_response_bytes
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

// True when another attempt may get an answer (the retry policy's "transport" reason);
// false when it would fail the same way (address, TLS set-up, certificate, size) or when
// `ec` is not a client error.
bool is_transient(const boost::system::error_code& ec) noexcept;

struct failure {
    boost::system::error_code code; // a client::errc
    std::string detail;             // for logs: host and cause, never secrets
};

// Lets result<T, failure>::value() throw a system_error carrying both.
[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

} // namespace cwhook::client

template <> struct boost::system::is_error_code_enum<cwhook::client::errc> : std::true_type {
};
