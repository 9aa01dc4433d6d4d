#include "manage/api.hpp"
#include "manage/callback.hpp"
#include "manage/types.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace cwhook::manage {
namespace {

using ::testing::HasSubstr;

std::string fixture(const std::string& name)
{
    std::ifstream in{std::string{CWHOOK_FIXTURES_DIR} + "/" + name, std::ios::binary};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(Site, CloudSitesMapToTheirApiHost)
{
    EXPECT_EQ(api_host_for("na.myconnectwise.net"), "api-na.myconnectwise.net");
    EXPECT_EQ(api_host_for("EU.myconnectwise.net"), "api-eu.myconnectwise.net");
    EXPECT_EQ(api_host_for("aus.myconnectwise.net"), "api-aus.myconnectwise.net");
    EXPECT_EQ(api_host_for("za.myconnectwise.net"), "api-za.myconnectwise.net");
    EXPECT_EQ(api_host_for("staging.connectwisedev.com"), "api-staging.connectwisedev.com");
    EXPECT_EQ(api_host_for("manage.example.com"), "manage.example.com");
    EXPECT_EQ(api_host_for("api-na.myconnectwise.net"), "api-na.myconnectwise.net");
}

TEST(Site, ParsesHostPortAndSchemes)
{
    auto a = parse_site("na.myconnectwise.net");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->tls);
    EXPECT_EQ(a->port, 443);
    auto b = parse_site("https://manage.example.com:8443/");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->host, "manage.example.com");
    EXPECT_EQ(b->port, 8443);
    auto c = parse_site("http://127.0.0.1:8080");
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->tls);
    EXPECT_EQ(c->port, 8080);
    EXPECT_EQ(c->display(), "http://127.0.0.1:8080");
    auto d = parse_site("[::1]:9000");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->host, "::1");
    EXPECT_EQ(d->display(), "https://[::1]:9000");
}

TEST(Site, RefusesWhatIsNotAHost)
{
    EXPECT_FALSE(parse_site(""));
    EXPECT_FALSE(parse_site("ftp://x"));
    EXPECT_FALSE(parse_site("https://user@host"));
    EXPECT_FALSE(parse_site("host:99999"));
    EXPECT_FALSE(parse_site("host:abc"));
}

TEST(Site, PlainHttpOnlyToLoopback)
{
    for (const std::string_view site : {"http://127.0.0.1:8080", "http://127.255.0.9", "http://[::1]:8080",
                                        "http://localhost", "http://LocalHost:9000", "http://[::ffff:127.0.0.1]"}) {
        SCOPED_TRACE(site);
        EXPECT_TRUE(parse_site(site));
    }
    for (const std::string_view site : {"http://manage.example.com", "http://10.1.2.3:8080", "http://[fd00::1]",
                                        "http://128.0.0.1", "http://localhost.evil.example", "http://0.0.0.0"}) {
        SCOPED_TRACE(site);
        const auto r = parse_site(site);
        ASSERT_FALSE(r);
        EXPECT_THAT(r.error(), HasSubstr("plain http:// is allowed only to a loopback host"));
    }
}

TEST(Site, ApiHostInheritingPlainHttpMustBeLoopback)
{
    settings s;
    s.site = "http://127.0.0.1:8080";
    s.api_host = "api.example.com";
    const auto ep = api_endpoint(s);
    ASSERT_FALSE(ep);
    EXPECT_THAT(ep.error(), HasSubstr("manage.api_host: \"api.example.com\""));
}

TEST(Site, ApiEndpointUsesApiHostOverride)
{
    settings s;
    s.site = "na.myconnectwise.net";
    auto ep = api_endpoint(s);
    ASSERT_TRUE(ep);
    EXPECT_EQ(ep->host, "api-na.myconnectwise.net");
    s.site = "http://127.0.0.1:8080";
    s.api_host = "localhost";
    ep = api_endpoint(s);
    ASSERT_TRUE(ep);
    EXPECT_EQ(ep->host, "localhost");
    EXPECT_FALSE(ep->tls);
    EXPECT_EQ(ep->port, 8080);
}

TEST(Auth, BasicIsCompanyPlusPublicColonPrivate)
{
    settings s;
    s.company_id = "companyid";
    s.public_key = "publickey";
    s.private_key = "privatekey";
    // The API guide's own example value.
    EXPECT_EQ(basic_auth(s), "Basic Y29tcGFueWlkK3B1YmxpY2tleTpwcml2YXRla2V5");
}

