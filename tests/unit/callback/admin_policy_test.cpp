#include "callback/admin_policy.hpp"
#include "callback/admin_token.hpp"
#include "client/https_client.hpp"
#include "core/error.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace cwhook::callback {
namespace {

namespace net = boost::asio;

admin_policy policy_for(const admin_settings& s, const std::vector<std::string>& bound)
{
    auto p = admin_policy::make(s);
    CWHOOK_CHECK(p.has_value());
    std::vector<net::ip::tcp::endpoint> eps;
    for (const auto& a : bound) {
        eps.emplace_back(net::ip::make_address(a), 9090);
    }
    p->add_listener(eps);
    return *p;
}

client::request target(std::string_view url)
{
    auto r = client::request_for_url(url);
    CWHOOK_CHECK(r.has_value());
    return *r;
}

TEST(AdminPolicy, HostPortParsing)
{
    EXPECT_EQ(parse_host_port("Example.COM.")->host, "example.com");
    EXPECT_FALSE(parse_host_port("example.com")->port);
    EXPECT_EQ(*parse_host_port("127.0.0.1:9090")->port, 9090);
    EXPECT_EQ(parse_host_port("[0:0::1]:80")->host, "::1");
    for (const char* bad : {"", ":80", "a b", "http://x", "x:0", "x:65536", "[::1", "[::1]x", "x/y", "x:80:1"}) {
        EXPECT_FALSE(parse_host_port(bad)) << bad;
    }
}

TEST(AdminPolicy, LoopbackListenerAcceptsItsLoopbackNamesOnly)
{
    const auto p = policy_for({}, {"127.0.0.1"});
    for (const char* ok : {"127.0.0.1:9090", "127.0.0.1", "localhost:9090", "LOCALHOST", "[::1]:9090", "[::1]",
                           "localhost:8000"}) {
        EXPECT_TRUE(p.host_allowed(ok)) << ok;
    }
    // A rebinding page sends its own name; anything unparsable is refused too.
    for (const char* bad : {"evil.example", "evil.example:9090", "", "127.0.0.1.evil.example", "10.0.0.1:9090",
                            "localhost.evil.example", "a b"}) {
        EXPECT_FALSE(p.host_allowed(bad)) << bad;
    }
}

TEST(AdminPolicy, ListedHostsAreAccepted)
{
    admin_settings s;
    s.hosts = {"cwhook.internal", "ops.example.com:8443"};
    const auto p = policy_for(s, {"10.1.2.3"});
    EXPECT_TRUE(p.host_allowed("10.1.2.3:9090"));
    EXPECT_TRUE(p.host_allowed("cwhook.internal:9090"));
    EXPECT_TRUE(p.host_allowed("ops.example.com:8443"));
    EXPECT_FALSE(p.host_allowed("ops.example.com:9090"));
    EXPECT_FALSE(p.host_allowed("localhost:9090"));  // not a loopback listener
    EXPECT_FALSE(p.host_allowed("127.0.0.1:9090"));
}

TEST(AdminPolicy, UnspecifiedListenerAcceptsIpLiterals)
{
    const auto p = policy_for({}, {"0.0.0.0"});
    EXPECT_TRUE(p.host_allowed("192.0.2.7:9090"));
    EXPECT_TRUE(p.host_allowed("[2001:db8::1]:9090"));
    EXPECT_TRUE(p.host_allowed("localhost"));
    EXPECT_FALSE(p.host_allowed("evil.example"));
}

TEST(AdminPolicy, OriginsMustBeListed)
{
    admin_settings s;
    s.origins = {"https://Ops.Example.com:443/", "http://127.0.0.1:3000"};
    const auto p = policy_for(s, {"127.0.0.1"});
    EXPECT_TRUE(p.origin_allowed("https://ops.example.com"));
    EXPECT_TRUE(p.origin_allowed("http://127.0.0.1:3000"));
    EXPECT_FALSE(p.origin_allowed("https://evil.example"));
    EXPECT_FALSE(p.origin_allowed("http://ops.example.com"));
    EXPECT_FALSE(p.origin_allowed("null"));
    EXPECT_FALSE(p.origin_allowed(""));
    EXPECT_FALSE(policy_for({}, {"127.0.0.1"}).origin_allowed("http://127.0.0.1:9090"));
}

TEST(AdminPolicy, JsonContentTypeWithParameters)
{
    EXPECT_TRUE(is_json_content_type("application/json"));
    EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
    EXPECT_TRUE(is_json_content_type(" application/json ;charset=UTF-8"));
    for (const char* bad : {"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                            "multipart/form-data; boundary=x", "application/jsonx", "application/json-seq"}) {
        EXPECT_FALSE(is_json_content_type(bad)) << bad;
    }
}

TEST(AdminPolicy, ReplayTargetsAreOffUntilListed)
{
    const auto none = policy_for({}, {"127.0.0.1"});
    const auto why = none.replay_target_problem(target("https://hooks.example.com/in"));
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("admin.replay_targets"), std::string::npos) << *why;

    admin_settings s;
    s.replay_targets = {"hooks.example.com", "127.0.0.1:8081", "[::1]:8082"};
    const auto p = policy_for(s, {"127.0.0.1"});
    EXPECT_FALSE(p.replay_target_problem(target("https://hooks.example.com/in")));
    EXPECT_FALSE(p.replay_target_problem(target("http://HOOKS.example.com/in")));  // port 80, the default
    EXPECT_FALSE(p.replay_target_problem(target("http://127.0.0.1:8081/callbacks")));
    EXPECT_FALSE(p.replay_target_problem(target("http://[::1]:8082/")));
    EXPECT_TRUE(p.replay_target_problem(target("https://hooks.example.com:8443/in")));
    EXPECT_TRUE(p.replay_target_problem(target("http://127.0.0.1:6379/")));
    EXPECT_TRUE(p.replay_target_problem(target("http://127.0.0.1/")));
    EXPECT_TRUE(p.replay_target_problem(target("http://localhost:8081/")));  // the exact host, not an alias
    EXPECT_TRUE(p.replay_target_problem(target("https://evil.example/")));
    EXPECT_EQ(*p.replay_target_problem(target("https://evil.example/")),
              "to: evil.example:443 is not in admin.replay_targets");
}

TEST(AdminPolicy, BadEntriesNameTheirKey)
{
    admin_settings s;
    s.hosts = {"a/b"};
    EXPECT_EQ(admin_policy::make(s).error(), R"(admin.hosts: "a/b": expected a host or host:port)");
    s = {};
    s.origins = {"*"};
    EXPECT_EQ(admin_policy::make(s).error(), R"(admin.origins: "*": expected an origin like https://admin.example.com)");
    s = {};
    s.replay_targets = {"https://x/"};
    EXPECT_EQ(admin_policy::make(s).error(), R"(admin.replay_targets: "https://x/": expected a host or host:port)");
}

class AdminToken : public ::testing::Test {
protected:
    test::temp_dir tmp_;
    std::filesystem::path dir_ = tmp_.path();
};

TEST_F(AdminToken, FileSitsNextToTheDatabase)
{
    EXPECT_EQ(admin_token_file("./var/cwhook.db"), "./var/admin-token");
    EXPECT_EQ(admin_token_file("/var/lib/cwhook/cwhook.db"), "/var/lib/cwhook/admin-token");
    EXPECT_EQ(admin_token_file("cwhook.db"), "admin-token");
}

TEST_F(AdminToken, MadeOnceWithMode0600AndReused)
{
    const auto path = (dir_ / "state" / "admin-token").string();
    EXPECT_FALSE(read_admin_token(path));
    const auto first = load_or_create_admin_token(path);
    ASSERT_TRUE(first) << first.error();
    EXPECT_EQ(first->size(), 64u);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    const auto again = load_or_create_admin_token(path);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *first);
    EXPECT_EQ(*read_admin_token(path), *first);
    // Nothing but the token is left in the folder.
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_ / "state"), {}), 1);
}

TEST_F(AdminToken, OpenToOtherUsersIsRefused)
{
    const auto path = (dir_ / "admin-token").string();
    ASSERT_TRUE(load_or_create_admin_token(path));
    ::chmod(path.c_str(), 0640);  // a group of operators: fine
    EXPECT_TRUE(load_or_create_admin_token(path));
    ::chmod(path.c_str(), 0644);
    const auto r = load_or_create_admin_token(path);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("mode 0644"), std::string::npos) << r.error();
}

TEST_F(AdminToken, AnEditedTokenIsTakenAsWritten)
{
    std::filesystem::create_directories(dir_);
    const auto path = (dir_ / "admin-token").string();
    {
        std::ofstream(path) << "chosen-by-the-operator\n";
    }
    ::chmod(path.c_str(), 0600);
    EXPECT_EQ(*load_or_create_admin_token(path), "chosen-by-the-operator");
    {
        std::ofstream(path) << "\n";
    }
    EXPECT_FALSE(load_or_create_admin_token(path));
}

} // namespace
} // namespace cwhook::callback
