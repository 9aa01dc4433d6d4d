// The generic loader driven by a table of its own: secret keys (which the real table does not
// have yet), the *_file forms, $CREDENTIALS_DIRECTORY and redaction.
#include "config/detail/key_table.hpp"
#include "config/detail/resolve.hpp"
#include "support/fake_env.hpp"
#include "support/temp_dir.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace cwhook::config::detail {
namespace {

namespace fs = std::filesystem;

struct fake_settings {
    std::string token;
    std::string name = "default";
    std::size_t limit = 1;
    std::vector<std::string> hosts{};
    double ratio = 0.5;
    std::vector<millis> delays{};
};

using make = make_key<fake_settings>;

const std::vector<key<fake_settings>>& fake_keys()
{
    static const std::vector<key<fake_settings>> table{
        make::secret(
            "admin", "token", [](auto& s) -> auto& { return s.token; },
            [](std::string_view t) -> std::optional<std::string> {
                if (t.size() < 4) {
                    return "too short";
                }
                return std::nullopt;
            }),
        make::string(
            "admin", "name", [](auto& s) -> auto& { return s.name; }),
        make::count(
            "limits", "limit", [](auto& s) -> auto& { return s.limit; }, 1),
        make::list(
            "limits", "hosts", [](auto& s) -> auto& { return s.hosts; }),
        make::number(
            "limits", "ratio", [](auto& s) -> auto& { return s.ratio; }, 0, 1),
        make::durations(
            "limits", "delays", [](auto& s) -> auto& { return s.delays; }, 1, 3, millis{0}, millis{60'000}),
    };
    return table;
}

using test::temp_dir;

using test::fake_env;

outcome<fake_settings> resolve_text(const std::string& toml, std::map<std::string, std::string> env = {})
{
    const auto doc = parse_toml(toml, "test.toml");
    if (!doc) {
        return {boost::system::in_place_error, doc.error()};
    }
    return resolve(fake_keys(), &*doc, fake_env(std::move(env)));
}

std::string toml_string(const std::string& s) { return quote(s); }

TEST(Resolve, SecretGivenDirectly)
{
    const auto r = resolve_text("[admin]\ntoken = \"s3cret\"\n");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "s3cret");
}

TEST(Resolve, SecretFromFileStripsTrailingNewline)
{
    temp_dir dir;
    const auto file = dir.write("token", "s3cret\n");
    const auto r = resolve_text("[admin]\ntoken_file = " + toml_string(file) + "\n");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "s3cret");
}

TEST(Resolve, SecretFileRelativeIsFoundInCredentialsDirectory)
{
    temp_dir dir;
    dir.write("cwhook-test-token", "from-credentials\r\n");
    const auto r = resolve_text("[admin]\ntoken_file = \"cwhook-test-token\"\n",
                                {{"CREDENTIALS_DIRECTORY", dir.path().string()}});
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "from-credentials");
}

TEST(Resolve, SecretFileFoundAsGivenBeatsCredentialsDirectory)
{
    temp_dir given;
    temp_dir credentials;
    const auto file = given.write("token", "as-given");
    credentials.write("token", "from-credentials");
    const auto relative = fs::relative(file).string();
    const auto r = resolve_text("[admin]\ntoken_file = " + toml_string(relative) + "\n",
                                {{"CREDENTIALS_DIRECTORY", credentials.path().string()}});
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "as-given");
}

