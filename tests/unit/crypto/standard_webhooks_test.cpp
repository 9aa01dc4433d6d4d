#include "crypto/standard_webhooks.hpp"

#include <gtest/gtest.h>

using namespace cwhook::crypto;

// The specification's published example (standard-webhooks/standard-webhooks, and Svix's
// libraries that the specification grew from): what a consumer's library will check.
TEST(StandardWebhooks, ReproducesThePublishedExample)
{
    auto key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(key) << key.error();
    EXPECT_EQ(webhook_signature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(StandardWebhooks, EveryPartIsSigned)
{
    auto key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(key);
    const auto base = webhook_signature(*key, "msg_1", 1614265330, "{}");
    EXPECT_NE(webhook_signature(*key, "msg_2", 1614265330, "{}"), base);
    EXPECT_NE(webhook_signature(*key, "msg_1", 1614265331, "{}"), base);
    EXPECT_NE(webhook_signature(*key, "msg_1", 1614265330, "{ }"), base);
}

TEST(StandardWebhooks, SecretsAreCheckedWithoutBeingQuoted)
{
    EXPECT_TRUE(webhook_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")); // prefix optional
    const auto not_base64 = webhook_key("whsec_not base64!");
    ASSERT_FALSE(not_base64);
    EXPECT_EQ(not_base64.error().find("not base64!"), std::string::npos);
    EXPECT_FALSE(webhook_key("whsec_"));
    EXPECT_FALSE(webhook_key(""));
    const auto short_key = webhook_key("whsec_c2hvcnQ="); // "short": 5 bytes
    ASSERT_FALSE(short_key);
    EXPECT_EQ(short_key.error(), "webhook secret has 5 key bytes; 24 to 64 expected");
}
