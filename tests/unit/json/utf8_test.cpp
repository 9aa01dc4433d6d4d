#include "json/utf8.hpp"

#include <gtest/gtest.h>

namespace cwhook::json {
namespace {

TEST(Utf8, ValidReplacesOnlyBadBytes)
{
    EXPECT_EQ(valid_utf8("ok \xc3\xa9"), "ok \xc3\xa9");
    EXPECT_EQ(valid_utf8("bad \xe9!"), "bad ?!");
}

TEST(Utf8, ReplaceKeepsLength)
{
    std::string s = "a\xC3(\xF0\x9F\x98";
    replace_invalid_utf8(s.data(), s.size());
    EXPECT_EQ(s, "a?(???");
}

} // namespace
} // namespace cwhook::json
