#include "json/payload.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cwhook::json {
namespace {

std::string read_fixture(const std::string& name)
{
    std::ifstream in{std::string{CWHOOK_FIXTURES_DIR} + "/" + name, std::ios::binary};
    EXPECT_TRUE(in) << name;
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

// A minimal valid delivery with `extra` spliced in before the closing brace.
std::string minimal_body(const std::string& extra = "")
{
    return R"({"Action":"updated","Type":"ticket","ID":57961,"Metadata":{"key_url":"https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=x"})" +
           extra + "}";
}

payload parsed(std::string_view body)
{
    auto result = parse_payload(body);
    if (const auto* error = std::get_if<parse_error>(&result)) {
        ADD_FAILURE() << "unexpected parse error: " << error->detail;
        return {};
    }
    return std::get<payload>(std::move(result));
}

std::string error_of(std::string_view body)
{
    auto result = parse_payload(body);
    if (const auto* error = std::get_if<parse_error>(&result)) {
        return error->detail;
    }
    ADD_FAILURE() << "body unexpectedly parsed";
    return {};
}

TEST(ParsePayload, ReadsContactAddedFixture)
{
    const payload p = parsed(read_fixture("amp-labs-contact-added.json"));
    EXPECT_EQ(p.action, "added");
    EXPECT_EQ(p.type, "contact");
    EXPECT_EQ(p.id, 57960);
    EXPECT_EQ(p.key_url, "{{testServerURL}}/v2025_1//system/callbackkey/index.rails?companyName=myCompany&id=89966c04-9889-46ad-8d5e-421103aca922");
    EXPECT_EQ(p.message_id, "fbed4425-b1f3-425c-8bca-bb405891fc8e");
    EXPECT_EQ(p.from_url, "sandbox-na.myconnectwise.net");
    EXPECT_EQ(p.company_id, "Cobalt");
    EXPECT_EQ(p.member_id, "Aurasell");
    EXPECT_EQ(p.product_instance_id, "639c96cab2eb560001dd1324");
    EXPECT_EQ(p.partner_id, "61ddc2817bcddc0001c74208");
    EXPECT_EQ(p.callback_id, 26604);
    EXPECT_TRUE(p.utf8_valid);
}

TEST(ParsePayload, ReadsContactDeletedFixtureWithNullEntity)
{
    const payload p = parsed(read_fixture("amp-labs-contact-deleted.json"));
    EXPECT_EQ(p.action, "deleted");
    EXPECT_EQ(p.type, "contact");
    EXPECT_EQ(p.id, 57962);
    EXPECT_EQ(p.key_url, "https://sandbox-na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=e17e6674-42f6-4105-9cff-4cd6cb4e62e8");
    EXPECT_EQ(p.message_id, "824d99d2-33c0-4c56-9ded-d99d895a90e3");
    EXPECT_EQ(p.callback_id, 26604);
}

TEST(ParsePayload, AcceptsOlderFormat)
{
    const payload p = parsed(
        R"({"FromUrl":"cw.example.com","CompanyId":"Cobalt","MemberId":"jdoe","Action":"updated","Type":"ticket","ID":12,"Entity":"{\"id\":12}","Metadata":{"key_url":"https://cw.example.com/v4_6_release//system/callbackkey/index.rails?companyName=Cobalt&id=x"}})");
    EXPECT_EQ(p.action, "updated");
    EXPECT_EQ(p.id, 12);
    EXPECT_EQ(p.from_url, "cw.example.com");
    EXPECT_EQ(p.company_id, "Cobalt");
    EXPECT_EQ(p.member_id, "jdoe");
    EXPECT_FALSE(p.message_id);
    EXPECT_FALSE(p.product_instance_id);
    EXPECT_FALSE(p.partner_id);
    EXPECT_FALSE(p.callback_id);
}

TEST(ParsePayload, NullOptionalFieldsAreAbsent)
{
    const payload p = parsed(minimal_body(
        R"(,"MessageId":null,"FromUrl":null,"CompanyId":null,"MemberId":null,"ProductInstanceId":null,"PartnerId":null,"CallbackObjectRecId":null)"));
    EXPECT_FALSE(p.message_id);
    EXPECT_FALSE(p.from_url);
    EXPECT_FALSE(p.company_id);
    EXPECT_FALSE(p.member_id);
    EXPECT_FALSE(p.product_instance_id);
    EXPECT_FALSE(p.partner_id);
    EXPECT_FALSE(p.callback_id);
}

TEST(ParsePayload, IgnoresEntityOfAnyType)
{
    EXPECT_EQ(parsed(minimal_body(R"(,"Entity":{"id":1,"nested":[1,2.00,{"x":true}]})")).id, 57961);
    EXPECT_EQ(parsed(minimal_body(R"(,"Entity":42)")).id, 57961);
}

TEST(ParsePayload, IgnoresUnknownFields)
{
    EXPECT_EQ(parsed(minimal_body(R"(,"Surprise":[true,false],"Another":{"a":null})")).action, "updated");
}

TEST(ParsePayload, AcceptsIdAsDigitString)
{
    const std::string body =
        R"({"Action":"added","Type":"ticket","ID":"57961","Metadata":{"key_url":"https://x"}})";
    EXPECT_EQ(parsed(body).id, 57961);
}

TEST(ParsePayload, AcceptsCallbackIdAsDigitString)
{
    EXPECT_EQ(parsed(minimal_body(R"(,"CallbackObjectRecId":"26604")")).callback_id, 26604);
}

class MissingRequiredField : public testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(MissingRequiredField, IsReported)
{
    const auto& [body, detail] = GetParam();
    EXPECT_EQ(error_of(body), detail);
}

INSTANTIATE_TEST_SUITE_P(
    ParsePayload, MissingRequiredField,
    testing::Values(
        std::pair{std::string{R"({"Type":"ticket","ID":1,"Metadata":{"key_url":"https://x"}})"},
                  std::string{"missing field Action"}},
        std::pair{std::string{R"({"Action":"added","ID":1,"Metadata":{"key_url":"https://x"}})"},
                  std::string{"missing field Type"}},
        std::pair{std::string{R"({"Action":"added","Type":"ticket","Metadata":{"key_url":"https://x"}})"},
                  std::string{"missing field ID"}},
        std::pair{std::string{R"({"Action":"added","Type":"ticket","ID":1})"}, std::string{"missing field Metadata"}},
        std::pair{std::string{R"({"Action":"added","Type":"ticket","ID":1,"Metadata":{}})"},
                  std::string{"missing field Metadata.key_url"}}));

TEST(ParsePayload, RejectsNonStringAction)
{
    EXPECT_EQ(error_of(R"({"Action":1,"Type":"ticket","ID":1,"Metadata":{"key_url":"https://x"}})"),
              "field Action is not a string");
}

TEST(ParsePayload, RejectsFractionalId)
{
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":1.5,"Metadata":{"key_url":"https://x"}})"),
              "field ID is not an integer");
}

TEST(ParsePayload, RejectsIdStringWithNonDigits)
{
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":"-12","Metadata":{"key_url":"https://x"}})"),
              "field ID is not an integer");
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":"12a","Metadata":{"key_url":"https://x"}})"),
              "field ID is not an integer");
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":"","Metadata":{"key_url":"https://x"}})"),
              "field ID is not an integer");
}

TEST(ParsePayload, RejectsIdBeyondInt64)
{
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":18446744073709551615,"Metadata":{"key_url":"https://x"}})"),
              "field ID is out of range");
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":"99999999999999999999","Metadata":{"key_url":"https://x"}})"),
              "field ID is out of range");
}

