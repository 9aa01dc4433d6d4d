#include "client/error.hpp"

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

namespace cwhook::client {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cwhook.client"; }

    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::resolve_failed: return "host name did not resolve";
        case errc::special_address: return "host resolves only to special-purpose addresses";
        case errc::tls_setup_failed: return "TLS set-up failed";
        case errc::connect_failed: return "connect failed";
        case errc::tls_handshake_failed: return "TLS handshake failed";
        case errc::certificate_rejected: return "peer certificate rejected";
        case errc::timed_out: return "timed out";
        case errc::connection_lost: return "connection lost";
        case errc::bad_response: return "bad HTTP response";
        case errc::response_too_large: return "response too large";
        }
        return "unknown client error";
    }
};

} // namespace

const boost::system::error_category& error_category() noexcept
{
    static const category instance;
    return instance;
}

bool is_transient(const boost::system::error_code& ec) noexcept
{
    if (ec.category() != error_category()) {
        return false;
    }
    switch (static_cast<errc>(ec.value())) {
    case errc::resolve_failed:
    case errc::connect_failed:
    case errc::tls_handshake_failed:
    case errc::timed_out:
    case errc::connection_lost:
    case errc::bad_response: return true;
    // The same destination, context, certificate or bound give the same failure again.
    case errc::special_address:
    case errc::tls_setup_failed:
    case errc::certificate_rejected:
    case errc::response_too_large: return false;
    }
    return false;
}

void throw_exception_from_error(const failure& f, const boost::source_location& loc)
{
    boost::throw_exception(boost::system::system_error(f.code, f.detail), loc);
}

} // namespace cwhook::client