TEST(Resolve, SecretFileMissing)
{
    temp_dir dir;
    const auto missing = dir.file("token");
    const auto r = resolve_text("[admin]\ntoken_file = " + toml_string(missing) + "\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "admin.token_file: " + missing + ": no such file");
}

TEST(Resolve, SecretFileMissingInCredentialsDirectory)
{
    temp_dir dir;
    const auto r = resolve_text("[admin]\ntoken_file = \"cwhook-test-token\"\n",
                                {{"CREDENTIALS_DIRECTORY", dir.path().string()}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "admin.token_file: cwhook-test-token: no such file (nor in " + dir.path().string() + ")");
}

TEST(Resolve, SecretAndSecretFileBothGiven)
{
    temp_dir dir;
    const auto file = dir.write("token", "s3cret");
    const auto r = resolve_text("[admin]\ntoken = \"abcd\"\ntoken_file = " + toml_string(file) + "\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "admin.token and admin.token_file: give one, not both");
}

TEST(Resolve, SecretFileKeyMustBeAString)
{
    const auto r = resolve_text("[admin]\ntoken_file = 3\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "admin.token_file: expected a string");
}

TEST(Resolve, FileSuffixOnNonSecretKeyIsUnknown)
{
    const auto r = resolve_text("[admin]\nname_file = \"x\"\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "admin.name_file: unknown key");
}

TEST(Resolve, SecretFileFromEnvironment)
{
    temp_dir dir;
    const auto file = dir.write("token", "from-env-file\n");
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_ADMIN_TOKEN_FILE", file}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "from-env-file");
}

TEST(Resolve, SecretAndSecretFileBothInEnvironment)
{
    const auto r =
        resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_ADMIN_TOKEN", "abcd"}, {"CWHOOK_ADMIN_TOKEN_FILE", "/x"}}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "CWHOOK_ADMIN_TOKEN and CWHOOK_ADMIN_TOKEN_FILE: give one, not both");
}

TEST(Resolve, EnvironmentSecretFileBeatsFileSecret)
{
    temp_dir dir;
    const auto file = dir.write("token", "from-env-file");
    const auto r = resolve_text("[admin]\ntoken = \"from-toml\"\n", {{"CWHOOK_ADMIN_TOKEN_FILE", file}});
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "from-env-file");
}

TEST(Resolve, OverriddenSecretFileIsNotRead)
{
    const auto r = resolve_text("[admin]\ntoken_file = \"/nonexistent/token\"\n", {{"CWHOOK_ADMIN_TOKEN", "from-env"}});
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->token, "from-env");
}

TEST(Resolve, RefusedSecretIsRedactedInTheError)
{
    const auto r = resolve_text("[admin]\ntoken = \"abc\"\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "admin.token: <redacted>: too short");
}

TEST(Resolve, RefusedSecretFromEnvironmentIsRedactedInTheError)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_ADMIN_TOKEN", "abc"}}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "CWHOOK_ADMIN_TOKEN: <redacted>: too short");
}

TEST(Resolve, RenderRedactsSetSecret)
{
    fake_settings s;
    s.token = "s3cret";
    const auto text = render(fake_keys(), s);
    EXPECT_THAT(text, ::testing::HasSubstr("token = \"<redacted>\"\n"));
    EXPECT_EQ(text.find("s3cret"), std::string::npos);
}

TEST(Resolve, RenderShowsUnsetSecretAsEmpty)
{
    EXPECT_THAT(render(fake_keys(), fake_settings{}), ::testing::HasSubstr("token = \"\"\n"));
}

TEST(Resolve, RenderWritesSectionsInTableOrder)
{
    EXPECT_EQ(render(fake_keys(), fake_settings{}),
              "[admin]\ntoken = \"\"\nname = \"default\"\n\n[limits]\nlimit = 1\nhosts = []\nratio = 0.5\n"
              "delays = []\n");
}

TEST(Resolve, EnvironmentNameIsUpperCased)
{
    EXPECT_EQ(env_name("verify", "key_cache_ttl"), "CWHOOK_VERIFY_KEY_CACHE_TTL");
}

TEST(Resolve, CommaSeparatedListIsTrimmed)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_HOSTS", " a , b,c "}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->hosts, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Resolve, TomlArrayFromEnvironment)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_HOSTS", R"( ["a,b", "c"] )"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->hosts, (std::vector<std::string>{"a,b", "c"}));
}

TEST(Resolve, BrokenTomlArrayFromEnvironment)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_HOSTS", R"(["a")"}}));
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error(), ::testing::StartsWith(R"(CWHOOK_LIMITS_HOSTS: "[\"a\"": )"));
}

TEST(Resolve, IntegerFromEnvironmentOutOfRange)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_LIMIT", "99999999999999999999"}}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), R"(CWHOOK_LIMITS_LIMIT: "99999999999999999999": out of range)");
}

TEST(Resolve, IntegerFromEnvironmentWithTrailingText)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_LIMIT", "12k"}}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), R"(CWHOOK_LIMITS_LIMIT: "12k": not an integer)");
}

