#include "json/signing_key.hpp"

#include <gtest/gtest.h>

namespace cwhook::json {
namespace {

TEST(ParseSigningKey, ReadsKey)
{
    EXPECT_EQ(parse_signing_key(R"({"signing_key":"abc123"})"), "abc123");
}

TEST(ParseSigningKey, UnescapesKey)
{
    EXPECT_EQ(parse_signing_key(R"({"signing_key":"a\/b\u00e9\"c"})"), "a/b\xC3\xA9\"c");
}

TEST(ParseSigningKey, ToleratesBomAndWhitespace)
{
    EXPECT_EQ(parse_signing_key("\xEF\xBB\xBF \r\n{\"signing_key\" : \"k\"}\r\n "), "k");
}

TEST(ParseSigningKey, IgnoresOtherFields)
{
    EXPECT_EQ(parse_signing_key(R"({"expires":null,"signing_key":"k","extra":[1]})"), "k");
}

TEST(ParseSigningKey, RejectsMissingKey)
{
    EXPECT_FALSE(parse_signing_key(R"({"key":"k"})"));
}

TEST(ParseSigningKey, RejectsEmptyKey)
{
    EXPECT_FALSE(parse_signing_key(R"({"signing_key":""})"));
}

TEST(ParseSigningKey, RejectsNonStringKey)
{
    EXPECT_FALSE(parse_signing_key(R"({"signing_key":12345})"));
    EXPECT_FALSE(parse_signing_key(R"({"signing_key":null})"));
}

TEST(ParseSigningKey, RejectsNonObject)
{
    EXPECT_FALSE(parse_signing_key(R"(["signing_key","k"])"));
    EXPECT_FALSE(parse_signing_key(R"("k")"));
}

TEST(ParseSigningKey, RejectsNonJson)
{
    EXPECT_FALSE(parse_signing_key("<html><body>Login</body></html>"));
    EXPECT_FALSE(parse_signing_key(""));
}

TEST(ParseSigningKey, RejectsInvalidUtf8)
{
    EXPECT_FALSE(parse_signing_key("{\"signing_key\":\"k\xFF\"}"));
}

} // namespace
} // namespace cwhook::json
