// The Prometheus exposition after real traffic: every family the operator dashboards need,
// with Prometheus naming, and label values from payloads kept bounded.
#include "support/harness.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace cwhook::test {
namespace {

bool has(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

TEST(Metrics, ExpositionCoversRequestsEventsStorageAndKeys)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    app_options o;
    o.db = dir.file("events.db");
    o.allowed_key_hosts = {keys.host_entry()};
    o.ca_file = cert.cert;
    running_app app(o);
    ASSERT_EQ(send(app.http(), signed_call(make_payload(keys.url(), 1, "m-1"), keys.key())).status, 200);
    ASSERT_EQ(send(app.http(), signed_call(make_payload(keys.url(), 1, "m-1"), keys.key())).status, 200);  // dup
    ASSERT_EQ(send(app.http(), signed_call(make_payload(keys.url(), 2, "m-2"), "wrong key")).status, 401);
    http_call get;
    get.method = "GET";
    get.target = "/nowhere";
    ASSERT_EQ(send(app.http(), get).status, 404);

    // Requests are counted once their answer is written, which the client may see first.
    ASSERT_TRUE(eventually([&] {
        const auto t = app.get().render_metrics();
        return has(t, "cwhook_http_requests_total{route=\"unmatched\",status=\"404\"} 1") &&
               has(t, "cwhook_http_request_duration_seconds_count{route=\"/callbacks\"} 3");
    })) << app.get().render_metrics();
    const auto text = app.get().render_metrics();
    for (const auto* line : {
             "# TYPE cwhook_http_requests_total counter",
             "cwhook_http_requests_total{route=\"/callbacks\",status=\"200\"} 2",
             "cwhook_http_requests_total{route=\"/callbacks\",status=\"401\"} 1",
             "cwhook_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
             "# TYPE cwhook_http_request_duration_seconds histogram",
             "cwhook_http_request_duration_seconds_count{route=\"/callbacks\"} 3",
             "cwhook_events_by_type_total{type=\"ticket\",action=\"updated\",status=\"verified\"} 1",
             "cwhook_duplicates_total 1",
             "cwhook_rejections_total{reason=\"bad_signature\"} 1",
             // The mismatch against the cached key earned one fresh fetch before its verdict.
             "cwhook_key_fetches_total 2",
             "cwhook_key_refreshes_total 1",
             "cwhook_key_cache_hits_total",
             "cwhook_key_fetch_duration_seconds_count 2",
             "cwhook_failed_events 0",
             "# TYPE cwhook_store_commit_batch_size histogram",
             "# TYPE cwhook_store_commit_duration_seconds histogram",
             "cwhook_store_queue_depth ",
             "cwhook_pending_events 0",
             "cwhook_open_connections",
             "cwhook_build_info{version=\"" CWHOOK_VERSION "\"} 1",
         }) {
        EXPECT_TRUE(has(text, line)) << "missing: " << line << "\n" << text;
    }
    // Every family name follows the conventions: cwhook_ prefix; counters end in _total.
    for (std::size_t pos = text.find("# TYPE "); pos != std::string::npos; pos = text.find("# TYPE ", pos + 1)) {
        const auto end = text.find('\n', pos);
        const auto line = text.substr(pos + 7, end - pos - 7);
        EXPECT_EQ(line.rfind("cwhook_", 0), 0u) << line;
        if (line.ends_with(" counter")) {
            EXPECT_TRUE(line.find("_total ") != std::string::npos) << line;
        }
    }
}

TEST(Metrics, InventedTypesCannotGrowTheLabelSet)
{
    temp_dir dir;
    const auto cert = make_cert(dir);
    fake_key_server keys(cert);
    app_options o;
    o.db = dir.file("events.db");
    o.mode = callback::verify_mode::off;  // stored without verification, as an attacker would hope
    running_app app(o);
    for (int i = 0; i < 80; ++i) {
        const auto type = fmt::format("kind_{}{}", static_cast<char>('a' + i % 26), static_cast<char>('a' + i / 26));
        const auto body = make_payload(keys.url(), 100 + i, fmt::format("t-{}", i), "updated", type);
        ASSERT_EQ(send(app.http(), signed_call(body, keys.key())).status, 200);
    }
    const auto weird = make_payload(keys.url(), 999, "t-weird", "exploded", "Ticket\\\"}");
    ASSERT_EQ(send(app.http(), signed_call(weird, keys.key())).status, 200);
    const auto text = app.get().render_metrics();
    std::size_t type_series = 0;
    for (std::size_t pos = text.find("cwhook_events_by_type_total{"); pos != std::string::npos;
         pos = text.find("cwhook_events_by_type_total{", pos + 1)) {
        ++type_series;
    }
    EXPECT_LE(type_series, 66u) << text;  // 64 types + "other" for the rest
    EXPECT_TRUE(has(text, "cwhook_events_by_type_total{type=\"other\",action=\"updated\",status=\"unverified\"} 16"))
        << text;
    EXPECT_TRUE(has(text, "cwhook_events_by_type_total{type=\"other\",action=\"other\",status=\"unverified\"} 1"))
        << text;
}

} // namespace
} // namespace cwhook::test