TEST(ParsePayload, RejectsNullId)
{
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":null,"Metadata":{"key_url":"https://x"}})"),
              "field ID is not an integer");
}

TEST(ParsePayload, RejectsMetadataThatIsNotAnObject)
{
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":1,"Metadata":"https://x"})"),
              "field Metadata is not an object");
}

TEST(ParsePayload, RejectsNonStringKeyUrl)
{
    EXPECT_EQ(error_of(R"({"Action":"added","Type":"ticket","ID":1,"Metadata":{"key_url":["https://x"]}})"),
              "field Metadata.key_url is not a string");
}

TEST(ParsePayload, TreatsOptionalStringOfWrongTypeAsAbsent)
{
    EXPECT_FALSE(parsed(minimal_body(R"(,"MessageId":7)")).message_id.has_value());
}

TEST(ParsePayload, TreatsCallbackIdOfWrongTypeAsAbsent)
{
    EXPECT_FALSE(parsed(minimal_body(R"(,"CallbackObjectRecId":true)")).callback_id.has_value());
}

TEST(ParsePayload, ReadsInvalidUtf8Leniently)
{
    const payload p = parsed(minimal_body(",\"MemberId\":\"Jos\xE9\",\"Entity\":\"caf\xC3\""));
    EXPECT_FALSE(p.utf8_valid);
    EXPECT_EQ(p.member_id, "Jos?");
    EXPECT_EQ(p.id, 57961);
}

TEST(ParsePayload, ReplacesOverlongAndSurrogateBytes)
{
    // C0 AF is an overlong '/', ED A0 80 a UTF-16 surrogate, F4 90 80 80 is above U+10FFFF.
    const payload p = parsed(minimal_body(",\"CompanyId\":\"a\xC0\xAF" "b\xED\xA0\x80" "c\xF4\x90\x80\x80\""));
    EXPECT_FALSE(p.utf8_valid);
    EXPECT_EQ(p.company_id, "a??b???c????");
}

TEST(ParsePayload, KeepsValidMultibyteCharactersNextToInvalidOnes)
{
    const payload p = parsed(minimal_body(",\"CompanyId\":\"\xC3\xA9\xFF\xE2\x82\xAC\xE2\x82\xF0\x9F\x98\x80\""));
    EXPECT_FALSE(p.utf8_valid);
    EXPECT_EQ(p.company_id, "\xC3\xA9?\xE2\x82\xAC??\xF0\x9F\x98\x80");
}

TEST(ParsePayload, ValidUtf8IsReportedValid)
{
    const payload p = parsed(minimal_body(",\"MemberId\":\"Jos\xC3\xA9\""));
    EXPECT_TRUE(p.utf8_valid);
    EXPECT_EQ(p.member_id, "Jos\xC3\xA9");
}

TEST(ParsePayload, InvalidUtf8OutsideStringsIsInvalidJson)
{
    EXPECT_EQ(error_of(minimal_body(",\xFF")).rfind("invalid JSON: ", 0), 0U);
}

TEST(ParsePayload, RejectsDeepNesting)
{
    const std::string deep = std::string(10000, '[') + std::string(10000, ']');
    EXPECT_EQ(error_of(minimal_body(",\"Entity\":" + deep)), "nesting too deep");
}

TEST(ParsePayload, RejectsDeepUnterminatedNesting)
{
    EXPECT_FALSE(error_of(R"({"Action":)" + std::string(10000, '[')).empty());
}

TEST(ParsePayload, AcceptsModerateNestingInIgnoredField)
{
    const std::string nested = std::string(50, '[') + std::string(50, ']');
    EXPECT_EQ(parsed(minimal_body(",\"Entity\":" + nested)).id, 57961);
}

TEST(ParsePayload, ParsesMebibyteStringValue)
{
    const std::string entity(1024 * 1024, 'x');
    EXPECT_EQ(parsed(minimal_body(",\"Entity\":\"" + entity + "\"")).action, "updated");
}

TEST(ParsePayload, RejectsNonObjectTopLevel)
{
    EXPECT_EQ(error_of("[]"), "not a JSON object");
    EXPECT_EQ(error_of("42"), "not a JSON object");
    EXPECT_EQ(error_of(R"("text")"), "not a JSON object");
    EXPECT_EQ(error_of("null"), "not a JSON object");
}

TEST(ParsePayload, RejectsTrailingGarbage)
{
    EXPECT_EQ(error_of(minimal_body() + " trailing").rfind("invalid JSON: ", 0), 0U);
    EXPECT_EQ(error_of(minimal_body() + minimal_body()).rfind("invalid JSON: ", 0), 0U);
}

TEST(ParsePayload, RejectsTruncatedBody)
{
    const std::string body = minimal_body();
    EXPECT_EQ(error_of(body.substr(0, body.size() - 1)).rfind("invalid JSON: ", 0), 0U);
}

TEST(ParsePayload, RejectsEmptyBody)
{
    EXPECT_EQ(error_of(""), "empty body");
    EXPECT_EQ(error_of(" \r\n\t"), "empty body");
}

TEST(ParsePayload, ParsesOnSeveralThreadsAtOnce)
{
    std::vector<std::thread> threads;
    std::vector<int> successes(4, 0);
    for (std::size_t t = 0; t < successes.size(); ++t) {
        threads.emplace_back([t, &successes] {
            for (int i = 0; i < 500; ++i) {
                const std::string body = R"({"Action":"added","Type":"ticket","ID":)" + std::to_string(i) +
                                         R"(,"Metadata":{"key_url":"https://x"}})";
                const auto result = parse_payload(body);
                const auto* p = std::get_if<payload>(&result);
                if (p != nullptr && p->id == i) {
                    ++successes[t];
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (const int count : successes) {
        EXPECT_EQ(count, 500);
    }
}

} // namespace
} // namespace cwhook::json
