#include "config/config.hpp"
#include "core/error.hpp"

#include "support/fake_env.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::config {
namespace {

namespace fs = std::filesystem;
using ::testing::StartsWith;
using test::temp_dir;

using test::fake_env;

// The error of loading `toml` as a file (the test fails if it loads).
std::string file_error(const std::string& toml, std::map<std::string, std::string> env = {})
{
    temp_dir dir;
    const auto r = load(dir.write("cwhook.toml", toml), fake_env(std::move(env)));
    EXPECT_FALSE(r) << "loaded although it should not:\n" << toml;
    return r ? std::string() : r.error();
}

std::string env_error(std::map<std::string, std::string> env)
{
    const auto r = load(std::nullopt, fake_env(std::move(env)));
    EXPECT_FALSE(r);
    return r ? std::string() : r.error();
}

settings load_ok(const std::string& toml, std::map<std::string, std::string> env = {})
{
    temp_dir dir;
    auto r = load(dir.write("cwhook.toml", toml), fake_env(std::move(env)));
    EXPECT_TRUE(r) << r.error();
    return r ? *r : settings{};
}

void expect_same(const settings& a, const settings& b)
{
    const auto& as = a.app.server;
    const auto& bs = b.app.server;
    EXPECT_EQ(as.listen, bs.listen);
    EXPECT_EQ(as.tls_listen, bs.tls_listen);
    EXPECT_EQ(as.tls_cert, bs.tls_cert);
    EXPECT_EQ(as.tls_key, bs.tls_key);
    EXPECT_EQ(a.app.callback_path, b.app.callback_path);
    EXPECT_EQ(as.max_body_bytes, bs.max_body_bytes);
    EXPECT_EQ(as.max_header_bytes, bs.max_header_bytes);
    EXPECT_EQ(as.max_connections, bs.max_connections);
    EXPECT_EQ(as.max_connections_per_client, bs.max_connections_per_client);
    EXPECT_EQ(as.trusted_proxies, bs.trusted_proxies);
    EXPECT_EQ(as.handshake_timeout.count(), bs.handshake_timeout.count());
    EXPECT_EQ(as.header_timeout.count(), bs.header_timeout.count());
    EXPECT_EQ(as.body_timeout.count(), bs.body_timeout.count());
    EXPECT_EQ(as.write_timeout.count(), bs.write_timeout.count());
    EXPECT_EQ(as.idle_timeout.count(), bs.idle_timeout.count());
    EXPECT_EQ(as.drain_timeout.count(), bs.drain_timeout.count());
    EXPECT_EQ(as.threads, bs.threads);

    const auto& av = a.app.verify;
    const auto& bv = b.app.verify;
    EXPECT_EQ(static_cast<int>(av.mode), static_cast<int>(bv.mode));
    EXPECT_EQ(av.allowed_key_hosts, bv.allowed_key_hosts);
    EXPECT_EQ(av.key_cache_ttl.count(), bv.key_cache_ttl.count());
    EXPECT_EQ(av.key_fetch_timeout.count(), bv.key_fetch_timeout.count());
    EXPECT_EQ(av.key_failure_ttl.count(), bv.key_failure_ttl.count());
    EXPECT_EQ(av.key_refetch_interval.count(), bv.key_refetch_interval.count());
    EXPECT_EQ(av.key_max_bytes, bv.key_max_bytes);
    EXPECT_EQ(av.key_cache_entries, bv.key_cache_entries);
    EXPECT_EQ(av.ca_file, bv.ca_file);
    EXPECT_EQ(av.max_pending, bv.max_pending);
    EXPECT_EQ(av.pending_retry_min.count(), bv.pending_retry_min.count());
    EXPECT_EQ(av.pending_retry_max.count(), bv.pending_retry_max.count());
    EXPECT_EQ(av.pending_max_age.count(), bv.pending_max_age.count());

    const auto& ast = a.app.storage;
    const auto& bst = b.app.storage;
    EXPECT_EQ(ast.path, bst.path);
    EXPECT_EQ(static_cast<int>(ast.synchronous), static_cast<int>(bst.synchronous));
    EXPECT_EQ(ast.busy_timeout.count(), bst.busy_timeout.count());
    EXPECT_EQ(ast.queue_limit, bst.queue_limit);
    EXPECT_EQ(ast.max_batch, bst.max_batch);
    EXPECT_EQ(ast.max_rejections, bst.max_rejections);
    EXPECT_EQ(ast.rejection_queue_limit, bst.rejection_queue_limit);
    EXPECT_EQ(ast.cache_mib, bst.cache_mib);
    EXPECT_EQ(ast.max_page_count, bst.max_page_count);
    EXPECT_EQ(ast.retention.count(), bst.retention.count());
    EXPECT_EQ(ast.retention_batch, bst.retention_batch);
    EXPECT_EQ(ast.retention_interval.count(), bst.retention_interval.count());

    EXPECT_EQ(a.app.admin.listen, b.app.admin.listen);
    EXPECT_EQ(a.app.admin.token, b.app.admin.token);
    EXPECT_EQ(a.app.admin.hosts, b.app.admin.hosts);
    EXPECT_EQ(a.app.admin.origins, b.app.admin.origins);
    EXPECT_EQ(a.app.admin.replay_targets, b.app.admin.replay_targets);
    EXPECT_EQ(a.app.admin.session_lifetime.count(), b.app.admin.session_lifetime.count());

    const auto& am = a.app.manage;
    const auto& bm = b.app.manage;
    EXPECT_EQ(am.site, bm.site);
    EXPECT_EQ(am.company_id, bm.company_id);
    EXPECT_EQ(am.public_key, bm.public_key);
    EXPECT_EQ(am.private_key, bm.private_key);
    EXPECT_EQ(am.client_id, bm.client_id);
    EXPECT_EQ(am.api_version, bm.api_version);
    EXPECT_EQ(am.api_host, bm.api_host);
    EXPECT_EQ(am.codebase, bm.codebase);
    EXPECT_EQ(am.ca_file, bm.ca_file);
    EXPECT_EQ(am.timeout.count(), bm.timeout.count());
    EXPECT_EQ(am.connect_timeout.count(), bm.connect_timeout.count());
    EXPECT_EQ(am.max_attempts, bm.max_attempts);
    EXPECT_EQ(am.retry_max_delay.count(), bm.retry_max_delay.count());
    EXPECT_EQ(am.page_size, bm.page_size);
    EXPECT_EQ(static_cast<int>(am.paging), static_cast<int>(bm.paging));
    EXPECT_EQ(am.check_interval.count(), bm.check_interval.count());
    EXPECT_EQ(am.auto_heal, bm.auto_heal);
    ASSERT_EQ(a.app.subscriptions.size(), b.app.subscriptions.size());
    for (std::size_t i = 0; i < a.app.subscriptions.size(); ++i) {
        EXPECT_EQ(a.app.subscriptions[i].type, b.app.subscriptions[i].type);
        EXPECT_EQ(a.app.subscriptions[i].level, b.app.subscriptions[i].level);
        EXPECT_EQ(a.app.subscriptions[i].object_id, b.app.subscriptions[i].object_id);
        EXPECT_EQ(a.app.subscriptions[i].url, b.app.subscriptions[i].url);
        EXPECT_EQ(a.app.subscriptions[i].description, b.app.subscriptions[i].description);
    }

    const auto& af = a.app.forward;
    const auto& bf = b.app.forward;
    EXPECT_EQ(af.retries, bf.retries);
    EXPECT_EQ(af.jitter, bf.jitter);
    EXPECT_EQ(af.max_retry_after.count(), bf.max_retry_after.count());
    EXPECT_EQ(af.breaker_threshold, bf.breaker_threshold);
    EXPECT_EQ(af.breaker_probe_interval.count(), bf.breaker_probe_interval.count());
    EXPECT_EQ(af.poll_interval.count(), bf.poll_interval.count());
    EXPECT_EQ(af.lease_margin.count(), bf.lease_margin.count());
    EXPECT_EQ(af.ca_file, bf.ca_file);
    EXPECT_TRUE(a.app.destinations == b.app.destinations);

    EXPECT_EQ(static_cast<int>(a.log.level), static_cast<int>(b.log.level));
    EXPECT_EQ(static_cast<int>(a.log.format), static_cast<int>(b.log.format));
}

// "section.key" of every uncommented `key = value` line of a TOML text.
std::set<std::string> keys_in(const std::string& toml)
{
    std::set<std::string> keys;
    std::istringstream in(toml);
    std::string line;
    std::string section;
    while (std::getline(in, line)) {
        if (line.starts_with('[')) {
            section = line.substr(1, line.find(']') - 1);
        } else if (const auto eq = line.find(" = "); eq != std::string::npos && !line.starts_with('#')) {
            keys.insert(section + "." + line.substr(0, eq));
        }
    }
    return keys;
}

// A certificate-shaped file: existence is all the configuration checks.
constexpr const char* pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";

TEST(Config, DefaultsWithoutFile)
{
    const auto r = load(std::nullopt, fake_env());
    ASSERT_TRUE(r) << r.error();
    expect_same(*r, settings{});
    EXPECT_EQ(r->app.server.listen, std::vector<std::string>{"127.0.0.1:8080"});
    EXPECT_EQ(r->app.storage.path, "./var/cwhook.db");
}

TEST(Config, NullEnvironmentMeansNoOverrides)
{
    const auto r = load(std::nullopt, env_lookup{});
    ASSERT_TRUE(r) << r.error();
    expect_same(*r, settings{});
}

TEST(Config, ProcessEnvReadsTheEnvironment)
{
    ::setenv("CWHOOK_CONFIG_TEST_VARIABLE", "x", 1);
    const auto env = process_env();
    EXPECT_EQ(env("CWHOOK_CONFIG_TEST_VARIABLE"), "x");
    ::unsetenv("CWHOOK_CONFIG_TEST_VARIABLE");
    EXPECT_EQ(env("CWHOOK_CONFIG_TEST_VARIABLE"), std::nullopt);
}

TEST(Config, FileOverridesDefaults)
{
    const auto s = load_ok(R"(
[server]
listen = ["0.0.0.0:9000", "[::1]:9001"]
callback_path = "/hooks/manage"
max_body_bytes = 2048
trusted_proxies = ["10.0.0.0/8"]
idle_timeout = "1m30s"
threads = 4

[verify]
mode = "report"
key_cache_ttl = "2h"

[storage]
path = "/tmp/x.db"
synchronous = "normal"

[log]
level = "debug"
format = "json"
)");
    EXPECT_EQ(s.app.server.listen, (std::vector<std::string>{"0.0.0.0:9000", "[::1]:9001"}));
    EXPECT_EQ(s.app.callback_path, "/hooks/manage");
    EXPECT_EQ(s.app.server.max_body_bytes, 2048u);
    EXPECT_EQ(s.app.server.trusted_proxies, std::vector<std::string>{"10.0.0.0/8"});
    EXPECT_EQ(s.app.server.idle_timeout.count(), 90'000);
    EXPECT_EQ(s.app.server.threads, 4u);
    EXPECT_EQ(s.app.verify.mode, callback::verify_mode::report);
    EXPECT_EQ(s.app.verify.key_cache_ttl.count(), 7'200'000);
    EXPECT_EQ(s.app.storage.path, "/tmp/x.db");
    EXPECT_EQ(s.app.storage.synchronous, store::synchronous_mode::normal);
    EXPECT_EQ(s.log.level, log::level::debug);
    EXPECT_EQ(s.log.format, log::format::json);
    // Untouched keys keep their defaults.
    EXPECT_EQ(s.app.server.max_header_bytes, settings{}.app.server.max_header_bytes);
}

TEST(Config, EnvOverridesFile)
{
    const auto s = load_ok("[server]\nmax_body_bytes = 100\n[verify]\nkey_cache_ttl = \"1h\"\n",
                           {{"CWHOOK_SERVER_MAX_BODY_BYTES", "200"}, {"CWHOOK_VERIFY_KEY_CACHE_TTL", "5m"}});
    EXPECT_EQ(s.app.server.max_body_bytes, 200u);
    EXPECT_EQ(s.app.verify.key_cache_ttl.count(), 300'000);
}

TEST(Config, EnvOverridesDefaultsWithoutFile)
{
    const auto r = load(std::nullopt, fake_env({{"CWHOOK_SERVER_CALLBACK_PATH", "/cw"}, {"CWHOOK_LOG_LEVEL", "warn"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->app.callback_path, "/cw");
    EXPECT_EQ(r->log.level, log::level::warn);
}

TEST(Config, EnvArrayCommaSeparated)
{
    const auto r = load(std::nullopt, fake_env({{"CWHOOK_SERVER_LISTEN", "127.0.0.1:1, [::1]:2"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->app.server.listen, (std::vector<std::string>{"127.0.0.1:1", "[::1]:2"}));
}

TEST(Config, EnvArrayTomlLiteral)
{
    const auto r = load(std::nullopt, fake_env({{"CWHOOK_SERVER_LISTEN", R"(["127.0.0.1:1", "127.0.0.1:2"])"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->app.server.listen, (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"}));
}

TEST(Config, EnvEmptyStringIsEmptyArray)
{
    const auto s = load_ok("[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n", {{"CWHOOK_SERVER_TRUSTED_PROXIES", ""}});
    EXPECT_TRUE(s.app.server.trusted_proxies.empty());
}

TEST(Config, EnvValueOverridingBadFileValueIsNotChecked)
{
    const auto s = load_ok("[server]\ntls_cert = \"/nonexistent/cert.pem\"\n", {{"CWHOOK_SERVER_TLS_CERT", ""}});
    EXPECT_EQ(s.app.server.tls_cert, "");
}

TEST(Config, EnvBadIntegerNamesVariable)
{
    EXPECT_EQ(env_error({{"CWHOOK_SERVER_MAX_BODY_BYTES", "abc"}}), R"(CWHOOK_SERVER_MAX_BODY_BYTES: "abc": not an integer)");
}

TEST(Config, EnvBadDurationNamesVariable)
{
    EXPECT_EQ(env_error({{"CWHOOK_VERIFY_KEY_CACHE_TTL", "soon"}}),
              R"(CWHOOK_VERIFY_KEY_CACHE_TTL: "soon": expected a duration like 500ms, 3s, 1h)");
}

TEST(Config, EnvTomlArrayOfNonStrings)
{
    EXPECT_EQ(env_error({{"CWHOOK_SERVER_LISTEN", "[1, 2]"}}), R"(CWHOOK_SERVER_LISTEN: "[1, 2]": expected an array of strings)");
}

TEST(Config, EnvTomlArrayCannotSmuggleKeys)
{
    EXPECT_THAT(env_error({{"CWHOOK_SERVER_LISTEN", "[]\nthreads = 3"}}), StartsWith("CWHOOK_SERVER_LISTEN: "));
}

TEST(Config, EnvMissingFileNamesVariable)
{
    temp_dir dir;
    const auto missing = dir.file("cert.pem");
    EXPECT_EQ(env_error({{"CWHOOK_SERVER_TLS_CERT", missing}}), "CWHOOK_SERVER_TLS_CERT: " + missing + ": no such file");
}

TEST(Config, MissingConfigFile)
{
    temp_dir dir;
    const auto missing = dir.file("cwhook.toml");
    const auto r = load(missing, fake_env());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), missing + ": no such file");
}

TEST(Config, TomlSyntaxErrorNamesFileLineAndColumn)
{
    temp_dir dir;
    const auto file = dir.write("cwhook.toml", "[server]\n\nthreads = \n");
    const auto r = load(file, fake_env());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), file + R"(:3:11: Error while parsing key-value pair: expected value, saw '\n')");
}

TEST(Config, UnknownKey) { EXPECT_EQ(file_error("[server]\nbogus = 1\n"), "server.bogus: unknown key"); }

TEST(Config, UnknownSection) { EXPECT_EQ(file_error("[nosuch]\n"), "nosuch: unknown section"); }

TEST(Config, UnknownTopLevelKey) { EXPECT_EQ(file_error("nosuch = 1\n"), "nosuch: unknown section"); }

TEST(Config, SectionMustBeATable) { EXPECT_EQ(file_error("server = 1\n"), "server: expected a table"); }

TEST(Config, FileSuffixOnNonSecretKeyIsUnknown)
{
    EXPECT_EQ(file_error("[server]\ntls_cert_file = \"x\"\n"), "server.tls_cert_file: unknown key");
}

TEST(Config, ArrayKeyGivenString)
{
    EXPECT_EQ(file_error("[server]\nlisten = \"127.0.0.1:80\"\n"), "server.listen: expected an array of strings");
}

TEST(Config, ArrayKeyGivenMixedArray)
{
    EXPECT_EQ(file_error("[server]\nlisten = [\"127.0.0.1:80\", 1]\n"), "server.listen: expected an array of strings");
}

TEST(Config, IntegerKeyGivenString)
{
    EXPECT_EQ(file_error("[server]\nmax_body_bytes = \"1MB\"\n"), "server.max_body_bytes: expected an integer");
}

TEST(Config, StringKeyGivenBool) { EXPECT_EQ(file_error("[verify]\nmode = true\n"), "verify.mode: expected a string"); }

TEST(Config, ListenNotHostPort)
{
    EXPECT_EQ(file_error("[server]\nlisten = [\"abc\"]\n"), R"(server.listen: "abc": expected host:port)");
}

TEST(Config, TlsListenNotHostPort)
{
    EXPECT_EQ(file_error("[server]\ntls_listen = [\"127.0.0.1\"]\n"), R"(server.tls_listen: "127.0.0.1": expected host:port)");
}

TEST(Config, VerifyModeUnknown)
{
    EXPECT_EQ(file_error("[verify]\nmode = \"strict\"\n"), R"(verify.mode: "strict": expected enforce, report or off)");
}

TEST(Config, StorageSynchronousUnknown)
{
    EXPECT_EQ(file_error("[storage]\nsynchronous = \"off\"\n"), R"(storage.synchronous: "off": expected full or normal)");
}

TEST(Config, LogLevelUnknown)
{
    EXPECT_EQ(file_error("[log]\nlevel = \"trace\"\n"), R"(log.level: "trace": expected error, warn, info or debug)");
}

TEST(Config, LogFormatUnknown)
{
    EXPECT_EQ(file_error("[log]\nformat = \"xml\"\n"), R"(log.format: "xml": expected text or json)");
}

TEST(Config, DurationNotADuration)
{
    EXPECT_EQ(file_error("[verify]\nkey_cache_ttl = \"soon\"\n"),
              R"(verify.key_cache_ttl: "soon": expected a duration like 500ms, 3s, 1h)");
}

TEST(Config, NegativeLimit)
{
    EXPECT_EQ(file_error("[server]\nmax_body_bytes = -1\n"), "server.max_body_bytes: -1: must be positive");
}

TEST(Config, ZeroLimit) { EXPECT_EQ(file_error("[storage]\nmax_batch = 0\n"), "storage.max_batch: 0: must be positive"); }

TEST(Config, ThreadsAtMost256)
{
    EXPECT_EQ(file_error("[server]\nthreads = 257\n"), "server.threads: 257: must be at most 256");
}

TEST(Config, ThreadsNotNegative)
{
    EXPECT_EQ(file_error("[server]\nthreads = -1\n"), "server.threads: -1: must not be negative");
}

TEST(Config, ThreadsZeroMeansOnePerCore) { EXPECT_EQ(load_ok("[server]\nthreads = 0\n").app.server.threads, 0u); }

TEST(Config, KeyFetchTimeoutZero)
{
    EXPECT_EQ(file_error("[verify]\nkey_fetch_timeout = \"0\"\n"), R"(verify.key_fetch_timeout: "0": must be positive)");
}

TEST(Config, KeyFetchTimeoutAbove60s)
{
    EXPECT_EQ(file_error("[verify]\nkey_fetch_timeout = \"61s\"\n"),
              R"(verify.key_fetch_timeout: "61s": must be at most 1m)");
}

TEST(Config, ServerTimeoutZero)
{
    EXPECT_EQ(file_error("[server]\nheader_timeout = \"0\"\n"), R"(server.header_timeout: "0": must be positive)");
}

TEST(Config, PendingRetryMinAboveMax)
{
    EXPECT_EQ(file_error("[verify]\npending_retry_min = \"10m\"\npending_retry_max = \"5m\"\n"),
              R"(verify.pending_retry_min: "10m": must not exceed verify.pending_retry_max ("5m"))");
}

TEST(Config, TlsCertMissing)
{
    temp_dir dir;
    const auto missing = dir.file("y.pem");
    EXPECT_EQ(file_error("[server]\ntls_cert = \"" + missing + "\"\n"), "server.tls_cert: " + missing + ": no such file");
}

TEST(Config, CaFileIsADirectory)
{
    const auto folder = fs::temp_directory_path().string();
    EXPECT_EQ(file_error("[verify]\nca_file = \"" + folder + "\"\n"), "verify.ca_file: " + folder + ": not a regular file");
}

TEST(Config, TlsListenNeedsCertAndKey)
{
    temp_dir dir;
    const auto cert = dir.write("cert.pem", pem);
    EXPECT_EQ(file_error("[server]\ntls_listen = [\"127.0.0.1:8443\"]\ntls_cert = \"" + cert + "\"\n"),
              "server.tls_listen: needs server.tls_cert and server.tls_key");
}

TEST(Config, TlsListenWithCertAndKey)
{
    temp_dir dir;
    const auto cert = dir.write("cert.pem", pem);
    const auto key = dir.write("key.pem", pem);
    const auto s = load_ok("[server]\nlisten = []\ntls_listen = [\"127.0.0.1:8443\"]\ntls_cert = \"" + cert +
                           "\"\ntls_key = \"" + key + "\"\n");
    EXPECT_TRUE(s.app.server.listen.empty());
    EXPECT_EQ(s.app.server.tls_listen, std::vector<std::string>{"127.0.0.1:8443"});
}

TEST(Config, NoListenerAtAll)
{
    EXPECT_EQ(file_error("[server]\nlisten = []\n"), "server.listen and server.tls_listen: both empty, nothing to listen on");
}

TEST(Config, TrustedProxyNotACidr)
{
    EXPECT_EQ(file_error("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n"),
              R"(server.trusted_proxies: "10.0.0.0/33": expected an address or CIDR like 10.0.0.0/8)");
}

TEST(Config, AllowedKeyHostsRefusedByPolicy)
{
    // The reason is the key_url policy's own.
    EXPECT_EQ(file_error("[verify]\nallowed_key_hosts = [\"host:notaport\"]\n"),
              R"(verify.allowed_key_hosts: "host:notaport": expected host or host:port)");
    // Found by fuzzing: an entry holding a newline made the message two lines.
    EXPECT_EQ(file_error("[verify]\nallowed_key_hosts = [\"max2h\\ndshake\"]\n"),
              R"(verify.allowed_key_hosts: "max2h\ndshake": expected host or host:port)");
}

TEST(Config, AllowedKeyHostsAccepted)
{
    const auto s = load_ok("[verify]\nallowed_key_hosts = [\"manage.example.com\", \"127.0.0.1:8443\"]\n");
    EXPECT_EQ(s.app.verify.allowed_key_hosts, (std::vector<std::string>{"manage.example.com", "127.0.0.1:8443"}));
}

TEST(Config, CallbackPathMustStartWithSlash)
{
    EXPECT_EQ(file_error("[server]\ncallback_path = \"callbacks\"\n"), R"(server.callback_path: "callbacks": must start with /)");
}

TEST(Config, CallbackPathMustNotBeRoot)
{
    EXPECT_EQ(file_error("[server]\ncallback_path = \"/\"\n"),
              R"(server.callback_path: "/": must not be / (/healthz and /readyz must stay reachable))");
}

TEST(Config, CallbackPathMustNotEndWithSlash)
{
    EXPECT_EQ(file_error("[server]\ncallback_path = \"/callbacks/\"\n"), R"(server.callback_path: "/callbacks/": must not end with /)");
}

TEST(Config, CallbackPathMustNotBeAProbe)
{
    EXPECT_EQ(file_error("[server]\ncallback_path = \"/healthz\"\n"),
              R"(server.callback_path: "/healthz": is reserved for the health probes)");
    EXPECT_EQ(file_error("[server]\ncallback_path = \"/readyz\"\n"),
              R"(server.callback_path: "/readyz": is reserved for the health probes)");
}

TEST(Config, CallbackPathMustNotHaveAQuery)
{
    EXPECT_EQ(file_error("[server]\ncallback_path = \"/cb?x=1\"\n"),
              R"(server.callback_path: "/cb?x=1": must be a plain path (no query, fragment, spaces or control characters))");
}

TEST(Config, StoragePathMustNotBeEmpty)
{
    EXPECT_EQ(file_error("[storage]\npath = \"\"\n"), R"(storage.path: "": must not be empty)");
}

TEST(Config, ErrorValueIsQuotedOnOneLine)
{
    EXPECT_EQ(file_error("[verify]\nmode = \"a\\nb\"\n"), R"(verify.mode: "a\nb": expected enforce, report or off)");
}

TEST(Config, RenderDefaults)
{
    const auto text = render(settings{});
    EXPECT_THAT(text, ::testing::HasSubstr("[server]\nlisten = [\"127.0.0.1:8080\"]\ntls_listen = []\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("callback_path = \"/callbacks\"\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("key_cache_ttl = \"1h\"\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("pending_max_age = \"3d\"\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("max_body_bytes = 1048576\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("[log]\nlevel = \"info\"\nformat = \"text\"\n"));
}

TEST(Config, RenderReparsesToSameSettings)
{
    temp_dir dir;
    const auto ca = dir.write("ca.pem", pem);
    const auto original = load_ok(R"(
[server]
listen = ["0.0.0.0:9000", "[::1]:9001"]
callback_path = "/hooks/\"quoted\""
max_connections = 7
trusted_proxies = ["10.0.0.0/8", "::1"]
handshake_timeout = "1500ms"
drain_timeout = "0"
threads = 2
[verify]
mode = "off"
allowed_key_hosts = ["manage.example.com:8443"]
key_refetch_interval = "1h30m"
ca_file = ")" + ca + R"("
pending_max_age = "2w"
[storage]
path = ":memory:"
synchronous = "normal"
max_rejections = 3
cache_mib = 64
[manage]
site = "https://manage.example.com:8443"
company_id = "acme"
public_key = "pub"
paging = "navigable"
max_attempts = 2
auto_heal = true
[log]
level = "error"
format = "json"
[[subscriptions]]
type = "Ticket"
level = "owner"
url = "https://hooks.example.com/callbacks?recordId="
description = "say \"hi\""
[[subscriptions]]
type = "company"
level = "status"
object_id = 3
url = "https://hooks.example.com/callbacks?recordId="
)");
    EXPECT_EQ(original.app.subscriptions.at(0).type, "ticket");
    const auto rendered = render(original);
    const auto again = load_ok(rendered);
    expect_same(again, original);
    EXPECT_EQ(render(again), rendered);
}

TEST(Config, RenderListsEveryKey)
{
    // The key list of the configuration's specification, section by section.
    const std::set<std::string> expected{"server.listen",
                                         "server.tls_listen",
                                         "server.tls_cert",
                                         "server.tls_key",
                                         "server.callback_path",
                                         "server.max_body_bytes",
                                         "server.max_header_bytes",
                                         "server.max_connections",
                                         "server.max_connections_per_client",
                                         "server.trusted_proxies",
                                         "server.handshake_timeout",
                                         "server.header_timeout",
                                         "server.body_timeout",
                                         "server.write_timeout",
                                         "server.idle_timeout",
                                         "server.drain_grace",
                                         "server.drain_timeout",
                                         "server.threads",
                                         "verify.mode",
                                         "verify.allowed_key_hosts",
                                         "verify.key_cache_ttl",
                                         "verify.key_fetch_timeout",
                                         "verify.key_failure_ttl",
                                         "verify.key_refetch_interval",
                                         "verify.key_max_bytes",
                                         "verify.key_cache_entries",
                                         "verify.ca_file",
                                         "verify.max_pending",
                                         "verify.pending_retry_min",
                                         "verify.pending_retry_max",
                                         "verify.pending_max_age",
                                         "verify.companies",
                                         "verify.answer_deadline",
                                         "verify.key_fetch_rate",
                                         "verify.key_fetch_concurrency",
                                         "verify.max_failed",
                                         "storage.backend",
                                         "storage.url",
                                         "storage.pool",
                                         "storage.claim_lease",
                                         "storage.path",
                                         "storage.synchronous",
                                         "storage.busy_timeout",
                                         "storage.queue_limit",
                                         "storage.max_batch",
                                         "storage.cache_mib",
                                         "storage.max_rejections",
                                         "storage.rejection_queue_limit",
                                         "storage.retention",
                                         "storage.retention_batch",
                                         "storage.retention_interval",
                                         "admin.listen",
                                         "admin.token",
                                         "admin.hosts",
                                         "admin.origins",
                                         "admin.replay_targets",
                                         "admin.session_lifetime",
                                         "manage.site",
                                         "manage.company_id",
                                         "manage.public_key",
                                         "manage.private_key",
                                         "manage.client_id",
                                         "manage.api_version",
                                         "manage.api_host",
                                         "manage.codebase",
                                         "manage.ca_file",
                                         "manage.timeout",
                                         "manage.connect_timeout",
                                         "manage.max_attempts",
                                         "manage.retry_max_delay",
                                         "manage.page_size",
                                         "manage.paging",
                                         "manage.check_interval",
                                         "manage.auto_heal",
                                         "forward.retry_schedule",
                                         "forward.jitter",
                                         "forward.max_retry_after",
                                         "forward.breaker_threshold",
                                         "forward.breaker_probe_interval",
                                         "forward.poll_interval",
                                         "forward.lease_margin",
                                         "forward.ca_file",
                                         "catch_up.enabled",
                                         "catch_up.types",
                                         "catch_up.interval",
                                         "catch_up.gap_after",
                                         "catch_up.heartbeat_interval",
                                         "catch_up.overlap",
                                         "catch_up.initial_window",
                                         "catch_up.rate",
                                         "catch_up.batch",
                                         "catch_up.reconcile_deletes",
                                         "catch_up.reconcile_interval",
                                         "catch_up.lease",
                                         "log.level",
                                         "log.format"};
    EXPECT_EQ(keys_in(render(settings{})), expected);
}

TEST(Config, ExampleFileEqualsDefaults)
{
    const std::string example = std::string(CWHOOK_SOURCE_DIR) + "/config/cwhook.toml";
    const auto r = load(example, fake_env());
    ASSERT_TRUE(r) << r.error();
    expect_same(*r, settings{});
}

TEST(Config, ExampleFileSetsEveryKey)
{
    const std::string example = std::string(CWHOOK_SOURCE_DIR) + "/config/cwhook.toml";
    std::ifstream in(example);
    std::stringstream text;
    text << in.rdbuf();
    // Every key uncommented, so the load above really compares each default.
    EXPECT_EQ(keys_in(text.str()), keys_in(render(settings{})));
}

TEST(Config, AdminListenOffLoopbackNeedsNoConfiguredToken)
{
    // The daemon generates one when none is configured, on loopback or not.
    const auto s = load_ok("[admin]\nlisten = \"0.0.0.0:9090\"\n");
    EXPECT_EQ(s.app.admin.listen, "0.0.0.0:9090");
    EXPECT_EQ(s.app.admin.token, "");
}

TEST(Config, AdminSessionLifetimeIsBounded)
{
    EXPECT_EQ(load_ok("").app.admin.session_lifetime, std::chrono::hours(8));
    EXPECT_EQ(load_ok("[admin]\nsession_lifetime = \"30m\"\n").app.admin.session_lifetime, std::chrono::minutes(30));
    EXPECT_NE(file_error("[admin]\nsession_lifetime = \"30s\"\n").find("admin.session_lifetime"), std::string::npos);
    EXPECT_NE(file_error("[admin]\nsession_lifetime = \"8d\"\n").find("admin.session_lifetime"), std::string::npos);
}

TEST(Config, AdminHostsOriginsAndReplayTargetsAreChecked)
{
    const auto s = load_ok("[admin]\nhosts = [\"cwhook.internal\", \"[::1]:9090\"]\n"
                           "origins = [\"https://ops.example.com\"]\nreplay_targets = [\"127.0.0.1:8081\", \"hooks.example.com\"]\n");
    EXPECT_EQ(s.app.admin.hosts, (std::vector<std::string>{"cwhook.internal", "[::1]:9090"}));
    EXPECT_EQ(s.app.admin.origins, (std::vector<std::string>{"https://ops.example.com"}));
    EXPECT_EQ(s.app.admin.replay_targets, (std::vector<std::string>{"127.0.0.1:8081", "hooks.example.com"}));
    EXPECT_EQ(file_error("[admin]\nhosts = [\"http://x\"]\n"), R"(admin.hosts: "http://x": expected a host or host:port)");
    EXPECT_EQ(file_error("[admin]\norigins = [\"ops.example.com\"]\n"),
              R"(admin.origins: "ops.example.com": expected an origin like https://admin.example.com)");
    EXPECT_EQ(file_error("[admin]\nreplay_targets = [\"a b\"]\n"),
              R"(admin.replay_targets: "a b": expected a host or host:port)");
    EXPECT_EQ(env_error({{"CWHOOK_ADMIN_REPLAY_TARGETS", "ok.example.com,bad:port"}}),
              R"(CWHOOK_ADMIN_REPLAY_TARGETS: "bad:port": expected a host or host:port)");
}

TEST(Config, AdminTokenFromAFileIsRedacted)
{
    temp_dir dir;
    const auto token = dir.write("admin.token", "s3cret-admin-token\n");
    const auto s = load_ok("[admin]\nlisten = \"0.0.0.0:9090\"\ntoken_file = \"" + token + "\"\n");
    EXPECT_EQ(s.app.admin.token, "s3cret-admin-token");
    EXPECT_EQ(s.app.admin.listen, "0.0.0.0:9090");
    const auto text = render(s);
    EXPECT_THAT(text, ::testing::HasSubstr("[admin]\nlisten = \"0.0.0.0:9090\"\ntoken = \"<redacted>\"\n"));
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("s3cret")));
}

TEST(Config, AdminListenEmptyDisablesIt)
{
    EXPECT_EQ(load_ok("[admin]\nlisten = \"\"\n").app.admin.listen, "");
    EXPECT_EQ(file_error("[admin]\nlisten = \"nowhere\"\n"), R"(admin.listen: "nowhere": expected host:port)");
}

TEST(Config, RetentionIsADuration)
{
    const auto s = load_ok("[storage]\nretention = \"90d\"\nretention_batch = 500\n");
    EXPECT_EQ(s.app.storage.retention, std::chrono::hours(24 * 90));
    EXPECT_EQ(s.app.storage.retention_batch, 500u);
    EXPECT_EQ(file_error("[storage]\nretention = \"forever\"\n").rfind("storage.retention: \"forever\"", 0), 0u);
}

TEST(Config, ManageSectionAndBooleans)
{
    const auto s = load_ok(R"(
[manage]
site = "na.myconnectwise.net"
company_id = "acme"
public_key = "pub"
private_key = "priv"
client_id = "cid"
check_interval = "10m"
auto_heal = true
)");
    EXPECT_EQ(s.app.manage.site, "na.myconnectwise.net");
    EXPECT_EQ(s.app.manage.check_interval.count(), 600'000);
    EXPECT_TRUE(s.app.manage.auto_heal);
    const auto text = render(s);
    EXPECT_THAT(text, ::testing::HasSubstr("private_key = \"<redacted>\"\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("client_id = \"<redacted>\"\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("auto_heal = true\n"));
}

TEST(Config, BooleanFromTheEnvironment)
{
    const auto r = load(std::nullopt, fake_env({{"CWHOOK_MANAGE_AUTO_HEAL", "yes"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_TRUE(r->app.manage.auto_heal);
    EXPECT_EQ(env_error({{"CWHOOK_MANAGE_AUTO_HEAL", "maybe"}}),
              R"(CWHOOK_MANAGE_AUTO_HEAL: "maybe": expected true or false)");
    EXPECT_EQ(file_error("[manage]\nauto_heal = \"true\"\n"), "manage.auto_heal: expected true or false");
}

TEST(Config, PrivateKeyFromAFile)
{
    temp_dir dir;
    const auto key = dir.write("manage.key", "s3cret\n");
    const auto s = load_ok("[manage]\nprivate_key_file = \"" + key + "\"\n");
    EXPECT_EQ(s.app.manage.private_key, "s3cret");
}

TEST(Config, EmptySecretFilesAreRefused)
{
    temp_dir dir;
    for (const std::string content : {"", "\n", "  \t\r\n", "\n\n"}) {
        const auto file = dir.write("empty", content);
        EXPECT_EQ(file_error("[admin]\ntoken_file = \"" + file + "\"\n"),
                  "admin.token_file: " + file +
                      ": is empty (a secret file must hold the secret; remove the key to leave it unset)");
        EXPECT_THAT(file_error("[manage]\nprivate_key_file = \"" + file + "\"\n"),
                    StartsWith("manage.private_key_file: " + file + ": is empty"));
        EXPECT_THAT(file_error("[manage]\nclient_id_file = \"" + file + "\"\n"),
                    StartsWith("manage.client_id_file: " + file + ": is empty"));
        EXPECT_THAT(env_error({{"CWHOOK_ADMIN_TOKEN_FILE", file}}),
                    StartsWith("CWHOOK_ADMIN_TOKEN_FILE: " + file + ": is empty"));
    }
}

TEST(Config, EmptySystemdCredentialIsRefused)
{
    temp_dir dir;
    dir.write("admin-token", "\n");
    EXPECT_EQ(file_error("[admin]\ntoken_file = \"admin-token\"\n", {{"CREDENTIALS_DIRECTORY", dir.file("")}}),
              "admin.token_file: " + (fs::path(dir.file("")) / "admin-token").string() +
                  ": is empty (a secret file must hold the secret; remove the key to leave it unset)");
}

TEST(Config, PlainHttpManageSiteIsRefusedOffLoopback)
{
    EXPECT_THAT(file_error("[manage]\nsite = \"http://manage.example.com\"\n"),
                StartsWith(R"(manage.site: "http://manage.example.com": plain http:// is allowed only to a loopback )"
                           R"(host (127.0.0.0/8, ::1, localhost))"));
    for (const std::string site : {"http://10.0.0.5:8080", "http://[2001:db8::1]:80", "HTTP://na.myconnectwise.net",
                                   "http://127.example.com", "http://localhost.example.com"}) {
        SCOPED_TRACE(site);
        EXPECT_THAT(file_error("[manage]\nsite = \"" + site + "\"\n"), StartsWith("manage.site: \"" + site + "\": plain http://"));
    }
    EXPECT_THAT(file_error("[manage]\napi_host = \"http://api.example.com\"\n"),
                StartsWith(R"(manage.api_host: "http://api.example.com": plain http://)"));
    // An api_host without a scheme takes the site's: plain, so it must be loopback too.
    EXPECT_THAT(file_error("[manage]\nsite = \"http://127.0.0.1:8080\"\napi_host = \"api.example.com\"\n"),
                StartsWith(R"(manage.api_host: "api.example.com": takes plain http from manage.site; plain http://)"));
}

TEST(Config, PlainHttpManageSiteOnLoopbackIsAccepted)
{
    for (const std::string site : {"http://127.0.0.1:8080", "http://127.1.2.3", "http://[::1]:9000",
                                   "http://localhost:8443", "http://LOCALHOST"}) {
        SCOPED_TRACE(site);
        EXPECT_EQ(load_ok("[manage]\nsite = \"" + site + "\"\n").app.manage.site, site);
    }
    EXPECT_EQ(load_ok("[manage]\nsite = \"http://127.0.0.1:8080\"\napi_host = \"localhost:9000\"\n").app.manage.api_host,
              "localhost:9000");
}

TEST(Config, ConnectionFairnessKeys)
{
    const auto s = load_ok("[server]\nmax_connections_per_client = 8\nidle_timeout = \"5s\"\n");
    EXPECT_EQ(s.app.server.max_connections_per_client, 8u);
    EXPECT_EQ(s.app.server.idle_timeout.count(), 5000);
    EXPECT_EQ(settings{}.app.server.max_connections_per_client, 64u);
    EXPECT_EQ(settings{}.app.server.idle_timeout.count(), 15'000);
    EXPECT_EQ(file_error("[server]\nmax_connections_per_client = 0\n"),
              "server.max_connections_per_client: 0: must be positive");
}

TEST(Config, RejectionQueueLimitKey)
{
    EXPECT_EQ(load_ok("[storage]\nrejection_queue_limit = 50\n").app.storage.rejection_queue_limit, 50u);
    EXPECT_EQ(settings{}.app.storage.rejection_queue_limit, 1000u);
    EXPECT_EQ(file_error("[storage]\nrejection_queue_limit = 0\n"), "storage.rejection_queue_limit: 0: must be positive");
}

TEST(Config, CheckIntervalNeedsTheApiKeys)
{
    EXPECT_EQ(file_error("[manage]\nsite = \"na.myconnectwise.net\"\ncheck_interval = \"5m\"\n"),
              "manage.check_interval: set, but manage.company_id, manage.public_key, manage.private_key, "
              "manage.client_id: not set");
}

TEST(Config, ManageValuesAreChecked)
{
    EXPECT_EQ(file_error("[manage]\nsite = \"ftp://x\"\n"),
              R"(manage.site: "ftp://x": expected a host name or an http(s):// URL)");
    EXPECT_EQ(file_error("[manage]\npage_size = 1001\n"), "manage.page_size: 1001: must be at most 1000");
    EXPECT_EQ(file_error("[manage]\npaging = \"fast\"\n"),
              R"(manage.paging: "fast": expected forward-only or navigable)");
    EXPECT_EQ(file_error("[manage]\napi_version = \"2025.1\\r\\nX: y\"\n"),
              R"(manage.api_version: "2025.1\r\nX: y": expected a version like 2025.1)");
    EXPECT_EQ(file_error("[manage]\ncodebase = \"../x/\"\n"),
              R"(manage.codebase: "../x/": expected a codebase like v2025_1/)");
}

TEST(Config, SubscriptionsAreReadAndNormalized)
{
    const auto s = load_ok(R"(
[[subscriptions]]
type = "Ticket"
level = "Owner"
url = "https://h/c?recordId="
[[subscriptions]]
type = "ticket"
level = "board"
object_id = 5
url = "https://h/c?recordId="
description = "board 5"
)");
    ASSERT_EQ(s.app.subscriptions.size(), 2u);
    EXPECT_EQ(s.app.subscriptions[0].type, "ticket");
    EXPECT_EQ(s.app.subscriptions[0].level, "owner");
    EXPECT_EQ(s.app.subscriptions[0].object_id, 1);
    EXPECT_EQ(s.app.subscriptions[1].object_id, 5);
    EXPECT_EQ(s.app.subscriptions[1].description, "board 5");
}

TEST(Config, SubscriptionErrorsNameTheEntry)
{
    EXPECT_EQ(file_error("[[subscriptions]]\ntype = \"tickets\"\nlevel = \"owner\"\nurl = \"https://h/\"\n"),
              "subscriptions[1]: unknown type \"tickets\" (expected one of activity, agreement, company, contact, "
              "configuration, invoice, expense, member, opportunity, productcatalog, project, purchaseorder, "
              "schedule, ticket, time)");
    EXPECT_EQ(file_error("[[subscriptions]]\ntype = \"ticket\"\nlevel = \"board\"\nurl = \"https://h/\"\n"),
              "subscriptions[1]: level board needs object_id (the id of the board record)");
    EXPECT_EQ(file_error("[[subscriptions]]\ntype = \"ticket\"\nlevel = \"owner\"\nurl = \"https://h/\"\n"
                         "colour = \"red\"\n"),
              "subscriptions[1].colour: unknown key (type, level, object_id, url, description)");
    EXPECT_EQ(file_error("[[subscriptions]]\ntype = \"ticket\"\nlevel = \"owner\"\nurl = \"https://h/\"\n"
                         "[[subscriptions]]\ntype = \"ticket\"\nlevel = \"owner\"\nurl = \"https://h/\"\n"),
              "subscriptions[2]: same type, level, object_id and url as subscriptions[1]");
    EXPECT_EQ(file_error("[subscriptions]\ncheck_interval = \"5m\"\n"),
              "subscriptions: expected [[subscriptions]] tables (an array of tables)");
}

// A Standard Webhooks secret (24 key bytes); tests check that it never shows in a message.
constexpr std::string_view webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view secret_text = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// One [[destinations]] table with the required keys and `extra` lines.
std::string destination(const std::string& name, const std::string& extra = "")
{
    return fmt::format("[[destinations]]\nname = \"{}\"\nurl = \"https://hooks.example.com/in\"\nsecret = \"{}\"\n{}",
                       name, webhook_secret, extra);
}

// The error of a configuration holding one destination with `extra` lines; it must not hold
// the secret.
std::string destination_error(const std::string& extra)
{
    const auto e = file_error(destination("sync", extra));
    EXPECT_EQ(e.find(secret_text), std::string::npos) << e;
    return e;
}

TEST(Config, ForwardDefaults)
{
    using namespace std::chrono_literals;
    const auto& f = settings{}.app.forward;
    EXPECT_EQ(f.retries, (forward::retry_schedule{0ms, 5s, 5min, 30min, 2h, 5h, 10h, 10h}));
    EXPECT_EQ(f.jitter, 0.2);
    EXPECT_TRUE(settings{}.app.destinations.empty());
    EXPECT_THAT(render(settings{}),
                ::testing::HasSubstr("[forward]\nretry_schedule = [\"0s\", \"5s\", \"5m\", \"30m\", \"2h\", \"5h\", "
                                     "\"10h\", \"10h\"]\njitter = 0.2\nmax_retry_after = \"1h\"\n"
                                     "breaker_threshold = 10\nbreaker_probe_interval = \"30s\"\n"
                                     "poll_interval = \"1s\"\nlease_margin = \"30s\"\nca_file = \"\"\n"));
    EXPECT_THAT(render(settings{}), ::testing::Not(::testing::HasSubstr("[[destinations]]")));
}

TEST(Config, ForwardSectionIsRead)
{
    using namespace std::chrono_literals;
    temp_dir dir;
    const auto ca = dir.write("ca.pem", pem);
    const auto s = load_ok(R"(
[forward]
retry_schedule = ["0s", "5s", "5m"]
jitter = 0.5
max_retry_after = "10m"
breaker_threshold = 0
breaker_probe_interval = "1m"
poll_interval = "50ms"
lease_margin = "5s"
ca_file = ")" + ca + "\"\n");
    const auto& f = s.app.forward;
    EXPECT_EQ(f.retries, (forward::retry_schedule{0ms, 5s, 5min}));
    EXPECT_EQ(f.jitter, 0.5);
    EXPECT_EQ(f.max_retry_after, 10min);
    EXPECT_EQ(f.breaker_threshold, 0u);
    EXPECT_EQ(f.breaker_probe_interval, 1min);
    EXPECT_EQ(f.poll_interval, 50ms);
    EXPECT_EQ(f.lease_margin, 5s);
    EXPECT_EQ(f.ca_file, ca);
}

TEST(Config, ForwardJitterMayBeAnInteger)
{
    EXPECT_EQ(load_ok("[forward]\njitter = 0\n").app.forward.jitter, 0.0);
}

TEST(Config, ForwardFromTheEnvironment)
{
    using namespace std::chrono_literals;
    const auto r =
        load(std::nullopt, fake_env({{"CWHOOK_FORWARD_JITTER", "0.25"}, {"CWHOOK_FORWARD_RETRY_SCHEDULE", "0, 1m"}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->app.forward.jitter, 0.25);
    EXPECT_EQ(r->app.forward.retries, (forward::retry_schedule{0ms, 1min}));
    EXPECT_EQ(env_error({{"CWHOOK_FORWARD_JITTER", "lots"}}), R"(CWHOOK_FORWARD_JITTER: "lots": not a number)");
    EXPECT_EQ(env_error({{"CWHOOK_FORWARD_JITTER", "nan"}}), "CWHOOK_FORWARD_JITTER: nan: expected a finite number");
}

TEST(Config, ForwardRetryScheduleIsChecked)
{
    EXPECT_EQ(file_error("[forward]\nretry_schedule = []\n"), "forward.retry_schedule: must not be empty");
    EXPECT_EQ(file_error("[forward]\nretry_schedule = [\"0\", \"later\"]\n"),
              R"(forward.retry_schedule: "later": expected a duration like 500ms, 3s, 1h)");
    EXPECT_EQ(file_error("[forward]\nretry_schedule = [\"-5s\"]\n"),
              R"(forward.retry_schedule: "-5s": expected a duration like 500ms, 3s, 1h)");
    EXPECT_EQ(file_error("[forward]\nretry_schedule = \"5s\"\n"),
              "forward.retry_schedule: expected an array of strings");
    std::string many = "[forward]\nretry_schedule = [\"1s\"";
    for (int i = 0; i < 100; ++i) {
        many += ", \"1s\"";
    }
    EXPECT_EQ(file_error(many + "]\n"), "forward.retry_schedule: has 101 entries; at most 100 are allowed");
}

TEST(Config, ForwardValuesAreChecked)
{
    EXPECT_EQ(file_error("[forward]\njitter = 0.95\n"), "forward.jitter: 0.95: must be at most 0.9");
    EXPECT_EQ(file_error("[forward]\njitter = -0.1\n"), "forward.jitter: -0.1: must not be negative");
    EXPECT_EQ(file_error("[forward]\njitter = nan\n"), "forward.jitter: nan: expected a finite number");
    EXPECT_EQ(file_error("[forward]\njitter = \"0.2\"\n"), "forward.jitter: expected a number");
    EXPECT_EQ(file_error("[forward]\nmax_retry_after = \"soon\"\n"),
              R"(forward.max_retry_after: "soon": expected a duration like 500ms, 3s, 1h)");
    EXPECT_EQ(file_error("[forward]\nbreaker_threshold = -1\n"), "forward.breaker_threshold: -1: must not be negative");
    EXPECT_EQ(file_error("[forward]\nbreaker_probe_interval = \"0\"\n"),
              R"(forward.breaker_probe_interval: "0": must be positive)");
    EXPECT_EQ(file_error("[forward]\npoll_interval = \"10ms\"\n"),
              R"(forward.poll_interval: "10ms": must be at least 50ms)");
    EXPECT_EQ(file_error("[forward]\npoll_interval = \"2h\"\n"), R"(forward.poll_interval: "2h": must be at most 1h)");
    temp_dir dir;
    const auto missing = dir.file("ca.pem");
    EXPECT_EQ(file_error("[forward]\nca_file = \"" + missing + "\"\n"),
              "forward.ca_file: " + missing + ": no such file");
}

TEST(Config, DestinationIsRead)
{
    using namespace std::chrono_literals;
    const auto s = load_ok(R"(
[[destinations]]
name = "sync-service"
url = "https://sync.internal.example/hooks/manage"
secret = ")" + std::string(webhook_secret) +
                           R"("
types = ["Ticket", "company"]
actions = ["added", "Updated"]
body = "event"
timeout = "2s"
rate = 2.5
concurrency = 16
ordering = "entity"
retry_schedule = ["0", "1m"]
)");
    ASSERT_EQ(s.app.destinations.size(), 1u);
    const auto& d = s.app.destinations[0];
    EXPECT_EQ(d.name, "sync-service");
    EXPECT_EQ(d.url, "https://sync.internal.example/hooks/manage");
    EXPECT_EQ(d.secret, webhook_secret);
    EXPECT_EQ(d.secret_file, "");
    EXPECT_EQ(d.types, (std::vector<std::string>{"ticket", "company"}));
    EXPECT_EQ(d.actions, (std::vector<std::string>{"added", "updated"}));
    EXPECT_EQ(d.body, forward::body_format::event);
    EXPECT_EQ(d.timeout, 2s);
    EXPECT_EQ(d.rate, 2.5);
    EXPECT_EQ(d.concurrency, 16u);
    EXPECT_EQ(d.order, forward::ordering::entity);
    EXPECT_EQ(d.retries, (forward::retry_schedule{0ms, 1min}));
}

TEST(Config, DestinationDefaults)
{
    const auto s = load_ok(destination("a") + destination("b", "rate = 50\n"));
    ASSERT_EQ(s.app.destinations.size(), 2u);
    const auto& d = s.app.destinations[0];
    const forward::destination defaults;
    EXPECT_TRUE(d.types.empty());
    EXPECT_TRUE(d.actions.empty());
    EXPECT_EQ(d.body, forward::body_format::raw);
    EXPECT_EQ(d.timeout, defaults.timeout);
    EXPECT_EQ(d.timeout, std::chrono::seconds(10));
    EXPECT_EQ(d.rate, 0.0);
    EXPECT_EQ(d.concurrency, 4u);
    EXPECT_EQ(d.order, forward::ordering::none);
    EXPECT_TRUE(d.retries.empty());
    EXPECT_EQ(s.app.destinations[1].name, "b");
    EXPECT_EQ(s.app.destinations[1].rate, 50.0);
}

TEST(Config, DestinationRequiredKeys)
{
    EXPECT_EQ(file_error("[[destinations]]\nurl = \"https://h/\"\nsecret = \"" + std::string(webhook_secret) + "\"\n"),
              "destinations[1]: name and url are required");
    EXPECT_EQ(file_error("[[destinations]]\nname = \"a\"\nsecret = \"" + std::string(webhook_secret) + "\"\n"),
              "destinations[1]: name and url are required");
    EXPECT_EQ(file_error("[[destinations]]\nname = \"a\"\nurl = \"https://h/\"\n"),
              "destinations[1]: secret or secret_file is required");
}

TEST(Config, DestinationValuesAreChecked)
{
    EXPECT_EQ(destination_error("timeout = \"50ms\"\n"), R"(destinations[1].timeout: "50ms": must be at least 100ms)");
    EXPECT_EQ(destination_error("timeout = \"6m\"\n"), R"(destinations[1].timeout: "6m": must be at most 5m)");
    EXPECT_EQ(destination_error("rate = -1\n"), "destinations[1].rate: -1: must not be negative");
    EXPECT_EQ(destination_error("rate = inf\n"), "destinations[1].rate: inf: expected a finite number");
    EXPECT_EQ(destination_error("rate = \"fast\"\n"), "destinations[1].rate: expected a number");
    EXPECT_EQ(destination_error("concurrency = 0\n"), "destinations[1].concurrency: 0: must be positive");
    EXPECT_EQ(destination_error("concurrency = 257\n"), "destinations[1].concurrency: 257: must be at most 256");
    EXPECT_EQ(destination_error("concurrency = 1.5\n"), "destinations[1].concurrency: expected an integer");
    EXPECT_EQ(destination_error("body = \"json\"\n"), R"(destinations[1].body: "json": expected raw or event)");
    EXPECT_EQ(destination_error("ordering = \"fifo\"\n"),
              R"(destinations[1].ordering: "fifo": expected none or entity)");
    EXPECT_EQ(destination_error("types = [\"ticket\", \"\"]\n"), R"(destinations[1].types: "": must not be empty)");
    EXPECT_EQ(destination_error("types = \"ticket\"\n"), "destinations[1].types: expected an array of strings");
    EXPECT_EQ(destination_error("actions = [\"added\", \"created\"]\n"),
              R"(destinations[1].actions: "created": expected added, updated or deleted)");
    EXPECT_EQ(destination_error("retry_schedule = []\n"), "destinations[1].retry_schedule: must not be empty");
    EXPECT_EQ(destination_error("retry_schedule = [\"1x\"]\n"),
              R"(destinations[1].retry_schedule: "1x": expected a duration like 500ms, 3s, 1h)");
}

TEST(Config, DestinationNameIsChecked)
{
    EXPECT_EQ(file_error(destination("sync service")),
              R"(destinations[1].name: "sync service": expected 1 to 64 letters, digits, '_', '.' or '-')");
    EXPECT_EQ(file_error(destination("")),
              R"(destinations[1].name: "": expected 1 to 64 letters, digits, '_', '.' or '-')");
    const std::string long_name(65, 'n');
    EXPECT_EQ(file_error(destination(long_name)),
              "destinations[1].name: \"" + long_name + "\": expected 1 to 64 letters, digits, '_', '.' or '-'");
    EXPECT_EQ(load_ok(destination(std::string(64, 'n'))).app.destinations.at(0).name, std::string(64, 'n'));
}

TEST(Config, DestinationUrlIsChecked)
{
    const auto with_url = [](const std::string& url) {
        return file_error("[[destinations]]\nname = \"a\"\nurl = \"" + url + "\"\nsecret = \"" +
                          std::string(webhook_secret) + "\"\n");
    };
    EXPECT_EQ(with_url("ftp://h/x"), R"(destinations[1].url: "ftp://h/x": scheme must be http or https)");
    EXPECT_EQ(with_url("hooks.example.com/in"), R"(destinations[1].url: "hooks.example.com/in": not an absolute URL)");
    EXPECT_EQ(with_url("https://u:p@h/x"),
              R"(destinations[1].url: "https://u:p@h/x": user-info and fragments are not allowed)");
    EXPECT_EQ(with_url("https://h:0/x"), R"(destinations[1].url: "https://h:0/x": invalid port)");
}

TEST(Config, DestinationErrorsNameTheEntry)
{
    EXPECT_EQ(file_error(destination("a") + destination("b", "timeout = \"0\"\n")),
              R"(destinations[2].timeout: "0": must be at least 100ms)");
}

TEST(Config, DestinationNamesAreUnique)
{
    EXPECT_EQ(file_error(destination("a") + destination("b") + destination("a")),
              R"(destinations[3].name: "a": already used by destinations[1])");
}

TEST(Config, DestinationUnknownKey)
{
    EXPECT_EQ(destination_error("colour = \"red\"\n"),
              "destinations[1].colour: unknown key (name, url, secret, secret_file, types, actions, body, timeout, "
              "rate, concurrency, ordering, retry_schedule)");
}

TEST(Config, DestinationsMustBeAnArrayOfTables)
{
    EXPECT_EQ(file_error("[destinations]\nname = \"a\"\n"),
              "destinations: expected [[destinations]] tables (an array of tables)");
}

TEST(Config, DestinationSecretIsNeverShown)
{
    // A secret webhook_key refuses: the message names the key and why, never the value.
    const std::string bad_secret = "whsec_c2hvcnQ="; // 5 key bytes
    const auto short_key =
        file_error("[[destinations]]\nname = \"a\"\nurl = \"https://h/\"\nsecret = \"" + bad_secret + "\"\n");
    EXPECT_EQ(short_key, "destinations[1].secret: <redacted>: webhook secret has 5 key bytes; 24 to 64 expected");
    EXPECT_EQ(short_key.find("c2hvcnQ"), std::string::npos);
    EXPECT_EQ(file_error("[[destinations]]\nname = \"a\"\nurl = \"https://h/\"\nsecret = \"whsec_not base64!\"\n"),
              R"(destinations[1].secret: <redacted>: webhook secret is not "whsec_" followed by base64)");
    // Errors of the other keys of an entry with a good secret.
    for (const std::string extra : {"timeout = \"1d\"\n", "url2 = 1\n", "secret_file = \"/x\"\n"}) {
        destination_error(extra);
    }
    const auto s = load_ok(destination("a"));
    const auto text = render(s);
    EXPECT_THAT(text, ::testing::HasSubstr("secret = \"<redacted>\"\n"));
    EXPECT_EQ(text.find(secret_text), std::string::npos) << text;
}

TEST(Config, DestinationSecretGivenTwice)
{
    temp_dir dir;
    const auto file = dir.write("secret", std::string(webhook_secret));
    EXPECT_EQ(destination_error("secret_file = \"" + file + "\"\n"),
              "destinations[1].secret and destinations[1].secret_file: give one, not both");
}

TEST(Config, DestinationSecretFromAFile)
{
    temp_dir dir;
    const auto file = dir.write("sync-secret", std::string(webhook_secret) + " \t\n");
    const auto toml = fmt::format(
        "[[destinations]]\nname = \"sync\"\nurl = \"https://h/in\"\nsecret_file = \"{}\"\ntypes = [\"ticket\"]\n",
        file);
    const auto s = load_ok(toml);
    ASSERT_EQ(s.app.destinations.size(), 1u);
    EXPECT_EQ(s.app.destinations[0].secret, webhook_secret);
    EXPECT_EQ(s.app.destinations[0].secret_file, file);
    const auto text = render(s);
    EXPECT_THAT(text, ::testing::HasSubstr("secret_file = \"" + file + "\"\n"));
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("secret = ")));
    EXPECT_EQ(text.find(secret_text), std::string::npos) << text;
    // It loads again from the same file.
    const auto again = load_ok(text);
    EXPECT_TRUE(again.app.destinations == s.app.destinations);
}

TEST(Config, DestinationSecretFileFromTheCredentialsDirectory)
{
    temp_dir dir;
    dir.write("sync-secret", std::string(webhook_secret) + "\n");
    const auto s = load_ok("[[destinations]]\nname = \"sync\"\nurl = \"https://h/in\"\nsecret_file = \"sync-secret\"\n",
                           {{"CREDENTIALS_DIRECTORY", dir.file("")}});
    EXPECT_EQ(s.app.destinations.at(0).secret, webhook_secret);
    EXPECT_EQ(s.app.destinations.at(0).secret_file, "sync-secret");
}

TEST(Config, DestinationSecretFileProblemsNameTheFile)
{
    temp_dir dir;
    const auto missing = dir.file("nosuch");
    const auto with_file = [](const std::string& path) {
        return file_error("[[destinations]]\nname = \"a\"\nurl = \"https://h/\"\nsecret_file = \"" + path + "\"\n");
    };
    EXPECT_EQ(with_file(missing), "destinations[1].secret_file: " + missing + ": no such file");
    const auto empty = dir.write("empty", "\n");
    EXPECT_THAT(with_file(empty), StartsWith("destinations[1].secret_file: " + empty + ": is empty"));
    const auto bad = dir.write("bad", "whsec_c2hvcnQ=\n");
    const auto e = with_file(bad);
    EXPECT_EQ(e, "destinations[1].secret_file: " + bad + ": webhook secret has 5 key bytes; 24 to 64 expected");
    EXPECT_EQ(e.find("c2hvcnQ"), std::string::npos);
}

TEST(Config, RenderedDestinationsLoadAgain)
{
    temp_dir dir;
    const auto file = dir.write("secret", std::string(webhook_secret));
    const auto original = load_ok(fmt::format(R"([[destinations]]
name = "sync"
url = "https://sync.example.com/in?x=1&y=%22"
secret_file = "{}"
types = ["ticket", "company"]
actions = ["deleted"]
body = "event"
timeout = "1m30s"
rate = 0.25
concurrency = 1
ordering = "entity"
retry_schedule = ["0", "10s"]
[[destinations]]
name = "audit"
url = "http://127.0.0.1:9000/"
secret_file = "{}"
rate = 50
)",
                                              file, file));
    const auto rendered = render(original);
    EXPECT_THAT(rendered, ::testing::HasSubstr("\n[[destinations]]\nname = \"sync\"\n"
                                               "url = \"https://sync.example.com/in?x=1&y=%22\"\n"
                                               "secret_file = \"" +
                                               file +
                                               "\"\n"
                                               "types = [\"ticket\", \"company\"]\nactions = [\"deleted\"]\n"
                                               "body = \"event\"\ntimeout = \"1m30s\"\nrate = 0.25\n"
                                               "concurrency = 1\nordering = \"entity\"\n"
                                               "retry_schedule = [\"0s\", \"10s\"]\n"));
    EXPECT_THAT(rendered, ::testing::HasSubstr("rate = 50\n"));
    const auto again = load_ok(rendered);
    expect_same(again, original);
    EXPECT_EQ(render(again), rendered);
}

TEST(Config, PlainHttpDestinationOffLoopbackIsWarnedAbout)
{
    const auto s = load_ok(
        fmt::format("[verify]\ncompanies = [\"acme\"]\n"
                    "[[destinations]]\nname = \"local\"\nurl = \"http://127.0.0.1:9000/in\"\nsecret = \"{0}\"\n"
                    "[[destinations]]\nname = \"tls\"\nurl = \"https://hooks.example.com/in\"\nsecret = \"{0}\"\n"
                    "[[destinations]]\nname = \"plain\"\nurl = \"http://hooks.example.com/in\"\nsecret = \"{0}\"\n"
                    "[[destinations]]\nname = \"v6\"\nurl = \"http://[2001:db8::1]:8080/in\"\nsecret = \"{0}\"\n",
                    webhook_secret));
    EXPECT_EQ(warnings(s), (std::vector<std::string>{
                               "destinations[3] (plain): events go unencrypted to hooks.example.com:80; use https://",
                               "destinations[4] (v6): events go unencrypted to [2001:db8::1]:8080; use https://"}));
}

} // namespace
TEST(Config, PostgresUrlIsCheckedWithoutShowingItsPassword)
{
    const auto bad = env_error({{"CWHOOK_STORAGE_BACKEND", "postgres"},
                                {"CWHOOK_STORAGE_URL", "postgresql://cwhook:s3cret@db1/cwhook?no_such_option=1"}});
    EXPECT_THAT(bad, StartsWith("CWHOOK_STORAGE_URL: <redacted>: not a PostgreSQL connection string: "));
    EXPECT_EQ(bad.find("s3cret"), std::string::npos) << bad;
    EXPECT_EQ(env_error({{"CWHOOK_STORAGE_BACKEND", "postgres"}}),
              "storage.backend: \"postgres\" needs storage.url (or storage.url_file)");
    temp_dir dir;
    const auto url_file =
        dir.write("pg-url", "postgresql://cwhook:s3cret@db1,db2/cwhook?target_session_attrs=read-write\n");
    const auto s = load_ok(fmt::format("[storage]\nbackend = \"postgres\"\nurl_file = \"{}\"\npool = 2\n", url_file));
    EXPECT_EQ(s.app.storage.backend, store::backend::postgres);
    EXPECT_EQ(s.app.storage.url, "postgresql://cwhook:s3cret@db1,db2/cwhook?target_session_attrs=read-write");
    EXPECT_EQ(s.app.storage.pool, 2u);
    const auto text = render(s);
    EXPECT_THAT(text, ::testing::HasSubstr("url = \"<redacted>\"\n"));
    EXPECT_EQ(text.find("s3cret"), std::string::npos);
}

} // namespace cwhook::config
