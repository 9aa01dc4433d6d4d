#include "manage/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace cwhook::manage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string fixture(const std::string& name)
{
    std::ifstream in{std::string{CWHOOK_FIXTURES_DIR} + "/" + name, std::ios::binary};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(ErrorMessages, ObjectExistsFixtureNamesTheSpecificCode)
{
    const auto f = describe_answer(400, fixture("api-system-callbacks-create-webhook-bad-request-2.json"));
    EXPECT_EQ(f.status, 400u);
    EXPECT_EQ(f.code, "ObjectExists");
    EXPECT_EQ(f.message, "400 ObjectExists: a matching callback entry already exists");
}

TEST(ErrorMessages, SeveralFieldErrorsAreListedWithTheirFields)
{
    const auto f = describe_answer(400, fixture("api-system-callbacks-create-webhook-bad-request-1.json"));
    EXPECT_EQ(f.code, "InvalidObject");
    EXPECT_EQ(f.message,
              "400 InvalidObject: callbackEntry object is invalid: url: invalid URL; level: unrecognized level for "
              "type, see documentation for supported levels for each type");
}

TEST(ErrorMessages, EndpointMissingFixture)
{
    const auto f = describe_answer(404, fixture("api-system-callbacks-remove-webhook-failed.json"));
    EXPECT_EQ(f.code, "ConnectWiseApi");
    EXPECT_EQ(f.message, "404 ConnectWiseApi: the endpoint does not exist");
}

TEST(ErrorMessages, UnauthorizedNamesTheKeysToCheck)
{
    const auto f = describe_answer(401, R"({"code":"Unauthorized","message":"Authentication failed."})");
    EXPECT_THAT(f.message, HasSubstr("401 Unauthorized: check manage.company_id, manage.public_key and "
                                     "manage.private_key"));
}

TEST(ErrorMessages, UnauthorizedWithoutABodyStillSaysWhatToCheck)
{
    const auto f = describe_answer(401, "");
    EXPECT_EQ(f.message, "401 Unauthorized: check manage.company_id, manage.public_key and manage.private_key");
}

TEST(ErrorMessages, ClientIdProblemsPointAtClientId)
{
    const auto f = describe_answer(400, R"({"code":"InvalidClientId","message":"A valid clientId is required."})");
    EXPECT_EQ(f.code, "InvalidClientId");
    EXPECT_THAT(f.message, HasSubstr("400 InvalidClientId: check manage.client_id"));
}

TEST(ErrorMessages, ThrottledMentionsRetryAfter)
{
    const auto f = describe_answer(429, R"({"code":"TooManyRequests","message":"slow down"})", "7");
    EXPECT_EQ(f.message, "429 TooManyRequests: Manage is throttling requests (Retry-After 7 s); try again later");
}

TEST(ErrorMessages, ServerErrorsSayTryLater)
{
    const auto f = describe_answer(503, "<html>down</html>");
    EXPECT_EQ(f.code, "ServiceUnavailable");
    EXPECT_THAT(f.message, HasSubstr("503 ServiceUnavailable"));
    EXPECT_THAT(f.message, HasSubstr("try again later"));
}

TEST(ErrorMessages, ControlCharactersFromManageNeverReachTheLine)
{
    const auto f = describe_answer(400, "{\"code\":\"X\",\"message\":\"a\\nb\\u001b[31mc\"}");
    EXPECT_THAT(f.message, Not(HasSubstr("\n")));
    EXPECT_THAT(f.message, Not(HasSubstr("\x1b")));
}

TEST(ErrorMessages, TransportFailureNamesTheHost)
{
    const auto f = transport_failure("api-na.myconnectwise.net:443", "connect: Connection refused");
    EXPECT_EQ(f.status, 0u);
    EXPECT_EQ(f.message, "cannot reach api-na.myconnectwise.net:443: connect: Connection refused");
}

} // namespace
} // namespace cwhook::manage
