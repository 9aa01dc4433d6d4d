#include "client/error.hpp"

#include "core/error.hpp"

#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

namespace cwhook::client {
namespace {

TEST(ClientErrorCategory, IsNamedCwhookClient)
{
    EXPECT_STREQ(error_category().name(), "cwhook.client");
    EXPECT_EQ(make_error_code(errc::timed_out).category(), error_category());
}

TEST(ClientErrorCategory, EveryCodeHasItsMessage)
{
    for (int v = static_cast<int>(errc::resolve_failed); v <= static_cast<int>(errc::response_too_large); ++v) {
        EXPECT_NE(make_error_code(static_cast<errc>(v)).message(), "unknown client error") << v;
    }
    EXPECT_EQ(make_error_code(errc::certificate_rejected).message(), "peer certificate rejected");
}

TEST(ClientErrorCategory, DiffersFromProjectCodesOfSameValue)
{
    const boost::system::error_code ec = errc::resolve_failed;
    EXPECT_NE(ec, make_error_code(static_cast<cwhook::errc>(ec.value())));
}

TEST(ClientError, TransientFailuresAreWorthAnotherAttempt)
{
    for (const auto e : {errc::resolve_failed, errc::connect_failed, errc::tls_handshake_failed, errc::timed_out,
                         errc::connection_lost, errc::bad_response}) {
        EXPECT_TRUE(is_transient(e)) << make_error_code(e).message();
    }
}

TEST(ClientError, DefinitiveFailuresAreNotRetried)
{
    for (const auto e :
         {errc::special_address, errc::tls_setup_failed, errc::certificate_rejected, errc::response_too_large}) {
        EXPECT_FALSE(is_transient(e)) << make_error_code(e).message();
    }
    EXPECT_FALSE(is_transient(cwhook::errc::key_fetch_failed));
}

TEST(ClientError, FailureThrowsWithCodeAndDetail)
{
    const boost::system::result<int, failure> r(boost::system::in_place_error,
                                                failure{errc::timed_out, "read timed out"});
    try {
        (void)r.value();
        FAIL() << "value() did not throw";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), errc::timed_out);
        EXPECT_NE(std::string(e.what()).find("read timed out"), std::string::npos);
    }
}

} // namespace
} // namespace cwhook::client
