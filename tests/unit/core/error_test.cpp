#include "core/error.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace cwhook {
namespace {

TEST(ErrorCategory, IsNamedCwhook)
{
    EXPECT_STREQ(error_category().name(), "cwhook");
}

TEST(ErrorCategory, IsOneInstance)
{
    EXPECT_EQ(&error_category(), &error_category());
    EXPECT_EQ(make_error_code(errc::storage_busy).category(), error_category());
}

TEST(ErrorCategory, EveryCodeHasItsMessage)
{
    const struct {
        errc e;
        std::string_view message;
    } cases[] = {
        {errc::ok, "success"},
        {errc::key_unavailable, "key server gave no usable key"},
        {errc::key_fetch_failed, "key fetch failed"},
        {errc::key_fetch_busy, "no key fetch possible before the answer deadline"},
        {errc::redirect_refused, "redirect refused"},
        {errc::storage_busy, "database is locked"},
        {errc::storage_full, "database or disk is full"},
        {errc::storage_queue_full, "storage queue is full"},
        {errc::storage_error, "storage error"},
        {errc::invalid_argument, "invalid argument"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.message);
        EXPECT_EQ(make_error_code(c.e).message(), c.message);
    }
}

TEST(ErrorCategory, UnknownValueHasGenericMessage)
{
    EXPECT_EQ(boost::system::error_code(9999, error_category()).message(), "unknown cwhook error");
}

TEST(ErrorCode, ConvertsImplicitlyFromErrc)
{
    const boost::system::error_code ec = errc::key_unavailable;
    EXPECT_EQ(ec.category(), error_category());
    EXPECT_EQ(ec.value(), static_cast<int>(errc::key_unavailable));
    EXPECT_EQ(ec, errc::key_unavailable);
    EXPECT_NE(ec, errc::key_fetch_failed);
}

TEST(ErrorCode, OkIsNotAnError)
{
    EXPECT_FALSE(make_error_code(errc::ok).failed());
    EXPECT_TRUE(make_error_code(errc::invalid_argument).failed());
}

TEST(ErrorCode, DiffersFromSameValueInOtherCategory)
{
    const boost::system::error_code other(static_cast<int>(errc::storage_full), boost::system::generic_category());
    EXPECT_NE(other, make_error_code(errc::storage_full));
}

TEST(Result, CarriesValueOrErrc)
{
    const result<int> good = 42;
    const result<int> bad = errc::invalid_argument;
    ASSERT_TRUE(good);
    EXPECT_EQ(*good, 42);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::invalid_argument);
}

TEST(CheckDeathTest, FailedCheckAbortsNamingExpressionAndFile)
{
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const int two = 2;
    EXPECT_DEATH(CWHOOK_CHECK(two == 3), "check failed: two == 3 at .*error_test\\.cpp:[0-9]+");
}

TEST(Check, PassingCheckDoesNothing)
{
    const int two = 2;
    CWHOOK_CHECK(two == 2);
    SUCCEED();
}

} // namespace
} // namespace cwhook
