#include "crypto/digest.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cwhook::crypto {
namespace {

std::span<const std::uint8_t> bytes(std::string_view text)
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

TEST(Sha256, HashesEmptyInput)
{
    EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(sha256(std::string_view{})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, HashesAbc)
{
    EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HmacSha256, MatchesRfc4231TestCase2)
{
    EXPECT_EQ(hex(hmac_sha256(bytes("Jefe"), "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, AcceptsEmptyKeyAndMessage)
{
    EXPECT_EQ(hex(hmac_sha256({}, std::string_view{})),
              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Base64, EncodesRfc4648Vectors)
{
    EXPECT_EQ(base64_encode(bytes("")), "");
    EXPECT_EQ(base64_encode(bytes("f")), "Zg==");
    EXPECT_EQ(base64_encode(bytes("fo")), "Zm8=");
    EXPECT_EQ(base64_encode(bytes("foo")), "Zm9v");
    EXPECT_EQ(base64_encode(bytes("foob")), "Zm9vYg==");
    EXPECT_EQ(base64_encode(bytes("fooba")), "Zm9vYmE=");
    EXPECT_EQ(base64_encode(bytes("foobar")), "Zm9vYmFy");
}

TEST(Base64, DecodesRfc4648Vectors)
{
    EXPECT_EQ(base64_decode(""), "");
    EXPECT_EQ(base64_decode("Zg=="), "f");
    EXPECT_EQ(base64_decode("Zm8="), "fo");
    EXPECT_EQ(base64_decode("Zm9v"), "foo");
    EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
    EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
    EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
}

TEST(Base64, RoundTripsEveryByteAtEveryLength)
{
    std::string data;
    for (int i = 0; i < 300; ++i) {
        const auto decoded = base64_decode(base64_encode(bytes(data)));
        ASSERT_TRUE(decoded) << "length " << data.size();
        EXPECT_EQ(*decoded, data);
        data += static_cast<char>((i * 167 + 13) & 0xFF);
    }
}

TEST(Base64, UsesPlusAndSlash)
{
    const std::string data{"\xFB\xFF\xBF", 3};
    EXPECT_EQ(base64_encode(bytes(data)), "+/+/");
    EXPECT_EQ(base64_decode("+/+/"), data);
}

TEST(Base64, RejectsLengthNotMultipleOfFour)
{
    EXPECT_FALSE(base64_decode("Zg"));
    EXPECT_FALSE(base64_decode("Zg="));
    EXPECT_FALSE(base64_decode("Zm9vY"));
}

TEST(Base64, RejectsUrlSafeAlphabet)
{
    EXPECT_FALSE(base64_decode("-_-_"));
}

TEST(Base64, RejectsWhitespaceAndOtherCharacters)
{
    EXPECT_FALSE(base64_decode("Zm9v\n"));
    EXPECT_FALSE(base64_decode(" Zm9v   "));
    EXPECT_FALSE(base64_decode("Zm 9"));
    EXPECT_FALSE(base64_decode(std::string_view{"Zm9\0", 4}));
    EXPECT_FALSE(base64_decode("Zm9\xC3"));
}

TEST(Base64, RejectsMisplacedPadding)
{
    EXPECT_FALSE(base64_decode("Z==="));
    EXPECT_FALSE(base64_decode("===="));
    EXPECT_FALSE(base64_decode("Zg=a"));
    EXPECT_FALSE(base64_decode("Zg==Zm9v"));
    EXPECT_FALSE(base64_decode("Zm8=Zm8="));
}

TEST(Base64, RejectsNonCanonicalPaddingBits)
{
    EXPECT_FALSE(base64_decode("Zh=="));
    EXPECT_FALSE(base64_decode("Zm9="));
}

TEST(Hex, EncodesLowercase)
{
    const std::vector<std::uint8_t> data{0x00, 0x0f, 0xa0, 0xff};
    EXPECT_EQ(hex(data), "000fa0ff");
    EXPECT_EQ(hex({}), "");
}

TEST(ConstantTimeEqual, EqualInputsCompareEqual)
{
    EXPECT_TRUE(constant_time_equal(bytes("signature"), bytes("signature")));
    EXPECT_TRUE(constant_time_equal({}, {}));
}

TEST(ConstantTimeEqual, DifferenceInLastByteIsFound)
{
    EXPECT_FALSE(constant_time_equal(bytes("signaturA"), bytes("signaturB")));
}

TEST(ConstantTimeEqual, DifferentLengthsAreUnequal)
{
    EXPECT_FALSE(constant_time_equal(bytes("sig"), bytes("signature")));
    EXPECT_FALSE(constant_time_equal(bytes("signature"), bytes("")));
}

TEST(RandomHex, HasTwoDigitsPerByte)
{
    const std::string value = random_hex(16);
    EXPECT_EQ(value.size(), 32U);
    EXPECT_EQ(value.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(RandomHex, DiffersBetweenCalls)
{
    EXPECT_NE(random_hex(16), random_hex(16));
}

TEST(RandomHex, ZeroBytesIsEmpty)
{
    EXPECT_EQ(random_hex(0), "");
}

} // namespace
} // namespace cwhook::crypto
