#include "callback/key_url.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::callback {

// gtest prints a refusal as its code and text.
void PrintTo(const key_url_refusal& r, std::ostream* os) { *os << describe(r.reason).code << ": " << r.detail; }

namespace {

// docs/PROTOCOL.md section 3: the shape of a key_url, double slash included.
constexpr std::string_view key_path =
    "/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=e17e6674-42f6-4105-9cff-4cd6cb4e62e8";

std::string url(std::string_view authority, std::string_view path = key_path)
{
    return "https://" + std::string(authority) + std::string(path);
}

key_url_policy policy(const std::vector<std::string>& extra = {}, const std::vector<std::string>& companies = {"cobalt"})
{
    auto p = key_url_policy::make(extra, companies);
    CWHOOK_CHECK(p.has_value());
    return *p;
}

void expect_refused(const key_url_policy& p, std::initializer_list<std::string> urls)
{
    for (const auto& u : urls) {
        SCOPED_TRACE(u);
        const auto r = p.check(u);
        EXPECT_FALSE(r) << "accepted as host " << (r ? r->host : "");
    }
}

void expect_refused_because(const key_url_policy& p, std::initializer_list<std::string> urls, std::string_view why)
{
    for (const auto& u : urls) {
        SCOPED_TRACE(u);
        const auto r = p.check(u);
        ASSERT_FALSE(r) << "accepted as host " << r->host;
        EXPECT_EQ(r.error().detail, why);
    }
}

// Accepted URLs

TEST(KeyUrl, AcceptsEveryCloudSiteHost)
{
    const std::vector<std::string_view> protocol_hosts = {
        "na.myconnectwise.net",         "eu.myconnectwise.net",         "au.myconnectwise.net",
        "aus.myconnectwise.net",        "za.myconnectwise.net",         "sandbox-na.myconnectwise.net",
        "sandbox-eu.myconnectwise.net", "sandbox-au.myconnectwise.net", "staging.connectwisedev.com",
    };
    const auto p = policy();
    for (const auto host : protocol_hosts) {
        SCOPED_TRACE(host);
        const auto r = p.check(url(host));
        ASSERT_TRUE(r) << r.error().detail;
        EXPECT_EQ(r->host, host);
        EXPECT_EQ(r->port, 443);
        EXPECT_FALSE(r->operator_listed);
    }
}

TEST(KeyUrl, CloudHostListMatchesProtocol)
{
    const std::vector<std::string_view> protocol_hosts = {
        "na.myconnectwise.net",         "eu.myconnectwise.net",         "au.myconnectwise.net",
        "aus.myconnectwise.net",        "za.myconnectwise.net",         "sandbox-na.myconnectwise.net",
        "sandbox-eu.myconnectwise.net", "sandbox-au.myconnectwise.net", "staging.connectwisedev.com",
    };
    EXPECT_EQ(cloud_key_hosts, protocol_hosts);
}

TEST(KeyUrl, TargetKeepsPathAndQueryExactly)
{
    const auto r = policy().check(url("sandbox-na.myconnectwise.net"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->target, key_path);
}

TEST(KeyUrl, TargetKeepsEncodingAsSent)
{
    const auto r = policy().check(
        url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=Co%20balt&id=1"));
    EXPECT_FALSE(r) << "a company id holds no space";
    const auto encoded = policy().check(
        url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=%43obalt&id=%41"));
    ASSERT_TRUE(encoded) << encoded.error().detail;
    EXPECT_EQ(encoded->target, "/v2025_1//system/callbackkey/index.rails?companyName=%43obalt&id=%41");
    EXPECT_EQ(encoded->company, "Cobalt");
    EXPECT_EQ(encoded->key_id, "A");
}

// The key endpoint: path and query

TEST(KeyUrl, AcceptsOneOrTwoSlashesAfterTheCodebase)
{
    const auto p = policy();
    for (const auto* path : {"/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/v2025_1/system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/v4_6_release//system/callbackkey/index.rails?id=1&companyName=cobalt"}) {
        SCOPED_TRACE(path);
        const auto r = p.check(url("na.myconnectwise.net", path));
        ASSERT_TRUE(r) << r.error().detail;
        EXPECT_EQ(r->key_id, "1");
    }
}

TEST(KeyUrl, RefusesOtherPaths)
{
    const auto p = policy();
    for (const auto* path : {"/?companyName=Cobalt&id=1", "/v2025_1?companyName=Cobalt&id=1",
                             "/v2025_1///system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "//system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/a/b//system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/../system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/v2025_1//system/callbackkey/index.rails/?companyName=Cobalt&id=1",
                             "/v2025_1//System/CallbackKey/index.rails?companyName=Cobalt&id=1",
                             "/v2025_1//apis/3.0/system/callbacks?companyName=Cobalt&id=1",
                             "/v%32025//system/callbackkey/index.rails?companyName=Cobalt&id=1",
                             "/v2025_1//system/callbackkey/index.rails%3F?companyName=Cobalt&id=1"}) {
        SCOPED_TRACE(path);
        const auto r = p.check(url("na.myconnectwise.net", path));
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().reason, refusal::key_url_not_key_endpoint);
    }
}

TEST(KeyUrl, RefusesOtherQueries)
{
    const auto p = policy();
    const std::string base = "/v2025_1//system/callbackkey/index.rails";
    for (const auto* query : {"", "?", "?companyName=Cobalt", "?companyName=Cobalt&id=1&x=2",
                              "?companyName=Cobalt&id=1&id=2", "?companyName=Cobalt&companyName=Cobalt&id=1",
                              "?companyName=Cobalt&id=", "?companyName=Cobalt&id", "?companyname=Cobalt&id=1",
                              "?companyName=Cobalt&id=1&", "?&companyName=Cobalt&id=1"}) {
        SCOPED_TRACE(query);
        const auto r = p.check(url("na.myconnectwise.net", base + query));
        ASSERT_FALSE(r);
        // No query at all names no company; anything else is a malformed key endpoint.
        EXPECT_EQ(r.error().reason,
                  std::string_view(query).empty() ? refusal::company_not_allowed : refusal::key_url_not_key_endpoint);
    }
}

// The company binding: the cloud sites serve every company's key to anyone.

TEST(KeyUrl, RefusesCompaniesNotListed)
{
    const auto p = policy({}, {"cobalt", "acme_corp"});
    const auto evil = p.check(url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=evil&id=1"));
    ASSERT_FALSE(evil);
    EXPECT_EQ(evil.error().reason, refusal::company_not_allowed);
    EXPECT_TRUE(p.check(url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=ACME_Corp&id=1")));
}

TEST(KeyUrl, NoCompanyConfiguredRefusesEverything)
{
    const auto p = policy({}, {});
    EXPECT_FALSE(p.has_companies());
    const auto r = p.check(url("na.myconnectwise.net"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, refusal::company_not_allowed);
}

TEST(KeyUrl, MissingCompanyNameIsNotAllowed)
{
    const auto r = policy().check(url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?id=1"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, refusal::company_not_allowed);
}

TEST(KeyUrl, HostRulesComeFirst)
{
    const auto r = policy({}, {}).check(url("evil.example", "/x?companyName=evil"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, refusal::key_url_not_allowed);
}

TEST(KeyUrl, CacheKeyIsHostCompanyAndId)
{
    const auto p = policy();
    const auto a = p.check(url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=1"));
    const auto b = p.check(url("na.myconnectwise.net", "/v2024_2/system/callbackkey/index.rails?id=1&companyName=COBALT"));
    const auto c = p.check(url("na.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=2"));
    const auto d = p.check(url("eu.myconnectwise.net", "/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=1"));
    ASSERT_TRUE(a && b && c && d);
    EXPECT_EQ(a->cache_key(), b->cache_key());
    EXPECT_NE(a->cache_key(), c->cache_key());
    EXPECT_NE(a->cache_key(), d->cache_key());
}

TEST(KeyUrlPolicy, RefusesBadCompanyEntries)
{
    for (const auto* bad : {"", "co balt", "cobalt\n"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(key_url_policy::make({}, {bad}));
    }
}

TEST(KeyUrl, ExplicitDefaultPortIsAccepted)
{
    const auto r = policy().check(url("na.myconnectwise.net:443"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "na.myconnectwise.net");
    EXPECT_EQ(r->port, 443);
}

TEST(KeyUrl, HostIsCaseInsensitive)
{
    const auto p = policy();
    for (const std::string_view host : {"NA.MyConnectWise.net", "NA.MYCONNECTWISE.NET", "Staging.ConnectWiseDev.com"}) {
        SCOPED_TRACE(host);
        const auto r = p.check(url(host));
        ASSERT_TRUE(r) << r.error().detail;
        EXPECT_EQ(r->host, canonical_host(host));
    }
}

TEST(KeyUrl, TrailingDotIsAccepted)
{
    const auto r = policy().check(url("na.myconnectwise.net."));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "na.myconnectwise.net");
}

TEST(KeyUrl, SchemeIsCaseInsensitive)
{
    const auto r = policy().check("HTTPS://na.myconnectwise.net" + std::string(key_path));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "na.myconnectwise.net");
}

// Refused URLs

TEST(KeyUrl, RefusesNonHttpsScheme)
{
    expect_refused_because(policy(),
                           {"http://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1",
                            "http://na.myconnectwise.net:443/x", "ftp://na.myconnectwise.net/x",
                            "wss://na.myconnectwise.net/x", "file://na.myconnectwise.net/etc/passwd",
                            "httpss://na.myconnectwise.net/x", "https+unix://na.myconnectwise.net/x"},
                           "scheme must be https");
}

TEST(KeyUrl, RefusesOtherHosts)
{
    expect_refused_because(policy(), {url("evil.com")}, "host evil.com is not allowed");
}

TEST(KeyUrl, RefusesApiHost)
{
    expect_refused_because(policy(), {url("api-na.myconnectwise.net")},
                           "host api-na.myconnectwise.net is not allowed");
}

TEST(KeyUrl, RefusesLookAlikeHosts)
{
    expect_refused(policy(), {
                                 url("na.myconnectwise.net.evil.com"),
                                 url("evilna.myconnectwise.net"),
                                 url("evil.na.myconnectwise.net"),
                                 url("na-myconnectwise.net"),
                                 url("myconnectwise.net"),
                                 url("na.myconnectwise.com"),
                                 url("na.myconnectwise.net.."),
                                 url("na.myconnectwise.net.evil.com."),
                                 url("api-sandbox-na.myconnectwise.net"),
                                 url("connectwisedev.com"),
                             });
}

TEST(KeyUrl, RefusesUserInfo)
{
    expect_refused_because(policy(),
                           {url("na.myconnectwise.net@evil.com"), url("user@na.myconnectwise.net"),
                            url("user:pass@na.myconnectwise.net"), url("@na.myconnectwise.net"),
                            url(":@na.myconnectwise.net"), url("na.myconnectwise.net:443@evil.com")},
                           "user-info is not allowed");
}

TEST(KeyUrl, RefusesFragment)
{
    expect_refused(policy(), {url("na.myconnectwise.net", "/x?id=1#frag"), url("na.myconnectwise.net", "/x#"),
                              url("na.myconnectwise.net", "#@evil.com/")});
}

TEST(KeyUrl, RefusesPercentEncodedHost)
{
    expect_refused_because(policy(),
                           {url("na%2Emyconnectwise.net"), url("%6Ea.myconnectwise.net"),
                            url("na.myconnectwise.net%00.evil.com")},
                           "percent-encoded host is not allowed");
}

TEST(KeyUrl, RefusesRelativeUrl)
{
    expect_refused_because(policy(),
                           {std::string(key_path), "//na.myconnectwise.net/x", "na.myconnectwise.net/x", "",
                            "v2025_1//system/callbackkey/index.rails"},
                           "not an absolute URL");
}

TEST(KeyUrl, RefusesMalformedUrl)
{
    expect_refused(policy(), {
                                 "https://na.myconnectwise.net/a b",
                                 "https://na.myconnectwise.net\\@evil.com/",
                                 "https://na.myconnectwise.net/x\n",
                                 " https://na.myconnectwise.net/x",
                                 "https:// na.myconnectwise.net/x",
                                 "https://[::1/x",
                             });
}

TEST(KeyUrl, RefusesUrlWithoutHost)
{
    expect_refused(policy(), {"https:/x", "https:na.myconnectwise.net/x", "https:///x", "https://:443/x"});
}

TEST(KeyUrl, RefusesInvalidHostNames)
{
    expect_refused_because(policy(), {url("na_x.myconnectwise.net"), url("na.myconnectwise.net!")},
                           "invalid host name");
}

TEST(KeyUrl, RefusesIpLiteralsNotListed)
{
    expect_refused(policy({"10.0.0.5", "[fd00::5]"}), {
                                                           url("127.0.0.1"),
                                                           url("10.0.0.6"),
                                                           url("169.254.169.254"),
                                                           url("[::1]"),
                                                           url("[fd00::6]"),
                                                           url("[::ffff:127.0.0.1]"),
                                                           url("[::ffff:10.0.0.5]"),
                                                           url("2130706433"),
                                                           url("127.1"),
                                                           url("[v1.x]"),
                                                       });
}

TEST(KeyUrl, AcceptsListedIpv4Literal)
{
    const auto r = policy({"10.0.0.5"}).check(url("10.0.0.5"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "10.0.0.5");
    EXPECT_EQ(r->port, 443);
    EXPECT_TRUE(r->operator_listed);
}

TEST(KeyUrl, AcceptsListedIpv6Literal)
{
    const auto p = policy({"[::1]:8443", "[2001:DB8::5]"});
    const auto loopback = p.check(url("[::1]:8443"));
    ASSERT_TRUE(loopback) << loopback.error().detail;
    EXPECT_EQ(loopback->host, "::1");
    EXPECT_EQ(loopback->port, 8443);
    EXPECT_TRUE(loopback->operator_listed);
    const auto upper = p.check(url("[2001:db8::5]"));
    ASSERT_TRUE(upper) << upper.error().detail;
    EXPECT_EQ(upper->host, "2001:db8::5");
    EXPECT_EQ(upper->port, 443);
}

TEST(KeyUrl, UrlIpv6IsComparedInCanonicalForm)
{
    const auto r = policy({"[2001:db8::5]"}).check(url("[2001:0DB8:0:0::5]"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "2001:db8::5");
}

TEST(KeyUrl, ListedIpv6InNonCanonicalFormMatches)
{
    const auto p = policy({"[2001:db8:0:0::5]", "[0:0:0:0:0:0:0:1]:8443"});
    const auto a = p.check(url("[2001:db8::5]"));
    EXPECT_TRUE(a) << a.error().detail;
    const auto b = p.check(url("[::1]:8443"));
    EXPECT_TRUE(b) << b.error().detail;
}

TEST(KeyUrl, RefusesNonDefaultPortOnCloudHost)
{
    expect_refused_because(policy(), {url("na.myconnectwise.net:8443")},
                           "host na.myconnectwise.net:8443 is not allowed");
}

TEST(KeyUrl, RefusesInvalidPort)
{
    expect_refused_because(policy(),
                           {url("na.myconnectwise.net:0"), url("na.myconnectwise.net:65536"),
                            url("na.myconnectwise.net:99999"), url("na.myconnectwise.net:")},
                           "invalid port");
}

TEST(KeyUrl, ListedHostPortAllowsExactlyThatPort)
{
    const auto p = policy({"keys.example.com:8443"});
    const auto r = p.check(url("keys.example.com:8443"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "keys.example.com");
    EXPECT_EQ(r->port, 8443);
    EXPECT_TRUE(r->operator_listed);
    expect_refused(p, {url("keys.example.com"), url("keys.example.com:443"), url("keys.example.com:8444"),
                       url("keys.example.com:80")});
}

TEST(KeyUrl, ListedHostWithoutPortMeans443)
{
    const auto p = policy({"keys.example.com"});
    const auto r = p.check(url("keys.example.com"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->port, 443);
    EXPECT_TRUE(r->operator_listed);
    expect_refused(p, {url("keys.example.com:8443")});
}

TEST(KeyUrl, ListedHostIsCanonicalised)
{
    const auto p = policy({"Keys.Example.COM."});
    const auto r = p.check(url("keys.example.com"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->host, "keys.example.com");
    EXPECT_TRUE(p.check(url("KEYS.example.com.")));
}

TEST(KeyUrl, ListingDoesNotWidenToSubdomainsOrParents)
{
    expect_refused(policy({"keys.example.com"}),
                   {url("a.keys.example.com"), url("example.com"), url("keys.example.com.evil.com"),
                    url("xkeys.example.com")});
}

TEST(KeyUrl, OperatorListedOnlyForListedHosts)
{
    const auto p = policy({"manage.example.com"});
    const auto cloud = p.check(url("na.myconnectwise.net"));
    ASSERT_TRUE(cloud) << cloud.error().detail;
    EXPECT_FALSE(cloud->operator_listed);
    const auto listed = p.check(url("manage.example.com"));
    ASSERT_TRUE(listed) << listed.error().detail;
    EXPECT_TRUE(listed->operator_listed);
}

TEST(KeyUrl, CloudHostAlsoListedByOperatorIsOperatorListed)
{
    const auto r = policy({"na.myconnectwise.net"}).check(url("na.myconnectwise.net"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_TRUE(r->operator_listed);
}

TEST(KeyUrl, ListedCloudHostOnOtherPortIsOperatorListed)
{
    const auto r = policy({"na.myconnectwise.net:8443"}).check(url("na.myconnectwise.net:8443"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_TRUE(r->operator_listed);
}

// key_url_policy::make

TEST(KeyUrlPolicy, AcceptsValidEntries)
{
    for (const std::string entry : {"keys.example.com", "keys.example.com:8443", "KEYS.example.com.", "10.0.0.5",
                                    "10.0.0.5:8443", "[::1]", "[::1]:8443", "[2001:db8::5]:1", "host:65535"}) {
        SCOPED_TRACE(entry);
        const auto p = key_url_policy::make({entry});
        EXPECT_TRUE(p) << p.error();
    }
}

TEST(KeyUrlPolicy, EmptyListIsCloudHostsOnly)
{
    const auto p = key_url_policy::make({}, {"cobalt"});
    ASSERT_TRUE(p) << p.error();
    EXPECT_TRUE(p->check(url("eu.myconnectwise.net")));
    EXPECT_FALSE(p->check(url("keys.example.com")));
}

TEST(KeyUrlPolicy, BadEntryErrorNamesTheEntry)
{
    const std::initializer_list<std::string> entries = {
        "", "host:", "host:0", "host:65536", "host:99999", "host:abc", "host:-1", "host:8443:1", "host: 8443",
        "::1", "::1:8443", "[::1", "[::1]x", "[::1]:", "[::1]:0", "[::1]:abc", "[not-an-ip]", "[10.0.0.5]",
        "[]", "bad host", "keys.example.com/path", "user@keys.example.com", "https://keys.example.com",
        "keys_example.com", "*.example.com", std::string(254, 'a')};
    for (const auto& entry : entries) {
        SCOPED_TRACE(entry);
        const auto p = key_url_policy::make({"keys.example.com", entry});
        ASSERT_FALSE(p);
        EXPECT_EQ(p.error(), "\"" + entry + "\": expected host or host:port");
    }
}

// canonical_host

TEST(CanonicalHost, LowerCasesAndStripsOneTrailingDot)
{
    const struct {
        std::string_view in;
        std::string_view out;
    } cases[] = {
        {"NA.MyConnectWise.net", "na.myconnectwise.net"},
        {"na.myconnectwise.net.", "na.myconnectwise.net"},
        {"na.myconnectwise.net..", "na.myconnectwise.net."},
        {"", ""},
        {".", ""},
        {"2001:DB8::1", "2001:db8::1"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.in);
        EXPECT_EQ(canonical_host(c.in), c.out);
    }
}

} // namespace
} // namespace cwhook::callback

namespace cwhook::callback {
namespace {

// Found by fuzzing: inputs Boost.URL 1.81 asserts on or splits wrongly; all must be refused.
TEST(KeyUrl, RefusesMalformedUrlsFoundByFuzzing)
{
    const auto p = key_url_policy::make({"127.0.0.1:9443", "[::1]:443"});
    ASSERT_TRUE(p.has_value());
    for (const std::string& bad :
         {std::string("w:\xff", 3), std::string("https://na.myconnectwise.net/\xc3\xa9"),
          std::string("https://na.myconnectwise.net/a b"), std::string("https://[::1]x"),
          std::string("https://na.myconnectwise.net:443x"), std::string("https://127.0.0.1:9443.evil.example/"),
          std::string("https://[::1]na.myconnectwise.net/v2025_1//system/callbackkey/index.rails")}) {
        const auto r = p->check(bad);
        EXPECT_FALSE(r.has_value()) << bad;
    }
}

} // namespace
} // namespace cwhook::callback
