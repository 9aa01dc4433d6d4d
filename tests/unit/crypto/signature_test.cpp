#include "crypto/signature.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cwhook::crypto {
namespace {

// docs/PROTOCOL.md section 2.
constexpr std::string_view vector_body = R"({"Action":"deleted","Type":"ticket","ID":1})";
constexpr std::string_view vector_key = "test-signing-key";
constexpr std::string_view vector_signature = "AG/S/z4z3Mc5RvJvUnoMjalnj2/lECvtYY6cP/URqn4=";

std::span<const std::uint8_t> bytes(std::string_view text)
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

TEST(Signature, VectorBodyIs43Bytes)
{
    EXPECT_EQ(vector_body.size(), 43U);
}

TEST(Signature, KeyDigestMatchesVector)
{
    EXPECT_EQ(hex(digest_signing_key(vector_key)), "2eae0511df4e58ec738ec1f8661a46876269c0b5534fbf993af0cdc23b54949c");
}

TEST(Signature, SignMatchesVector)
{
    EXPECT_EQ(sign(vector_key, vector_body), vector_signature);
}

TEST(Signature, VectorVerifies)
{
    const auto signature = decode_signature_header(vector_signature);
    ASSERT_TRUE(signature);
    EXPECT_TRUE(verify_signature(digest_signing_key(vector_key), vector_body, *signature));
}

TEST(Signature, HmacKeyedWithRawKeyDoesNotVerify)
{
    const std::string wrong = base64_encode(hmac_sha256(bytes(vector_key), vector_body));
    ASSERT_NE(wrong, vector_signature);
    const auto signature = decode_signature_header(wrong);
    ASSERT_TRUE(signature);
    EXPECT_FALSE(verify_signature(digest_signing_key(vector_key), vector_body, *signature));
}

TEST(Signature, AlteredBodyDoesNotVerify)
{
    const auto signature = decode_signature_header(vector_signature);
    ASSERT_TRUE(signature);
    EXPECT_FALSE(verify_signature(digest_signing_key(vector_key), R"({"Action":"deleted","Type":"ticket","ID":2})",
                                  *signature));
}

TEST(Signature, OtherKeyDoesNotVerify)
{
    const auto signature = decode_signature_header(vector_signature);
    ASSERT_TRUE(signature);
    EXPECT_FALSE(verify_signature(digest_signing_key("other-signing-key"), vector_body, *signature));
}

TEST(DecodeSignatureHeader, TrimsSurroundingWhitespace)
{
    const auto plain = decode_signature_header(vector_signature);
    const auto padded = decode_signature_header(" \t" + std::string{vector_signature} + " \r\n");
    ASSERT_TRUE(plain);
    ASSERT_TRUE(padded);
    EXPECT_EQ(*plain, *padded);
}

TEST(DecodeSignatureHeader, RejectsInteriorWhitespace)
{
    EXPECT_FALSE(decode_signature_header("AG/S/z4z3Mc5RvJv UnoMjalnj2/lECvtYY6cP/URqn4="));
}

TEST(DecodeSignatureHeader, RejectsBadBase64)
{
    EXPECT_FALSE(decode_signature_header("AG_S_z4z3Mc5RvJvUnoMjalnj2_lECvtYY6cP_URqn4="));
    EXPECT_FALSE(decode_signature_header("AG/S/z4z3Mc5RvJvUnoMjalnj2/lECvtYY6cP/URqn4"));
    EXPECT_FALSE(decode_signature_header("not base64 at all!"));
}

TEST(DecodeSignatureHeader, RejectsWrongLength)
{
    const std::string short_signature = base64_encode(bytes(std::string(31, 'x')));
    const std::string long_signature = base64_encode(bytes(std::string(33, 'x')));
    EXPECT_FALSE(decode_signature_header(short_signature));
    EXPECT_FALSE(decode_signature_header(long_signature));
    EXPECT_TRUE(decode_signature_header(base64_encode(bytes(std::string(32, 'x')))));
}

TEST(DecodeSignatureHeader, RejectsEmptyValue)
{
    EXPECT_FALSE(decode_signature_header(""));
    EXPECT_FALSE(decode_signature_header(" \t "));
}

} // namespace
} // namespace cwhook::crypto