TEST(Resolve, NumberTakesAFloatOrAnInteger)
{
    const auto r = resolve_text("[limits]\nratio = 0.25\n");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->ratio, 0.25);
    const auto whole = resolve_text("[limits]\nratio = 1\n");
    ASSERT_TRUE(whole) << whole.error();
    EXPECT_EQ(whole->ratio, 1.0);
    // A float is not an integer.
    EXPECT_EQ(resolve_text("[limits]\nlimit = 2.0\n").error(), "limits.limit: expected an integer");
    EXPECT_EQ(resolve_text("[limits]\nratio = \"0.5\"\n").error(), "limits.ratio: expected a number");
}

TEST(Resolve, NumberOutOfRange)
{
    EXPECT_EQ(resolve_text("[limits]\nratio = 1.5\n").error(), "limits.ratio: 1.5: must be at most 1");
    EXPECT_EQ(resolve_text("[limits]\nratio = -0.5\n").error(), "limits.ratio: -0.5: must not be negative");
    EXPECT_EQ(resolve_text("[limits]\nratio = nan\n").error(), "limits.ratio: nan: expected a finite number");
    EXPECT_EQ(resolve_text("[limits]\nratio = -inf\n").error(), "limits.ratio: -inf: expected a finite number");
}

TEST(Resolve, NumberFromEnvironment)
{
    const auto r = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_RATIO", "0.125"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->ratio, 0.125);
    EXPECT_EQ(resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_RATIO", "half"}})).error(),
              R"(CWHOOK_LIMITS_RATIO: "half": not a number)");
    EXPECT_EQ(resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_RATIO", "0.5x"}})).error(),
              R"(CWHOOK_LIMITS_RATIO: "0.5x": not a number)");
}

TEST(Resolve, NumberRendersToReadBackTheSame)
{
    fake_settings s;
    s.ratio = 0.1;
    EXPECT_THAT(render(fake_keys(), s), ::testing::HasSubstr("ratio = 0.1\n"));
    s.ratio = 1;
    EXPECT_THAT(render(fake_keys(), s), ::testing::HasSubstr("ratio = 1\n"));
}

TEST(Resolve, DurationsList)
{
    const auto r = resolve_text("[limits]\ndelays = [\"0\", \"1s500ms\", \"1m\"]\n");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->delays, (std::vector<millis>{millis{0}, millis{1500}, millis{60'000}}));
    EXPECT_THAT(render(fake_keys(), *r), ::testing::HasSubstr("delays = [\"0s\", \"1s500ms\", \"1m\"]\n"));
    const auto env = resolve(fake_keys(), nullptr, fake_env({{"CWHOOK_LIMITS_DELAYS", "5s, 10s"}}));
    ASSERT_TRUE(env) << env.error();
    EXPECT_EQ(env->delays, (std::vector<millis>{millis{5000}, millis{10'000}}));
}

TEST(Resolve, DurationsListIsChecked)
{
    EXPECT_EQ(resolve_text("[limits]\ndelays = []\n").error(), "limits.delays: must not be empty");
    EXPECT_EQ(resolve_text("[limits]\ndelays = [\"1s\", \"1s\", \"1s\", \"1s\"]\n").error(),
              "limits.delays: has 4 entries; at most 3 are allowed");
    EXPECT_EQ(resolve_text("[limits]\ndelays = [\"1s\", \"soon\"]\n").error(),
              R"(limits.delays: "soon": expected a duration like 500ms, 3s, 1h)");
    EXPECT_EQ(resolve_text("[limits]\ndelays = [\"2m\"]\n").error(), R"(limits.delays: "2m": must be at most 1m)");
    EXPECT_EQ(resolve_text("[limits]\ndelays = [1]\n").error(), "limits.delays: expected an array of strings");
}

TEST(Resolve, QuoteEscapesControlCharacters)
{
    EXPECT_EQ(quote("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
}

} // namespace
} // namespace cwhook::config::detail