TEST(Auth, MissingKeysAreNamed)
{
    settings s;
    s.site = "na.myconnectwise.net";
    s.company_id = "x";
    EXPECT_EQ(missing_keys(s).value(), "manage.public_key, manage.private_key, manage.client_id: not set");
}

TEST(Model, FixtureResponseParses)
{
    const auto c = parse_callback(fixture("api-system-callbacks-contacts-response.json"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->id, 26559);
    EXPECT_EQ(c->type, "contact");
    EXPECT_EQ(c->level, "owner");
    EXPECT_EQ(c->object_id, 1);
    EXPECT_EQ(c->url, "https://test.com/webhook?recordId=");
    EXPECT_FALSE(c->inactive);
    EXPECT_EQ(c->updated_by, "Cobalt");
}

TEST(Model, ListAndCountAndCompanyInfo)
{
    const auto list = parse_callbacks("[" + fixture("api-system-callbacks-tickets-response.json") + "," +
                                      fixture("api-system-callbacks-contacts-response.json") + "]");
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].id, 26552);
    EXPECT_FALSE(parse_callbacks(R"({"id":1})"));
    EXPECT_EQ(parse_count(R"({"count": 2345})").value(), 2345);
    EXPECT_EQ(parse_company_info(R"({"CompanyName":"x","Codebase":"v2025_1/","VersionCode":"v2025.1"})").value(),
              "v2025_1/");
    EXPECT_EQ(parse_company_info(R"({"Codebase":"v2025_1"})").value(), "v2025_1/");
    EXPECT_FALSE(parse_company_info("null"));
    EXPECT_FALSE(parse_company_info(R"({"Codebase":"../../evil/"})"));
    EXPECT_FALSE(parse_company_info(R"({"Codebase":"a/b?c"})"));
}

TEST(Model, CreateBodyHasTheFixtureShape)
{
    subscription s{"ticket", "owner", 1, "https://test.com/webhook?recordId=", "tickets"};
    const auto body = create_body(s, false);
    EXPECT_THAT(body, HasSubstr(R"("type":"ticket")"));
    EXPECT_THAT(body, HasSubstr(R"("level":"owner")"));
    EXPECT_THAT(body, HasSubstr(R"("objectId":1)"));
    EXPECT_THAT(body, HasSubstr(R"("inactiveFlag":false)"));
    EXPECT_EQ(patch_body(false, std::nullopt), R"([{"op":"replace","path":"inactiveFlag","value":false}])");
}

TEST(Types, TableValidatesTypeAndLevel)
{
    EXPECT_FALSE(check_type_level("ticket", "board"));
    EXPECT_FALSE(check_type_level("Ticket", "OWNER"));
    EXPECT_THAT(check_type_level("ticket", "company").value(), HasSubstr("not one of type ticket's levels"));
    EXPECT_THAT(check_type_level("tickets", "owner").value(), HasSubstr("unknown type \"tickets\""));
    EXPECT_EQ(callback_types().size(), 15u);
}

TEST(Types, OwnerImpliesObjectIdOneOthersNeedOne)
{
    subscription s{"Ticket", "Owner", 0, "https://h/c?recordId=", ""};
    EXPECT_FALSE(normalize(s, false));
    EXPECT_EQ(s.object_id, 1);
    EXPECT_EQ(s.type, "ticket");
    subscription t{"ticket", "owner", 5, "https://h/c?recordId=", ""};
    EXPECT_TRUE(normalize(t, true));
    subscription b{"ticket", "board", 0, "https://h/c?recordId=", ""};
    EXPECT_THAT(normalize(b, false).value(), HasSubstr("needs object_id"));
    subscription u{"ticket", "owner", 1, "ftp://h", ""};
    EXPECT_TRUE(normalize(u, false));
    subscription d{"ticket", "owner", 1, "https://h", std::string(101, 'x')};
    EXPECT_TRUE(normalize(d, false));
}

TEST(Types, RecordIdWarning)
{
    EXPECT_FALSE(lacks_record_id("https://h/c?recordId="));
    EXPECT_FALSE(lacks_record_id("https://h/c?RECORDID="));
    EXPECT_TRUE(lacks_record_id("https://h/c"));
}

} // namespace
} // namespace cwhook::manage
