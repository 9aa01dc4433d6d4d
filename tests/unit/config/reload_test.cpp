// plan_reload(): every key of the table is marked live or restart, and changing any one key is
// reported in exactly the list its mark names, with the in-force settings following the mark.
#include "config/config.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace cwhook::config {
namespace {

namespace fs = std::filesystem;

class temp_dir {
public:
    temp_dir()
    {
        std::string pattern = (fs::temp_directory_path() / "cwhook-reload-XXXXXX").string();
        CWHOOK_CHECK(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~temp_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::string write(const std::string& name) const
    {
        const auto p = path_ / name;
        std::ofstream(p) << name << '\n';
        return p.string();
    }

private:
    fs::path path_;
};

env_lookup env_with(std::map<std::string, std::string> vars)
{
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        const auto it = vars.find(std::string(name));
        if (it == vars.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

// "server.max_body_bytes" -> "CWHOOK_SERVER_MAX_BODY_BYTES"
std::string env_name(const std::string& key)
{
    std::string out = "CWHOOK_";
    for (const char c : key) {
        out.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    return out;
}

// The [[...]] arrays of tables, which the environment cannot set; tested on their own below.
bool is_table_array(const std::string& key)
{
    return key == "subscriptions" || key == "destinations";
}

// A configuration where every key can change alone and stay valid (files exist, the Manage
// keys the subscription check needs are set), and one other valid value for every key.
class Reload : public ::testing::Test {
protected:
    temp_dir dir;
    std::string base_toml = fmt_base();
    std::map<std::string, std::string> other{
        {"server.listen", "127.0.0.1:8081"},
        {"server.tls_listen", "127.0.0.1:8443"},
        {"server.tls_cert", dir.write("other-cert.pem")},
        {"server.tls_key", dir.write("other-key.pem")},
        {"server.callback_path", "/hooks"},
        {"server.max_body_bytes", "2048"},
        {"server.max_header_bytes", "4096"},
        {"server.max_connections", "10"},
        {"server.max_connections_per_client", "5"},
        {"server.trusted_proxies", "10.0.0.0/8"},
        {"server.handshake_timeout", "3s"},
        {"server.header_timeout", "3s"},
        {"server.body_timeout", "3s"},
        {"server.write_timeout", "3s"},
        {"server.idle_timeout", "3s"},
        {"server.drain_grace", "2s"},
        {"server.drain_timeout", "3s"},
        {"server.threads", "3"},
        {"verify.mode", "report"},
        {"verify.allowed_key_hosts", "keys.example.com"},
        {"verify.companies", "Other"},
        {"verify.key_cache_ttl", "5m"},
        {"verify.key_fetch_timeout", "2s"},
        {"verify.key_failure_ttl", "2s"},
        {"verify.key_refetch_interval", "2s"},
        {"verify.answer_deadline", "2s"},
        {"verify.key_fetch_rate", "7"},
        {"verify.key_fetch_concurrency", "7"},
        {"verify.key_max_bytes", "1000"},
        {"verify.key_cache_entries", "50"},
        {"verify.ca_file", dir.write("other-ca.pem")},
        {"verify.max_pending", "5"},
        {"verify.max_failed", "5"},
        {"verify.pending_retry_min", "2s"},
        {"verify.pending_retry_max", "10m"},
        {"verify.pending_max_age", "1h"},
        {"storage.backend", "postgres"},
        {"storage.url", "postgresql://cwhook@db2/cwhook"},
        {"storage.pool", "5"},
        {"storage.claim_lease", "5m"},
        {"storage.path", "/var/lib/other/cwhook.db"},
        {"storage.synchronous", "normal"},
        {"storage.busy_timeout", "1s"},
        {"storage.queue_limit", "5"},
        {"storage.max_batch", "5"},
        {"storage.cache_mib", "5"},
        {"storage.max_rejections", "5"},
        {"storage.rejection_queue_limit", "5"},
        {"storage.retention", "1h"},
        {"storage.retention_batch", "5"},
        {"storage.retention_interval", "1m"},
        {"admin.listen", "127.0.0.1:9191"},
        {"admin.token", "token-2"},
        {"admin.hosts", "admin.example.com"},
        {"admin.origins", "https://admin.example.com"},
        {"admin.replay_targets", "replay.example.com"},
        {"admin.session_lifetime", "30m"},
        {"manage.site", "eu.myconnectwise.net"},
        {"manage.company_id", "other"},
        {"manage.public_key", "pub-2"},
        {"manage.private_key", "priv-2"},
        {"manage.client_id", "client-2"},
        {"manage.api_version", "2024.1"},
        {"manage.api_host", "api.example.com"},
        {"manage.codebase", "v2024_1/"},
        {"manage.ca_file", dir.write("other-manage-ca.pem")},
        {"manage.timeout", "5s"},
        {"manage.connect_timeout", "5s"},
        {"manage.max_attempts", "2"},
        {"manage.retry_max_delay", "5s"},
        {"manage.page_size", "10"},
        {"manage.paging", "navigable"},
        {"manage.check_interval", "1m"},
        {"manage.auto_heal", "true"},
        {"forward.retry_schedule", "0,1m"},
        {"forward.jitter", "0.5"},
        {"forward.max_retry_after", "5m"},
        {"forward.breaker_threshold", "3"},
        {"forward.breaker_probe_interval", "5s"},
        {"forward.poll_interval", "250ms"},
        {"forward.lease_margin", "10s"},
        {"forward.ca_file", dir.write("other-forward-ca.pem")},
        {"catch_up.enabled", "false"},
        {"catch_up.types", "ticket,company"},
        {"catch_up.interval", "5m"},
        {"catch_up.gap_after", "10m"},
        {"catch_up.heartbeat_interval", "10s"},
        {"catch_up.overlap", "1m"},
        {"catch_up.initial_window", "2h"},
        {"catch_up.rate", "1.5"},
        {"catch_up.batch", "50"},
        {"catch_up.reconcile_deletes", "contact"},
        {"catch_up.reconcile_interval", "1h"},
        {"catch_up.lease", "5m"},
        {"log.level", "debug"},
        {"log.format", "json"},
    };

    std::string fmt_base() const
    {
        return "[server]\ntls_cert = \"" + dir.write("cert.pem") + "\"\ntls_key = \"" + dir.write("key.pem") +
               "\"\n[manage]\nsite = \"na.myconnectwise.net\"\ncompany_id = \"cobalt\"\npublic_key = \"pub\"\n"
               "private_key = \"priv\"\nclient_id = \"client\"\n"
               // A URL already (unused with sqlite), so that backend = "postgres" alone is valid.
               "[storage]\nurl = \"postgresql://cwhook@db1/cwhook\"\n";
    }

    settings load_base() const
    {
        auto s = load_text(base_toml, env_with({}));
        CWHOOK_CHECK(s.has_value());
        return *s;
    }
};

TEST_F(Reload, EveryKeyIsMarkedLiveOrRestart)
{
    for (const auto& k : keys()) {
        EXPECT_NE(k.effect, reload_effect::unclassified) << k.name;
    }
}

TEST_F(Reload, EveryKeyHasAnotherValueHere)
{
    // A key added to the table must be added to `other` too, so the next test covers it.
    for (const auto& k : keys()) {
        if (!is_table_array(k.name)) {
            EXPECT_EQ(other.count(k.name), 1u) << k.name;
        }
    }
    EXPECT_EQ(other.size() + 2, keys().size());
}

TEST_F(Reload, EachChangedKeyIsReportedInTheListOfItsMark)
{
    const auto base = load_base();
    for (const auto& k : keys()) {
        if (is_table_array(k.name)) {
            continue;
        }
        auto next = load_text(base_toml, env_with({{env_name(k.name), other.at(k.name)}}));
        ASSERT_TRUE(next.has_value()) << k.name << ": " << next.error();
        const auto plan = plan_reload(base, *next);
        const bool live = k.effect == reload_effect::live;
        EXPECT_EQ(plan.live, live ? std::vector<std::string>{k.name} : std::vector<std::string>{}) << k.name;
        EXPECT_EQ(plan.restart, live ? std::vector<std::string>{} : std::vector<std::string>{k.name}) << k.name;
        // In force: a live key's new value, a restart key's running one.
        const auto again = plan_reload(base, plan.in_force);
        EXPECT_EQ(again.live, plan.live) << k.name;
        EXPECT_TRUE(again.restart.empty()) << k.name;
        EXPECT_TRUE(plan_reload(plan.in_force, *next).live.empty()) << k.name;
    }
}

TEST_F(Reload, ChangedSubscriptionsNeedARestart)
{
    const auto base = load_base();
    auto next = load_text(base_toml + "[[subscriptions]]\ntype = \"ticket\"\nlevel = \"owner\"\nurl = \"https://hooks.example.com/callbacks\"\n",
                          env_with({}));
    ASSERT_TRUE(next.has_value()) << next.error();
    const auto plan = plan_reload(base, *next);
    EXPECT_TRUE(plan.live.empty());
    EXPECT_EQ(plan.restart, std::vector<std::string>{"subscriptions"});
    EXPECT_TRUE(plan.in_force.app.subscriptions.empty());
}

TEST_F(Reload, ForwardKeysAreLiveButTheCaFile)
{
    for (const auto& k : keys()) {
        if (k.name.starts_with("forward.")) {
            EXPECT_EQ(k.effect, k.name == "forward.ca_file" ? reload_effect::restart : reload_effect::live) << k.name;
        }
    }
}

TEST_F(Reload, ChangedDestinationsAreLive)
{
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const auto with = [&](const std::string& destinations) {
        auto s = load_text(base_toml + destinations, env_with({}));
        CWHOOK_CHECK(s.has_value());
        return *s;
    };
    const auto one = "[[destinations]]\nname = \"a\"\nurl = \"https://a.example.com/\"\nsecret = \"" + secret + "\"\n";
    const auto base = load_base();
    for (const auto& next : {with(one), with(one + "rate = 5\n"),
                             with(one +
                                  "[[destinations]]\nname = \"b\"\nurl = \"https://b.example.com/\"\n"
                                  "secret = \"" +
                                  secret + "\"\n")}) {
        const auto plan = plan_reload(base, next);
        EXPECT_EQ(plan.live, std::vector<std::string>{"destinations"});
        EXPECT_TRUE(plan.restart.empty());
        EXPECT_TRUE(plan.in_force.app.destinations == next.app.destinations);
        // And back: removing them is live too.
        EXPECT_EQ(plan_reload(next, base).live, std::vector<std::string>{"destinations"});
    }
    EXPECT_TRUE(plan_reload(with(one), with(one)).live.empty());
    const auto all = keys();
    EXPECT_EQ(
        std::count_if(all.begin(), all.end(),
                      [](const key_info& k) { return k.name == "destinations" && k.effect == reload_effect::live; }),
        1);
}

TEST_F(Reload, NothingChangedIsAnEmptyPlan)
{
    const auto base = load_base();
    const auto plan = plan_reload(base, load_base());
    EXPECT_TRUE(plan.live.empty());
    EXPECT_TRUE(plan.restart.empty());
}

TEST_F(Reload, InheritedSocketsStayTheRunningOnes)
{
    auto base = load_base();
    base.app.server.inherited.push_back({3, false});
    const auto plan = plan_reload(base, load_base());
    ASSERT_EQ(plan.in_force.app.server.inherited.size(), 1u);
    EXPECT_EQ(plan.in_force.app.server.inherited.front().fd, 3);
}

} // namespace
} // namespace cwhook::config
