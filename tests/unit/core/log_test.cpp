#include "core/log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::log {
namespace {

// Captures every emitted line; restores the process-wide defaults afterwards so that the
// order of tests does not matter.
class Log : public ::testing::Test {
protected:
    void SetUp() override
    {
        set_sink([this](std::string_view line) { lines_.emplace_back(line); });
        configure(level::debug, format::text);
    }

    void TearDown() override
    {
        set_sink(nullptr);
        configure(level::info, format::text);
    }

    const std::string& only_line() const
    {
        EXPECT_EQ(lines_.size(), 1U);
        static const std::string none;
        return lines_.empty() ? none : lines_.front();
    }

    std::vector<std::string> lines_;
};

std::size_t newlines(std::string_view s)
{
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

bool has_raw_control_byte(std::string_view s)
{
    // The terminating newline is the only control byte a line may carry.
    s.remove_suffix(1);
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// A value a hostile client could send in a header, for each kind of control byte.
const std::vector<std::string> hostile_values = {
    "a\nts=2020-01-01T00:00:00.000Z error forged=1",
    "a\r\nforged",
    "a\rforged",
    std::string("a\0b", 3),
    "a\x1b[31mred",
    "a\x7f" "b",
    "a\tb",
    "a\x0b\x0c" "b",
};

TEST_F(Log, TextLineHasTimestampLevelMessageAndFields)
{
    info("listening", {{"address", "127.0.0.1:8080"}, {"port", 8080}});
    static const std::regex shape(
        R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z info listening address=127\.0\.0\.1:8080 port=8080\n)");
    EXPECT_TRUE(std::regex_match(only_line(), shape)) << only_line();
}

TEST_F(Log, EachLevelWritesItsOwnName)
{
    const struct {
        level lvl;
        std::string_view name;
    } cases[] = {{level::error, " error m\n"}, {level::warn, " warn m\n"}, {level::info, " info m\n"},
                 {level::debug, " debug m\n"}};
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        lines_.clear();
        write(c.lvl, "m");
        EXPECT_TRUE(only_line().ends_with(c.name)) << only_line();
    }
}

TEST_F(Log, LevelFilterDropsMoreVerboseLines)
{
    configure(level::warn, format::text);
    debug("d");
    info("i");
    warn("w");
    error("e");
    ASSERT_EQ(lines_.size(), 2U);
    EXPECT_TRUE(lines_[0].ends_with(" warn w\n"));
    EXPECT_TRUE(lines_[1].ends_with(" error e\n"));
}

TEST_F(Log, EnabledFollowsConfiguredLevel)
{
    const struct {
        level configured;
        level asked;
        bool enabled;
    } cases[] = {
        {level::error, level::error, true}, {level::error, level::warn, false},
        {level::warn, level::warn, true},   {level::warn, level::info, false},
        {level::info, level::warn, true},   {level::info, level::debug, false},
        {level::debug, level::debug, true}, {level::debug, level::error, true},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(to_string(c.configured)) + " asked " + std::string(to_string(c.asked)));
        configure(c.configured, format::text);
        EXPECT_EQ(enabled(c.asked), c.enabled);
    }
}

TEST_F(Log, TextPlainValuesAreWrittenBare)
{
    info("m", {{"k", "abc-123/x:y"}});
    EXPECT_TRUE(only_line().ends_with(" m k=abc-123/x:y\n")) << only_line();
}

TEST_F(Log, TextAmbiguousValuesAreQuoted)
{
    const struct {
        std::string_view value;
        std::string_view written;
    } cases[] = {
        {"", R"(k="")"},
        {"a b", R"(k="a b")"},
        {"a=b", R"(k="a=b")"},
        {R"(a"b)", R"(k="a\"b")"},
        {R"(a\b)", R"(k="a\\b")"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.value);
        lines_.clear();
        info("m", {{"k", c.value}});
        EXPECT_TRUE(only_line().ends_with(std::string(" m ") + std::string(c.written) + "\n")) << only_line();
    }
}

TEST_F(Log, TextHostileValueCannotForgeASecondLine)
{
    for (const auto& v : hostile_values) {
        SCOPED_TRACE(testing::PrintToString(v));
        lines_.clear();
        warn("request", {{"user_agent", v}, {"after", "x"}});
        const auto& line = only_line();
        EXPECT_EQ(newlines(line), 1U) << line;
        EXPECT_TRUE(line.ends_with(" after=x\n")) << line;
        EXPECT_FALSE(has_raw_control_byte(line)) << line;
    }
}

TEST_F(Log, TextControlBytesAreEscaped)
{
    const struct {
        std::string value;
        std::string_view written;
    } cases[] = {
        {"a\nb", R"(k="a\nb")"},
        {"a\rb", R"(k="a\rb")"},
        {"a\tb", R"(k="a\tb")"},
        {std::string("a\0b", 3), R"(k="a\u0000b")"},
        {"a\x1b" "b", R"(k="a\u001bb")"},
        {"a\x7f" "b", R"(k="a\u007fb")"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(testing::PrintToString(c.value));
        lines_.clear();
        info("m", {{"k", c.value}});
        EXPECT_TRUE(only_line().ends_with(std::string(" m ") + std::string(c.written) + "\n")) << only_line();
    }
}

TEST_F(Log, NullCStringValueIsEmpty)
{
    const char* missing = nullptr;
    info("m", {{"k", missing}});
    EXPECT_TRUE(only_line().ends_with(R"( m k="")" "\n")) << only_line();
}

TEST_F(Log, NumericFieldsAreFormatted)
{
    info("m", {{"n", 42}, {"neg", -3}, {"big", 18446744073709551615ULL}, {"ratio", 1.5}});
    EXPECT_TRUE(only_line().ends_with(" m n=42 neg=-3 big=18446744073709551615 ratio=1.500\n")) << only_line();
}

TEST_F(Log, SyslogPrefixCarriesJournaldPriorityAndNoTimestamp)
{
    configure(level::debug, format::text, true);
    const struct {
        level lvl;
        std::string_view line;
    } cases[] = {
        {level::error, "<3>m k=v\n"},
        {level::warn, "<4>m k=v\n"},
        {level::info, "<6>m k=v\n"},
        {level::debug, "<7>m k=v\n"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.line);
        lines_.clear();
        write(c.lvl, "m", {{"k", "v"}});
        EXPECT_EQ(only_line(), c.line);
    }
}

TEST_F(Log, SyslogPrefixStillEscapesValues)
{
    configure(level::info, format::text, true);
    info("m", {{"k", "a\n<3>forged"}});
    EXPECT_EQ(only_line(), "<6>m k=\"a\\n<3>forged\"\n");
}

TEST_F(Log, JsonLineHasTimestampLevelMessageAndFields)
{
    configure(level::info, format::json);
    info("listening", {{"address", "127.0.0.1:8080"}, {"port", 8080}});
    static const std::regex shape(
        R"(\{"ts":"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z","level":"info","msg":"listening",)"
        R"("address":"127\.0\.0\.1:8080","port":"8080"\}\n)");
    EXPECT_TRUE(std::regex_match(only_line(), shape)) << only_line();
}

TEST_F(Log, JsonEscapesValues)
{
    configure(level::info, format::json);
    const struct {
        std::string value;
        std::string_view written;
    } cases[] = {
        {R"(a"b)", R"("k":"a\"b"})"},
        {R"(a\b)", R"("k":"a\\b"})"},
        {"a\nb", R"("k":"a\nb"})"},
        {"a\rb", R"("k":"a\rb"})"},
        {"a\tb", R"("k":"a\tb"})"},
        {std::string("a\0b", 3), R"("k":"a\u0000b"})"},
        {"a\x01" "b", R"("k":"a\u0001b"})"},
        {"a\x7f" "b", R"("k":"a\u007fb"})"},
        {"caf\xc3\xa9", "\"k\":\"caf\xc3\xa9\"}"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(testing::PrintToString(c.value));
        lines_.clear();
        info("m", {{"k", c.value}});
        EXPECT_TRUE(only_line().ends_with(std::string(c.written) + "\n")) << only_line();
    }
}

TEST_F(Log, JsonEscapesMessageAndKeys)
{
    configure(level::info, format::json);
    info("a\"\n", {{"k\"\n", "v"}});
    EXPECT_TRUE(only_line().ends_with(R"("msg":"a\"\n","k\"\n":"v"})" "\n")) << only_line();
}

TEST_F(Log, JsonHostileValueCannotForgeASecondLine)
{
    configure(level::info, format::json);
    for (const auto& v : hostile_values) {
        SCOPED_TRACE(testing::PrintToString(v));
        lines_.clear();
        warn("request", {{"user_agent", v}, {"after", "x"}});
        const auto& line = only_line();
        EXPECT_EQ(newlines(line), 1U) << line;
        EXPECT_TRUE(line.ends_with(R"(,"after":"x"})" "\n")) << line;
        EXPECT_FALSE(has_raw_control_byte(line)) << line;
    }
}

TEST_F(Log, JsonLinesCarryNoSyslogPrefix)
{
    configure(level::info, format::json, true);
    info("m");
    EXPECT_TRUE(only_line().starts_with(R"({"ts":")")) << only_line();
}

TEST_F(Log, NullSinkRestoresStderr)
{
    set_sink(nullptr);
    testing::internal::CaptureStderr();
    info("to-stderr", {{"k", "v"}});
    const auto err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(err.ends_with(" info to-stderr k=v\n")) << err;
    EXPECT_TRUE(lines_.empty());
}

TEST(LogNames, LevelsRoundTrip)
{
    for (const level l : {level::error, level::warn, level::info, level::debug}) {
        SCOPED_TRACE(to_string(l));
        EXPECT_EQ(parse_level(to_string(l)), l);
    }
}

TEST(LogNames, FormatsRoundTrip)
{
    for (const format f : {format::text, format::json}) {
        SCOPED_TRACE(to_string(f));
        EXPECT_EQ(parse_format(to_string(f)), f);
    }
}

TEST(LogNames, UnknownLevelsAreRefused)
{
    for (const std::string_view s : {"", "WARN", "warning", "Info", "trace", " info"}) {
        SCOPED_TRACE(s);
        EXPECT_FALSE(parse_level(s));
    }
}

TEST(LogNames, UnknownFormatsAreRefused)
{
    for (const std::string_view s : {"", "JSON", "logfmt", "text "}) {
        SCOPED_TRACE(s);
        EXPECT_FALSE(parse_format(s));
    }
}

} // namespace
} // namespace cwhook::log
