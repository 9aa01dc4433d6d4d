#include "core/json_string.hpp"

#include <gtest/gtest.h>

namespace cwhook {
namespace {

TEST(JsonQuoted, WrapsPlainText)
{
    EXPECT_EQ(json_quoted("hello"), R"("hello")");
    EXPECT_EQ(json_quoted(""), R"("")");
}

TEST(JsonQuoted, EscapesQuoteAndBackslash)
{
    EXPECT_EQ(json_quoted(R"(a"b\c)"), R"("a\"b\\c")");
}

TEST(JsonQuoted, EscapesControlCharacters)
{
    EXPECT_EQ(json_quoted(std::string_view{"\n\r\t\x01\x1f\0", 6}), R"("\n\r\t\u0001\u001f\u0000")");
}

TEST(JsonQuoted, PassesHighBytesThrough)
{
    // DEL is a control byte and is escaped, like the log and HTTP answers do.
    EXPECT_EQ(json_quoted("\xC3\xA9\xFF\x7F"), "\"\xC3\xA9\xFF\\u007f\"");
}


} // namespace
} // namespace cwhook
