// `cwhook subscriptions ...` as an operator runs it: the real binary as a child process, its
// configuration file pointing at the emulator, stdout/stderr and the exit code checked.
#include "support/harness.hpp"

#include "emulator/emulator.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdio>
#include <sys/wait.h>

namespace cwhook::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct cli_result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs `cwhook <args>` through the shell; args are trusted test text.
cli_result run_cli(const temp_dir& dir, const std::string& args)
{
    const auto out_file = dir.file("stdout.txt");
    const auto err_file = dir.file("stderr.txt");
    const auto command = fmt::format("'{}' {} >'{}' 2>'{}' </dev/null", CWHOOK_BINARY, args, out_file, err_file);
    const int status = std::system(command.c_str());
    cli_result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_file(out_file);
    r.err = read_file(err_file);
    return r;
}

class SubscriptionsCli : public ::testing::Test {
protected:
    void SetUp() override
    {
        emulator::settings es;
        es.tls = true;
        es.state_dir = dir.file("emulator");
        emu = std::make_unique<emulator::emulator>(es);
        auto port = emu->start();
        ASSERT_TRUE(port) << port.error();
        write_config("");
    }

    void write_config(const std::string& extra, const std::string& private_key = {})
    {
        const auto& c = emu->config();
        write_file(config,
                   fmt::format(R"([manage]
site = "{}"
company_id = "{}"
public_key = "{}"
private_key = "{}"
client_id = "{}"
ca_file = "{}"
max_attempts = 1
{}
)",
                               emu->site(), c.company, c.public_key, private_key.empty() ? c.private_key : private_key,
                               c.client_id, emu->ca_file(), extra));
    }

    cli_result run(const std::string& args) { return run_cli(dir, fmt::format("{} --config '{}'", args, config)); }

    temp_dir dir;
    std::unique_ptr<emulator::emulator> emu;
    std::string config = dir.file("cwhook.toml");
};

emulator::callback_entry entry(std::string type, std::string level, std::int64_t object_id, std::string url)
{
    emulator::callback_entry e;
    e.type = std::move(type);
    e.level = std::move(level);
    e.object_id = object_id;
    e.url = std::move(url);
    e.description = "seeded";
    return e;
}

TEST_F(SubscriptionsCli, ListPrintsAnAlignedTable)
{
    emu->add_callback(entry("ticket", "owner", 1, "https://hooks.example.com/callbacks?recordId="));
    emu->add_callback(entry("company", "status", 12345, "https://h/c?recordId="));
    const auto r = run("subscriptions list");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto header = r.out.substr(0, r.out.find('\n'));
    EXPECT_THAT(header, ::testing::StartsWith("ID "));
    EXPECT_THAT(header, HasSubstr("TYPE"));
    EXPECT_THAT(header, HasSubstr("OBJECTID"));
    // Every row starts its URL column where the header's URL starts.
    const auto url_col = header.find("URL");
    std::size_t pos = r.out.find('\n') + 1;
    int rows = 0;
    while (pos < r.out.size()) {
        const auto line = r.out.substr(pos, r.out.find('\n', pos) - pos);
        EXPECT_EQ(line.find("http"), url_col) << line;
        pos += line.size() + 1;
        ++rows;
    }
    EXPECT_EQ(rows, 2);
}

TEST_F(SubscriptionsCli, ListJsonAndTypeFilter)
{
    emu->add_callback(entry("ticket", "owner", 1, "https://h/c?recordId="));
    emu->add_callback(entry("company", "owner", 1, "https://h/c?recordId="));
    const auto r = run("subscriptions list --type company --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr(R"("type":"company")"));
    EXPECT_THAT(r.out, Not(HasSubstr(R"("type":"ticket")")));
    EXPECT_EQ(r.out.front(), '[');
}

TEST_F(SubscriptionsCli, CreateShowDisableEnableDelete)
{
    auto r = run("subscriptions create --type ticket --level board --object-id 4 --url https://h/c "
                 "--description 'board four' --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("does not end in recordId="));
    ASSERT_EQ(emu->callbacks().size(), 1u);
    const auto id = emu->callbacks().front().id;
    EXPECT_EQ(emu->callbacks().front().object_id, 4);

    r = run(fmt::format("subscriptions show {}", id));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("board four"));

    r = run(fmt::format("subscriptions disable {}", id));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(emu->find_callback(id)->inactive);
    r = run(fmt::format("subscriptions enable {} --json", id));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr(R"("inactiveFlag":false)"));
    EXPECT_FALSE(emu->find_callback(id)->inactive);

    r = run(fmt::format("subscriptions delete {}", id));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(emu->callbacks().empty());
}

TEST_F(SubscriptionsCli, DuplicateCreateFailsNamingTheExistingEntry)
{
    const auto id = emu->add_callback(entry("ticket", "owner", 1, "https://h/c?recordId="));
    const auto r = run("subscriptions create --type ticket --level owner --url 'https://h/c?recordId='");
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err,
                HasSubstr(fmt::format("400 ObjectExists: a matching callback entry already exists (id {})", id)));
}

TEST_F(SubscriptionsCli, BadTypeOrLevelIsAUsageErrorBeforeAnyRequest)
{
    auto r = run("subscriptions create --type tickets --level owner --url 'https://h/c?recordId='");
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("unknown type \"tickets\""));
    r = run("subscriptions create --type ticket --level company --url 'https://h/c?recordId='");
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("level \"company\" is not one of type ticket's levels"));
    r = run("subscriptions show notanumber");
    EXPECT_EQ(r.code, 2);
    r = run("subscriptions list --type nope");
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(emu->total_requests(), 0u);
}

TEST_F(SubscriptionsCli, WrongKeyIsAFailureWithAClearMessage)
{
    write_config("", "wrong-private-key");
    const auto r = run("subscriptions list");
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err,
                HasSubstr("401 Unauthorized: check manage.company_id, manage.public_key and manage.private_key"));
    EXPECT_THAT(r.err, Not(HasSubstr("wrong-private-key")));
}

TEST_F(SubscriptionsCli, TypesNeedsNoConfiguration)
{
    const auto r = run_cli(dir, "subscriptions types");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("ticket"));
    EXPECT_THAT(r.out, HasSubstr("owner, board, project, phase, status, ticket, integratortag"));
}

TEST_F(SubscriptionsCli, SyncAppliesThenReportsInSync)
{
    write_config(R"(
[[subscriptions]]
type = "ticket"
level = "owner"
url = "https://hooks.example.com/callbacks?recordId="
description = "tickets"
)");
    emu->add_callback(entry("contact", "owner", 1, "https://hooks.example.com/callbacks?recordId="));

    auto r = run("subscriptions sync --dry-run");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("create"));
    EXPECT_THAT(r.out, HasSubstr("delete-if-prune"));
    EXPECT_EQ(emu->callbacks().size(), 1u);

    r = run("subscriptions sync");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("created (id"));
    EXPECT_EQ(emu->callbacks().size(), 2u);

    r = run("subscriptions sync --prune --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr(R"("action":"delete")"));
    EXPECT_EQ(emu->callbacks().size(), 1u);

    r = run("subscriptions sync");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("in sync: 0 create, 0 update, 0 re-enable, 0 delete"));
}

} // namespace
} // namespace cwhook::test
