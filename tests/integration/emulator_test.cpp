// The Manage emulator over real HTTPS on 127.0.0.1:0: its REST API (paging, conditions,
// errors, auth), its key endpoint, its deliveries (signature, retry rule, disabling), and the
// loop with the receiver: trigger -> cwhook -> a stored verified row, and a forged delivery
// from a rogue "Manage" that cwhook refuses without contacting it.
#include "support/harness.hpp"

#include "crypto/digest.hpp"
#include "crypto/signature.hpp"
#include "emulator/emulator.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "json/payload.hpp"
#include "json/signing_key.hpp"
#include "json/value.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <deque>
#include <future>
#include <map>
#include <set>

namespace cwhook::test {
namespace {

using namespace std::chrono_literals;
namespace emu = cwhook::emulator;
namespace net = boost::asio;
using tcp = net::ip::tcp;

tcp::endpoint loopback(std::uint16_t port)
{
    return {net::ip::make_address("127.0.0.1"), port};
}

json::value parse(std::string_view text)
{
    auto r = json::parse_value(text);
    if (const auto* err = std::get_if<json::parse_error>(&r)) {
        ADD_FAILURE() << "not JSON (" << err->detail << "): " << text;
        return {};
    }
    return std::get<json::value>(std::move(r));
}

std::string canonical(std::string_view text)
{
    return json::serialize(parse(text));
}

std::vector<std::int64_t> ids_of(std::string_view body)
{
    std::vector<std::int64_t> out;
    const auto v = parse(body);
    if (const auto* items = v.as_array()) {
        for (const auto& item : *items) {
            out.push_back(item.find("id") ? item.find("id")->as_int().value_or(-1) : -1);
        }
    }
    return out;
}

// rel -> URL of an RFC 5988 Link header.
std::map<std::string, std::string> links(const http_result& r)
{
    std::map<std::string, std::string> out;
    const auto it = r.headers.find("link");
    if (it == r.headers.end()) {
        return out;
    }
    std::string_view rest = it->second;
    while (!rest.empty()) {
        const auto open = rest.find('<');
        const auto close = rest.find('>', open);
        const auto rel = rest.find("rel=\"", close);
        const auto end = rest.find('"', rel + 5);
        if (open == std::string_view::npos || close == std::string_view::npos || rel == std::string_view::npos ||
            end == std::string_view::npos) {
            break;
        }
        out[std::string(rest.substr(rel + 5, end - rel - 5))] = std::string(rest.substr(open + 1, close - open - 1));
        rest = rest.substr(end + 1);
    }
    return out;
}

std::string basic(std::string_view user, std::string_view pass)
{
    const std::string text = fmt::format("{}:{}", user, pass);
    return "Basic " + crypto::base64_encode({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

// A receiver of deliveries over plain HTTP: records every POST and answers from a script of
// statuses (200 once the script is used up).
class receiver {
public:
    struct hit {
        std::string target;
        std::string body;
        std::string signature;
    };

    receiver()
    {
        auto routes = std::make_shared<http::router>();
        routes->add(
            http::beast_http::verb::post, "", [this](http::request& req) { return answer(this, req); }, true);
        http::settings s;
        s.listen = {"127.0.0.1:0"};
        server_ = std::make_unique<http::server>(ioc_, s, routes, nullptr, metrics_);
        if (auto r = server_->start(); !r) {
            throw std::runtime_error(r.error());
        }
        thread_ = std::thread([this] {
            auto guard = net::make_work_guard(ioc_);
            ioc_.run();
        });
    }

    ~receiver()
    {
        std::promise<void> done;
        server_->shutdown([&done](bool) { done.set_value(); });
        done.get_future().wait_for(5s);
        ioc_.stop();
        thread_.join();
    }

    std::string url(std::string_view path = "/hook?recordId=") const
    {
        return fmt::format("http://127.0.0.1:{}{}", server_->plain_endpoints().front().port(), path);
    }

    void script(std::vector<unsigned> statuses)
    {
        std::lock_guard lock(mutex_);
        script_.assign(statuses.begin(), statuses.end());
    }

    void always(unsigned status)
    {
        std::lock_guard lock(mutex_);
        always_ = status;
    }

    std::vector<hit> hits() const
    {
        std::lock_guard lock(mutex_);
        return hits_;
    }

private:
    static net::awaitable<http::response> answer(receiver* self, http::request& req)
    {
        unsigned status = 200;
        {
            std::lock_guard lock(self->mutex_);
            self->hits_.push_back(hit{std::string(req.msg.target()), req.msg.body(),
                                      std::string(req.msg["x-content-signature"])});
            if (!self->script_.empty()) {
                status = self->script_.front();
                self->script_.pop_front();
            } else {
                status = self->always_;
            }
        }
        co_return http::json_response(status, "{}");
    }

    net::io_context ioc_{1};
    metrics::registry metrics_;
    std::unique_ptr<http::server> server_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::deque<unsigned> script_;
    unsigned always_ = 200;
    std::vector<hit> hits_;
};

class Emulator : public ::testing::Test {
protected:
    temp_dir dir;

    static emu::settings fast()
    {
        emu::settings s;
        s.retry_delays = {10ms, 20ms};
        s.delivery_timeout = 5s;
        return s;
    }

    emu::emulator& start(emu::settings s = fast())
    {
        em = std::make_unique<emu::emulator>(std::move(s));
        auto port = em->start();
        if (!port) {
            throw std::runtime_error(port.error());
        }
        return *em;
    }

    // An authenticated API call; target relative to the API root ("/system/callbacks").
    http_result api(std::string method, std::string target, std::string body = {},
                    std::vector<std::pair<std::string, std::string>> headers = {}, bool auth = true)
    {
        http_call c;
        c.method = std::move(method);
        c.target = api_root() + target;
        c.body = std::move(body);
        if (auth) {
            const auto& cfg = em->config();
            c.headers.emplace_back("Authorization", basic(cfg.company + "+" + cfg.public_key, cfg.private_key));
            c.headers.emplace_back("clientId", cfg.client_id);
            c.headers.emplace_back("Accept", "application/vnd.connectwise.com+json; version=2025.1");
        }
        if (!c.body.empty()) {
            c.headers.emplace_back("Content-Type", "application/json");
        }
        for (auto& h : headers) {
            c.headers.push_back(std::move(h));
        }
        return send(loopback(em->port()), c, em->ca_file());
    }

    http_result raw(std::string method, std::string target, std::string body = {})
    {
        http_call c;
        c.method = std::move(method);
        c.target = std::move(target);
        c.body = std::move(body);
        return send(loopback(em->port()), c, em->ca_file());
    }

    std::string api_root() const { return em->api_url().substr(em->base_url().size()); }

    // The target of an absolute link URL on this emulator.
    std::string target_of(const std::string& url) const
    {
        EXPECT_TRUE(url.starts_with(em->base_url())) << url;
        return url.substr(em->base_url().size());
    }

    static emu::callback_entry entry(std::string url, std::string type = "ticket", std::string level = "owner",
                                     std::int64_t object_id = 1)
    {
        emu::callback_entry e;
        e.url = std::move(url);
        e.type = std::move(type);
        e.level = std::move(level);
        e.object_id = object_id;
        return e;
    }

    // The emulator's clock (fast_clocked()): 2026-12-03T10:00:00Z plus this many seconds.
    std::atomic<std::int64_t> seconds_ahead{0};

    emu::settings clocked()
    {
        auto s = fast();
        s.clock = [this] {
            return std::chrono::system_clock::from_time_t(1796292000) + std::chrono::seconds(seconds_ahead.load());
        };
        return s;
    }

    std::unique_ptr<emu::emulator> em;
};

// --- REST API -----------------------------------------------------------------------------

TEST_F(Emulator, CompanyInfoAnswersTheCodebaseWithoutAuth)
{
    start();
    auto r = raw("GET", "/login/companyinfo/" + em->config().company);
    ASSERT_EQ(r.status, 200) << r.error;
    const auto v = parse(r.body);
    ASSERT_NE(v.find("Codebase"), nullptr);
    EXPECT_EQ(*v.find("Codebase")->as_string(), "v2025_1/");
    EXPECT_EQ(*v.find("VersionCode")->as_string(), "v2025.1");

    auto unknown = raw("GET", "/login/companyinfo/nosuchcompany");
    EXPECT_EQ(unknown.status, 200);
    EXPECT_EQ(unknown.body, "null");
    EXPECT_EQ(em->requests(emu::route::companyinfo), 2u);
}

TEST_F(Emulator, CodebaseMoveAnswers404OnTheOldPaths)
{
    start();
    const auto old_root = api_root();
    em->set_codebase("v2025_2/");
    auto r = raw("GET", old_root + "/system/callbacks");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(canonical(r.body), canonical(fixture("api-system-callbacks-remove-webhook-failed.json")));
    EXPECT_EQ(*parse(raw("GET", "/login/companyinfo/" + em->config().company).body).find("Codebase")->as_string(),
              "v2025_2/");
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);
}

TEST_F(Emulator, WrongCredentialsAre401)
{
    start();
    auto none = api("GET", "/system/callbacks", {}, {{"clientId", em->config().client_id}}, false);
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(*parse(none.body).find("code")->as_string(), "Unauthorized");

    const auto& cfg = em->config();
    auto wrong = api("GET", "/system/callbacks", {},
                     {{"Authorization", basic(cfg.company + "+" + cfg.public_key, "wrong")},
                      {"clientId", cfg.client_id}},
                     false);
    EXPECT_EQ(wrong.status, 401);
    auto wrong_company = api("GET", "/system/callbacks", {},
                             {{"Authorization", basic("other+" + cfg.public_key, cfg.private_key)},
                              {"clientId", cfg.client_id}},
                             false);
    EXPECT_EQ(wrong_company.status, 401);
    // The company id is case-insensitive, like Manage's login company.
    std::string upper = cfg.company;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    auto ok = api("GET", "/system/callbacks", {},
                  {{"Authorization", basic(upper + "+" + cfg.public_key, cfg.private_key)}, {"clientId", cfg.client_id}},
                  false);
    EXPECT_EQ(ok.status, 200);
}

TEST_F(Emulator, MissingOrUnknownClientIdIs400)
{
    start();
    const auto& cfg = em->config();
    const auto auth = basic(cfg.company + "+" + cfg.public_key, cfg.private_key);
    auto missing = api("GET", "/system/callbacks", {}, {{"Authorization", auth}}, false);
    EXPECT_EQ(missing.status, 400);
    EXPECT_EQ(*parse(missing.body).find("code")->as_string(), "InvalidClientId");
    auto unknown = api("GET", "/system/callbacks", {}, {{"Authorization", auth}, {"clientId", "not-mine"}}, false);
    EXPECT_EQ(unknown.status, 400);
}

TEST_F(Emulator, CreateAnswers201WithTheEntryAndOwnerObjectIdOne)
{
    start();
    auto r = api("POST", "/system/callbacks", fixture("api-system-callbacks-tickets-request.json"));
    ASSERT_EQ(r.status, 201) << r.body;
    const auto v = parse(r.body);
    const auto id = v.find("id")->as_int().value_or(0);
    EXPECT_GT(id, 0);
    EXPECT_EQ(v.find("objectId")->as_int(), 1);
    EXPECT_EQ(*v.find("type")->as_string(), "ticket");
    EXPECT_EQ(v.find("connectWiseID")->as_string()->size(), 36u);
    EXPECT_NE(v.find("_info")->find("lastUpdated"), nullptr);
    EXPECT_TRUE(r.headers["location"].ends_with(fmt::format("/system/callbacks/{}", id)));
    ASSERT_TRUE(em->find_callback(id));
    EXPECT_EQ(em->find_callback(id)->url, "https://test.com/webhook?recordId=");
    EXPECT_EQ(em->requests(emu::route::callbacks_create), 1u);
}

TEST_F(Emulator, DuplicateRegistrationAnswersObjectExists)
{
    start();
    const auto body = fixture("api-system-callbacks-contacts-request.json");
    ASSERT_EQ(api("POST", "/system/callbacks", body).status, 201);
    auto again = api("POST", "/system/callbacks", body);
    EXPECT_EQ(again.status, 400);
    EXPECT_EQ(canonical(again.body), canonical(fixture("api-system-callbacks-create-webhook-bad-request-2.json")));
    EXPECT_EQ(em->callbacks().size(), 1u);
}

TEST_F(Emulator, InvalidEntryAnswersFieldErrors)
{
    start();
    auto r = api("POST", "/system/callbacks", R"({"url":"nope","type":"ticket","level":"nosuch","objectId":0})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(canonical(r.body), canonical(fixture("api-system-callbacks-create-webhook-bad-request-1.json")));
    auto not_json = api("POST", "/system/callbacks", "{");
    EXPECT_EQ(not_json.status, 400);
    EXPECT_EQ(*parse(not_json.body).find("code")->as_string(), "InvalidObject");
    EXPECT_TRUE(em->callbacks().empty());
}

TEST_F(Emulator, GetPutPatchDelete)
{
    start();
    const auto id = em->add_callback(entry("https://a.example/cb?recordId="));
    const auto path = fmt::format("/system/callbacks/{}", id);

    auto got = api("GET", path);
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(parse(got.body).find("id")->as_int(), id);

    auto patched = api("PATCH", path, R"([{"op":"replace","path":"inactiveFlag","value":true}])");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(parse(patched.body).find("inactiveFlag")->as_bool(), true);
    EXPECT_TRUE(em->find_callback(id)->inactive);

    auto put = api("PUT", path, R"({"url":"https://b.example/cb?recordId=","type":"ticket","level":"board","objectId":4})");
    ASSERT_EQ(put.status, 200) << put.body;
    const auto after = *em->find_callback(id);
    EXPECT_EQ(after.url, "https://b.example/cb?recordId=");
    EXPECT_EQ(after.level, "board");
    EXPECT_FALSE(after.inactive);  // PUT replaces: what is not given returns to its default

    EXPECT_EQ(api("DELETE", path).status, 204);
    EXPECT_EQ(api("GET", path).status, 404);
    EXPECT_EQ(api("DELETE", path).status, 404);
    EXPECT_EQ(api("PATCH", "/system/callbacks/999999", "[]").status, 404);
}

TEST_F(Emulator, UpdateIntoADuplicateIsObjectExists)
{
    start();
    em->add_callback(entry("https://a.example/cb?recordId="));
    const auto b = em->add_callback(entry("https://b.example/cb?recordId="));
    auto r = api("PATCH", fmt::format("/system/callbacks/{}", b),
                 R"([{"op":"replace","path":"url","value":"https://a.example/cb?recordId="}])");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("ObjectExists"), std::string::npos);
    EXPECT_EQ(em->find_callback(b)->url, "https://b.example/cb?recordId=");
}

TEST_F(Emulator, NavigablePagingWithLinkHeaders)
{
    start();
    em->seed_callbacks(2100, entry("https://a.example/cb?recordId=", "ticket", "board", 1));

    auto first = api("GET", "/system/callbacks?pageSize=1000");
    ASSERT_EQ(first.status, 200);
    auto l1 = links(first);
    EXPECT_EQ(l1.count("next"), 1u);
    EXPECT_EQ(l1.count("last"), 1u);
    EXPECT_EQ(l1.count("prev"), 0u);
    EXPECT_EQ(l1.count("first"), 0u);
    EXPECT_NE(l1["last"].find("page=3"), std::string::npos);

    std::vector<std::int64_t> all = ids_of(first.body);
    auto second = api("GET", target_of(l1["next"]).substr(api_root().size()));
    ASSERT_EQ(second.status, 200);
    auto l2 = links(second);
    EXPECT_EQ(l2.size(), 4u);
    EXPECT_NE(l2["prev"].find("page=1"), std::string::npos);
    auto more = ids_of(second.body);
    all.insert(all.end(), more.begin(), more.end());

    auto third = api("GET", target_of(l2["next"]).substr(api_root().size()));
    auto l3 = links(third);
    EXPECT_EQ(l3.count("next"), 0u);
    EXPECT_EQ(l3.count("last"), 0u);
    EXPECT_EQ(l3.count("first"), 1u);
    more = ids_of(third.body);
    EXPECT_EQ(more.size(), 100u);
    all.insert(all.end(), more.begin(), more.end());

    ASSERT_EQ(all.size(), 2100u);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
    EXPECT_EQ(std::set<std::int64_t>(all.begin(), all.end()).size(), 2100u);
}

TEST_F(Emulator, LinksKeepConditionsAndOnePageHasNoLink)
{
    start();
    em->seed_callbacks(30, entry("https://a.example/cb?recordId=", "ticket", "board", 1));
    em->seed_callbacks(5, entry("https://a.example/cb?recordId=", "contact", "company", 1));
    auto r = api("GET", "/system/callbacks?conditions=type%3D%22ticket%22&pageSize=10&page=2");
    ASSERT_EQ(r.status, 200);
    auto l = links(r);
    ASSERT_EQ(l.count("next"), 1u);
    EXPECT_NE(l["next"].find("conditions=type%3D%22ticket%22"), std::string::npos);
    EXPECT_NE(l["next"].find("page=3"), std::string::npos);
    auto next = api("GET", target_of(l["next"]).substr(api_root().size()));
    EXPECT_EQ(ids_of(next.body).size(), 10u);

    auto one = api("GET", "/system/callbacks?conditions=type%3D%22contact%22");
    EXPECT_EQ(ids_of(one.body).size(), 5u);
    EXPECT_EQ(one.headers.count("link"), 0u);
}

TEST_F(Emulator, PageSizeIsCappedAt1000AndValidated)
{
    start();
    em->seed_callbacks(1200, entry("https://a.example/cb?recordId=", "ticket", "board", 1));
    EXPECT_EQ(ids_of(api("GET", "/system/callbacks?pageSize=5000").body).size(), 1000u);
    EXPECT_EQ(ids_of(api("GET", "/system/callbacks").body).size(), 25u);
    EXPECT_EQ(api("GET", "/system/callbacks?pageSize=0").status, 400);
    EXPECT_EQ(api("GET", "/system/callbacks?page=x").status, 400);
}

TEST_F(Emulator, ForwardOnlyPagingByPageId)
{
    start();
    em->seed_callbacks(2500, entry("https://a.example/cb?recordId=", "ticket", "board", 1));
    const std::vector<std::pair<std::string, std::string>> fwd{{"pagination-type", "forward-only"}};
    std::vector<std::int64_t> all;
    std::string target = "/system/callbacks?pageSize=1000";
    int pages = 0;
    for (; pages < 10; ++pages) {
        auto r = api("GET", target, {}, fwd);
        ASSERT_EQ(r.status, 200) << r.body;
        auto l = links(r);
        ASSERT_EQ(l.count("next"), 1u) << "forward-only always links the next pageId";
        const auto ids = ids_of(r.body);
        if (ids.empty()) {
            EXPECT_NE(l["next"].find(fmt::format("pageId={}", all.back())), std::string::npos);
            break;
        }
        all.insert(all.end(), ids.begin(), ids.end());
        EXPECT_NE(l["next"].find(fmt::format("pageId={}", ids.back())), std::string::npos);
        target = target_of(l["next"]).substr(api_root().size());
    }
    EXPECT_EQ(pages, 3);
    ASSERT_EQ(all.size(), 2500u);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
    EXPECT_EQ(std::set<std::int64_t>(all.begin(), all.end()).size(), 2500u);
    EXPECT_EQ(api("GET", "/system/callbacks?orderBy=id%20desc", {}, fwd).status, 400);
}

TEST_F(Emulator, ConditionsFilterListAndCount)
{
    start();
    em->add_callback(entry("https://hooks.example/cb?recordId="));
    em->add_callback(entry("https://hooks.example/cb?recordId=", "ticket", "board", 5));
    em->add_callback(entry("https://hooks.example/cb?recordId=", "ticket", "board", 7));
    em->add_callback(entry("https://other.example/cb?recordId=", "contact"));
    auto off = entry("https://hooks.example/cb?recordId=", "company");
    off.inactive = true;
    em->add_callback(off);

    auto count = [&](std::string_view encoded) {
        auto r = api("GET", "/system/callbacks/count?conditions=" + std::string(encoded));
        EXPECT_EQ(r.status, 200) << r.body;
        return parse(r.body).find("count") ? parse(r.body).find("count")->as_int().value_or(-1) : -1;
    };
    auto listed = [&](std::string_view encoded) {
        return ids_of(api("GET", "/system/callbacks?conditions=" + std::string(encoded)).body).size();
    };
    EXPECT_EQ(count(""), 5);
    EXPECT_EQ(count("type%3D%22ticket%22"), 3);
    EXPECT_EQ(count("type%3D%22ticket%22%20and%20level%3D%22board%22"), 2);
    EXPECT_EQ(count("objectId%3D5%20or%20objectId%3D7"), 2);
    EXPECT_EQ(count("url%20like%20%22*other*%22"), 1);
    EXPECT_EQ(count("inactiveFlag%3Dtrue"), 1);
    EXPECT_EQ(count("type!%3D%22ticket%22%20and%20inactiveFlag%3Dfalse"), 1);
    EXPECT_EQ(listed("type%3D%22ticket%22%20and%20level%3D%22board%22"), 2u);
    EXPECT_EQ(listed("url%3D%22https%3A%2F%2Fhooks.example%2Fcb%3FrecordId%3D%22"), 4u);

    auto bad = api("GET", "/system/callbacks?conditions=type%3D");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(*parse(bad.body).find("code")->as_string(), "InvalidObject");
    EXPECT_EQ(api("GET", "/system/callbacks/count?conditions=nosuch%3D1").status, 400);
}

// --- record collections ----------------------------------------------------------------------

TEST_F(Emulator, TriggersKeepTheRecords)
{
    start(clocked());
    receiver rx;
    em->add_callback(entry(rx.url()));

    ASSERT_EQ(em->trigger({"ticket", "added", 10, {}, R"({"summary":"Printer on fire","priority":{"id":4}})"}).size(),
              1u);
    auto r = em->find_record("ticket", 10);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->date_entered, "2026-12-03T10:00:00Z");
    EXPECT_EQ(r->last_updated, "2026-12-03T10:00:00Z");
    auto v = parse(r->json);
    EXPECT_EQ(*v.find("summary")->as_string(), "Printer on fire");
    EXPECT_EQ(v.find("priority")->find("id")->as_int(), 4);
    EXPECT_EQ(*v.find("_info")->find("updatedBy")->as_string(), em->config().member_id);
    // The Entity delivered is the record.
    EXPECT_EQ(*parse(rx.hits().at(0).body).find("Entity")->as_string(), r->json);

    seconds_ahead = 90;
    em->trigger({"ticket", "updated", 10, {}, R"({"status":{"id":7}})"});
    r = em->find_record("ticket", 10);
    EXPECT_EQ(r->date_entered, "2026-12-03T10:00:00Z");
    EXPECT_EQ(r->last_updated, "2026-12-03T10:01:30Z");
    v = parse(r->json);
    EXPECT_EQ(*v.find("summary")->as_string(), "Printer on fire"); // kept
    EXPECT_EQ(v.find("status")->find("id")->as_int(), 7);

    // An update of a record never seen creates it, entered earlier.
    em->trigger({"ticket", "updated", 11, {}, {}});
    r = em->find_record("ticket", 11);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->date_entered, "2026-12-02T10:01:30Z");
    EXPECT_EQ(r->last_updated, "2026-12-03T10:01:30Z");
    EXPECT_EQ(*parse(r->json).find("summary")->as_string(), "Emulated ticket 11");

    em->trigger({"ticket", "deleted", 10, {}, {}});
    EXPECT_FALSE(em->find_record("ticket", 10));
    ASSERT_EQ(em->records("ticket").size(), 1u);
    EXPECT_EQ(em->records("ticket")[0].id, 11);
    EXPECT_TRUE(em->records("contact").empty());
    EXPECT_EQ(rx.hits().size(), 4u);
}

TEST_F(Emulator, NoCallbackChangesTheRecordOnly)
{
    start(clocked());
    receiver rx;
    em->add_callback(entry(rx.url()));
    emu::trigger_request t{"ticket", "added", 20, {}, {}};
    t.callback = false;
    EXPECT_TRUE(em->trigger(t).empty());
    EXPECT_TRUE(em->find_record("ticket", 20));

    auto c = raw("POST", "/_emulator/trigger",
                 R"({"type":"ticket","action":"updated","id":21,"entity":{"summary":"quiet"},"callback":false})");
    ASSERT_EQ(c.status, 200) << c.body;
    const auto answer = parse(c.body);
    EXPECT_TRUE(answer.find("deliveries")->as_array()->empty());
    EXPECT_EQ(*answer.find("record")->find("summary")->as_string(), "quiet");
    EXPECT_EQ(raw("POST", "/_emulator/trigger", R"({"type":"ticket","action":"added","id":1,"callback":"no"})").status,
              400);

    EXPECT_TRUE(em->touch_records("ticket", 100, 50, "updated").empty());
    EXPECT_EQ(em->records("ticket").size(), 52u);
    EXPECT_TRUE(rx.hits().empty());
    EXPECT_EQ(em->callbacks().at(0).deliveries, 0u);
}

TEST_F(Emulator, CollectionConditionsOnLastUpdatedAndId)
{
    start(clocked());
    em->touch_records("ticket", 1, 10, "added");
    seconds_ahead = 60;
    em->touch_records("ticket", 4, 3, "updated");
    em->touch_records("contact", 1, 2, "added");

    auto ids = [&](std::string_view query) {
        auto r = api("GET", "/service/tickets?" + std::string(query));
        EXPECT_EQ(r.status, 200) << query << ": " << r.body;
        return ids_of(r.body);
    };
    auto count = [&](std::string_view query) {
        auto r = api("GET", "/service/tickets/count?" + std::string(query));
        EXPECT_EQ(r.status, 200) << r.body;
        return parse(r.body).find("count") ? parse(r.body).find("count")->as_int().value_or(-1) : -1;
    };
    EXPECT_EQ(ids("conditions=lastUpdated%20%3E%20%5B2026-12-03T10%3A00%3A00Z%5D"),
              (std::vector<std::int64_t>{4, 5, 6}));
    EXPECT_EQ(ids("conditions=lastUpdated%20%3E%3D%20%5B2026-12-03T10%3A00%3A00Z%5D").size(), 10u);
    EXPECT_EQ(ids("conditions=lastUpdated%20%3C%20%5B2026-12-03T10%3A01%3A00Z%5D").size(), 7u);
    EXPECT_EQ(ids("conditions=lastUpdated%20%3C%3D%20%5B2026-12-03T10%3A01%3A00Z%5D").size(), 10u);
    EXPECT_EQ(ids("conditions=_info%2FlastUpdated%20%3E%20%5B2026-12-03T10%3A00%3A59.999Z%5D").size(), 3u);
    EXPECT_EQ(ids("conditions=id%20in%20(2%2C%205%2C%2099)"), (std::vector<std::int64_t>{2, 5}));
    EXPECT_EQ(ids("conditions=id%20%3E%208%20or%20id%20%3C%3D%201"), (std::vector<std::int64_t>{1, 9, 10}));
    EXPECT_EQ(ids("conditions=lastUpdated%20%3E%20%5B2026-12-03T10%3A00%3A00Z%5D%20and%20id%20!%3D%205"),
              (std::vector<std::int64_t>{4, 6}));
    EXPECT_EQ(count(""), 10);
    EXPECT_EQ(count("conditions=lastUpdated%20%3E%20%5B2026-12-03T10%3A00%3A00Z%5D"), 3);
    EXPECT_EQ(parse(api("GET", "/company/contacts/count").body).find("count")->as_int(), 2);
    EXPECT_EQ(api("GET", "/service/tickets?conditions=id%20%3D").status, 400);
}

TEST_F(Emulator, CollectionOrderByAndFields)
{
    start(clocked());
    em->touch_records("company", 1, 5, "added");
    seconds_ahead = 10;
    em->touch_records("company", 2, 1, "updated");
    seconds_ahead = 20;
    em->touch_records("company", 4, 1, "updated");

    auto ids = [&](std::string_view query) {
        return ids_of(api("GET", "/company/companies?" + std::string(query)).body);
    };
    EXPECT_EQ(ids(""), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
    EXPECT_EQ(ids("orderBy=id%20desc"), (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
    EXPECT_EQ(ids("orderBy=lastUpdated%20desc"), (std::vector<std::int64_t>{4, 2, 1, 3, 5}));
    EXPECT_EQ(ids("orderBy=lastUpdated%20asc%2C%20id%20desc"), (std::vector<std::int64_t>{5, 3, 1, 2, 4}));
    EXPECT_EQ(ids("orderBy=_info%2FlastUpdated"), (std::vector<std::int64_t>{1, 3, 5, 2, 4}));
    EXPECT_EQ(api("GET", "/company/companies?orderBy=id%20sideways").status, 400);

    auto r = api("GET", "/company/companies?fields=id,_info,nosuch&orderBy=id%20desc&pageSize=2");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto v = parse(r.body);
    ASSERT_EQ(v.as_array()->size(), 2u);
    for (const auto& item : *v.as_array()) {
        ASSERT_EQ(item.as_object()->size(), 2u) << r.body;
        EXPECT_NE(item.find("id"), nullptr);
        EXPECT_NE(item.find("_info")->find("lastUpdated"), nullptr);
    }
    EXPECT_NE(links(r)["next"].find("fields=id,_info,nosuch"), std::string::npos);
    const auto one = parse(api("GET", "/company/companies/3?fields=name").body);
    EXPECT_EQ(json::serialize(one), R"({"name":"Emulated company 3"})");
}

TEST_F(Emulator, CollectionNavigablePagingOver2500Records)
{
    start();
    em->touch_records("ticket", 1, 2500, "updated");
    std::vector<std::int64_t> all;
    std::string target = "/service/tickets?pageSize=1000";
    int pages = 0;
    for (; pages < 5 && !target.empty(); ++pages) {
        auto r = api("GET", target);
        ASSERT_EQ(r.status, 200) << r.body;
        auto l = links(r);
        EXPECT_EQ(l.count("last"), pages < 2 ? 1u : 0u);
        EXPECT_EQ(l.count("first"), pages > 0 ? 1u : 0u);
        const auto ids = ids_of(r.body);
        all.insert(all.end(), ids.begin(), ids.end());
        target = l.count("next") ? target_of(l["next"]).substr(api_root().size()) : std::string{};
    }
    EXPECT_EQ(pages, 3);
    ASSERT_EQ(all.size(), 2500u);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
    EXPECT_EQ(std::set<std::int64_t>(all.begin(), all.end()).size(), 2500u);
}

TEST_F(Emulator, CollectionForwardOnlyPagingOver2500Records)
{
    start(clocked());
    em->touch_records("contact", 1, 2500, "added");
    seconds_ahead = 5;
    em->touch_records("contact", 1001, 1500, "updated");
    const std::vector<std::pair<std::string, std::string>> fwd{{"pagination-type", "forward-only"}};
    std::vector<std::int64_t> all;
    // A catch-up's query: what changed since a watermark, forward-only.
    std::string target =
        "/company/contacts?conditions=lastUpdated%20%3E%20%5B2026-12-03T10%3A00%3A00Z%5D&pageSize=1000";
    int pages = 0;
    for (; pages < 10; ++pages) {
        auto r = api("GET", target, {}, fwd);
        ASSERT_EQ(r.status, 200) << r.body;
        auto l = links(r);
        ASSERT_EQ(l.count("next"), 1u);
        EXPECT_NE(l["next"].find("conditions="), std::string::npos);
        const auto ids = ids_of(r.body);
        if (ids.empty()) {
            break;
        }
        all.insert(all.end(), ids.begin(), ids.end());
        EXPECT_NE(l["next"].find(fmt::format("pageId={}", ids.back())), std::string::npos);
        target = target_of(l["next"]).substr(api_root().size());
    }
    EXPECT_EQ(pages, 2);
    ASSERT_EQ(all.size(), 1500u);
    EXPECT_EQ(all.front(), 1001);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
    EXPECT_EQ(std::set<std::int64_t>(all.begin(), all.end()).size(), 1500u);
    EXPECT_EQ(api("GET", "/company/contacts?orderBy=id%20desc", {}, fwd).status, 400);
}

TEST_F(Emulator, CollectionRecordByIdAnd404)
{
    start();
    em->touch_records("opportunity", 7, 1, "added");
    auto got = api("GET", "/sales/opportunities/7");
    ASSERT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(got.body, em->find_record("opportunity", 7)->json);
    auto missing = api("GET", "/sales/opportunities/8");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(*parse(missing.body).find("code")->as_string(), "NotFound");
    EXPECT_EQ(api("GET", "/finance/invoices/1").status, 404);
    EXPECT_EQ(api("GET", "/finance/invoices").body, "[]");
    EXPECT_EQ(api("DELETE", "/sales/opportunities/7").status, 405);
    EXPECT_EQ(api("GET", "/sales/opportunities/7", {}, {}, false).status, 401);
    EXPECT_EQ(api("GET", "/service/nosuch").status, 404);
    EXPECT_EQ(em->requests(emu::route::record_get), 5u); // every method and answer counts
    EXPECT_EQ(em->requests(emu::route::records_list), 1u);
}

TEST_F(Emulator, FaultsApplyToCollections)
{
    start();
    em->touch_records("ticket", 1, 3, "added");
    emu::fault f;
    f.status = 429;
    f.count = 2;
    f.retry_after = 2s;
    f.path_prefix = api_root() + "/service/tickets";
    em->add_fault(f);
    EXPECT_EQ(api("GET", "/company/companies").status, 200);
    auto a = api("GET", "/service/tickets?pageSize=2");
    EXPECT_EQ(a.status, 429);
    EXPECT_EQ(a.headers["retry-after"], "2");
    EXPECT_EQ(*parse(a.body).find("code")->as_string(), "TooManyRequests");
    EXPECT_EQ(api("GET", "/service/tickets/count").status, 429);
    EXPECT_EQ(ids_of(api("GET", "/service/tickets").body).size(), 3u);
    EXPECT_EQ(em->requests(emu::route::records_list), 3u);
    EXPECT_EQ(em->requests(emu::route::records_count), 1u);
}

// --- key endpoint and faults -----------------------------------------------------------------

TEST_F(Emulator, KeyEndpointServesTheKeyAndRotationExpiresTheOld)
{
    start();
    const auto old_url = em->key_url();
    EXPECT_NE(old_url.find("//system/callbackkey/index.rails?companyName="), std::string::npos);
    auto r = raw("GET", target_of(old_url));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse_signing_key(r.body), em->signing_key());

    const auto old_key = em->signing_key();
    const auto new_url = em->rotate_key();
    EXPECT_NE(new_url, old_url);
    EXPECT_NE(em->signing_key(), old_key);
    EXPECT_EQ(raw("GET", target_of(old_url)).status, 404);
    auto fresh = raw("GET", target_of(new_url));
    EXPECT_EQ(fresh.status, 200);
    EXPECT_EQ(json::parse_signing_key(fresh.body), em->signing_key());
    EXPECT_EQ(em->requests(emu::route::callback_key), 3u);
}

TEST_F(Emulator, Injected429CarriesRetryAfterThenRecovers)
{
    start();
    emu::fault f;
    f.status = 429;
    f.count = 2;
    f.retry_after = 3s;
    em->add_fault(f);
    auto a = api("GET", "/system/callbacks");
    auto b = api("GET", "/system/callbacks");
    auto c = api("GET", "/system/callbacks");
    EXPECT_EQ(a.status, 429);
    EXPECT_EQ(a.headers["retry-after"], "3");
    EXPECT_EQ(*parse(a.body).find("code")->as_string(), "TooManyRequests");
    EXPECT_EQ(b.status, 429);
    EXPECT_EQ(c.status, 200);
    EXPECT_EQ(em->requests(emu::route::callbacks_list), 3u);
    const auto seen = em->recent_requests();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].status, 429u);
    EXPECT_EQ(seen[2].status, 200u);
    EXPECT_EQ(seen[2].header("accept"), "application/vnd.connectwise.com+json; version=2025.1");
}

TEST_F(Emulator, FaultsMatchTheirPathPrefixOnly)
{
    start();
    emu::fault f;
    f.status = 503;
    f.count = 0;  // until cleared
    f.path_prefix = api_root() + "/system/callbacks/count";
    em->add_fault(f);
    EXPECT_EQ(api("GET", "/system/callbacks/count").status, 503);
    EXPECT_EQ(api("GET", "/system/callbacks/count").status, 503);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);
    em->clear_faults();
    EXPECT_EQ(api("GET", "/system/callbacks/count").status, 200);
}

TEST_F(Emulator, SlowFaultDelaysTheAnswer)
{
    start();
    emu::fault f;
    f.status = 0;  // normal answer, late
    f.delay = 300ms;
    em->add_fault(f);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
}

TEST_F(Emulator, PersistedTableAndCertificateSurviveARestart)
{
    auto s = fast();
    s.state_dir = dir.file("emu");
    s.persist = true;
    start(s);
    const auto id = em->add_callback(entry("https://a.example/cb?recordId="));
    em->set_inactive(id, true);
    const auto cert = read_file(em->ca_file());
    em->stop();

    start(s);
    ASSERT_EQ(em->callbacks().size(), 1u);
    EXPECT_TRUE(em->find_callback(id)->inactive);
    EXPECT_EQ(read_file(em->ca_file()), cert);
    EXPECT_GT(em->add_callback(entry("https://b.example/cb?recordId=")), id);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);  // the old certificate still serves
}

// --- deliveries -------------------------------------------------------------------------------

TEST_F(Emulator, TriggerDeliversAPayloadThatVerifies)
{
    start();
    receiver rx;
    const auto sub = em->add_callback(entry(rx.url()));
    auto results = em->trigger({"ticket", "updated", 5000, {}, {}});
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0].delivered);
    EXPECT_EQ(results[0].attempts, 1u);
    EXPECT_EQ(results[0].callback_id, sub);

    const auto hits = rx.hits();
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].target, "/hook?recordId=5000");  // Manage appends the record id
    EXPECT_EQ(hits[0].body.find('\n'), std::string::npos);  // compact

    const auto parsed = json::parse_payload(hits[0].body);
    ASSERT_TRUE(std::holds_alternative<json::payload>(parsed));
    const auto& p = std::get<json::payload>(parsed);
    EXPECT_EQ(p.action, "updated");
    EXPECT_EQ(p.type, "ticket");
    EXPECT_EQ(p.id, 5000);
    EXPECT_EQ(p.key_url, em->key_url());
    EXPECT_EQ(p.callback_id, sub);
    EXPECT_EQ(p.company_id, em->config().company);
    ASSERT_TRUE(p.message_id);
    EXPECT_EQ(p.message_id->size(), 36u);

    // Entity is a JSON-encoded string holding the record.
    const auto body = parse(hits[0].body);
    const auto entity = body.find("Entity")->as_string();
    ASSERT_TRUE(entity);
    EXPECT_EQ(parse(*entity).find("id")->as_int(), 5000);

    // The signature verifies with the key the key_url serves, by cwhook's own code.
    const auto key = json::parse_signing_key(raw("GET", target_of(p.key_url)).body);
    ASSERT_TRUE(key);
    const auto sig = crypto::decode_signature_header(hits[0].signature);
    ASSERT_TRUE(sig);
    EXPECT_TRUE(crypto::verify_signature(crypto::digest_signing_key(*key), hits[0].body, *sig));
    EXPECT_FALSE(crypto::verify_signature(crypto::digest_signing_key("another key"), hits[0].body, *sig));
}

TEST_F(Emulator, DeletedSendsNullEntity)
{
    start();
    receiver rx;
    em->add_callback(entry(rx.url(), "contact"));
    ASSERT_EQ(em->trigger({"contact", "deleted", 57962, {}, {}}).size(), 1u);
    EXPECT_TRUE(parse(rx.hits().at(0).body).find("Entity")->is_null());
}

TEST_F(Emulator, TriggerMatchesTypeLevelAndActiveSubscriptions)
{
    start();
    receiver rx;
    const auto owner = em->add_callback(entry(rx.url("/owner?recordId=")));
    const auto board = em->add_callback(entry(rx.url("/board1?recordId="), "ticket", "board", 1));
    em->add_callback(entry(rx.url("/board2?recordId="), "ticket", "board", 2));
    const auto record = em->add_callback(entry(rx.url("/ticket?recordId="), "ticket", "ticket", 5000));
    em->add_callback(entry(rx.url("/other-ticket?recordId="), "ticket", "ticket", 5001));
    em->add_callback(entry(rx.url("/contact?recordId="), "contact"));
    auto off = entry(rx.url("/off?recordId="));
    off.inactive = true;
    em->add_callback(off);

    auto results = em->trigger({"ticket", "added", 5000, {{"board", 1}, {"status", 9}}, R"({"id":5000,"x":2.00})"});
    std::set<std::int64_t> fired;
    for (const auto& r : results) {
        EXPECT_TRUE(r.delivered) << r.url;
        fired.insert(r.callback_id);
    }
    EXPECT_EQ(fired, (std::set<std::int64_t>{owner, board, record}));
    ASSERT_EQ(rx.hits().size(), 3u);
    // A given entity is merged into the record, which goes out as the Entity.
    const auto sent = parse(*parse(rx.hits()[0].body).find("Entity")->as_string());
    EXPECT_EQ(sent.find("id")->as_int(), 5000);
    EXPECT_EQ(sent.find("x")->as_int(), 2);
    EXPECT_EQ(json::serialize(sent), em->find_record("ticket", 5000)->json);
    // Each registration gets its own message, told apart by CallbackObjectRecId.
    std::set<std::string> ids;
    for (const auto& h : rx.hits()) {
        ids.insert(std::string(*parse(h.body).find("MessageId")->as_string()));
    }
    EXPECT_EQ(ids.size(), 3u);
}

TEST_F(Emulator, RetriesOnlyOn404409419And429)
{
    start();
    receiver rx;
    em->add_callback(entry(rx.url()));
    for (unsigned status : {404u, 409u, 419u, 429u}) {
        rx.script({status, status});
        auto r = em->trigger({"ticket", "updated", 1, {}, {}});
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].attempts, 3u) << status;
        EXPECT_TRUE(r[0].delivered) << status;
    }
    for (unsigned status : {400u, 401u, 403u, 410u, 500u, 502u, 503u}) {
        rx.script({status});
        auto r = em->trigger({"ticket", "updated", 1, {}, {}});
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].attempts, 1u) << status;
        EXPECT_FALSE(r[0].delivered) << status;
        EXPECT_EQ(r[0].status, status);
        em->set_inactive(r[0].callback_id, false);  // keep it active for the next round
    }
    // Every attempt carried the same bytes and signature.
    const auto hits = rx.hits();
    ASSERT_GE(hits.size(), 3u);
    EXPECT_EQ(hits[0].body, hits[1].body);
    EXPECT_EQ(hits[0].signature, hits[2].signature);
}

TEST_F(Emulator, GivesUpAfterTwoRetries)
{
    start();
    receiver rx;
    rx.always(429);
    em->add_callback(entry(rx.url()));
    auto r = em->trigger({"ticket", "updated", 1, {}, {}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].attempts, 3u);
    EXPECT_FALSE(r[0].delivered);
    EXPECT_EQ(rx.hits().size(), 3u);
}

TEST_F(Emulator, UnreachableReceiverIsNotRetried)
{
    start();
    std::uint16_t port = 0;
    {
        receiver gone;
        port = static_cast<std::uint16_t>(std::stoi(gone.url().substr(17, 5)));
    }
    em->add_callback(entry(fmt::format("http://127.0.0.1:{}/hook?recordId=", port)));
    auto r = em->trigger({"ticket", "updated", 1, {}, {}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].attempts, 1u);
    EXPECT_EQ(r[0].status, 0u);
    EXPECT_FALSE(r[0].error.empty());
}

TEST_F(Emulator, DisablesASubscriptionAfterRepeatedFailures)
{
    auto s = fast();
    s.disable_after_failures = 3;
    start(s);
    receiver rx;
    rx.always(500);
    const auto id = em->add_callback(entry(rx.url()));
    for (int i = 0; i < 2; ++i) {
        auto r = em->trigger({"ticket", "updated", 1, {}, {}});
        ASSERT_EQ(r.size(), 1u);
        EXPECT_FALSE(r[0].disabled);
    }
    // A success in between starts the count afresh.
    rx.script({200});
    EXPECT_TRUE(em->trigger({"ticket", "updated", 1, {}, {}}).at(0).delivered);
    for (int i = 0; i < 2; ++i) {
        EXPECT_FALSE(em->trigger({"ticket", "updated", 1, {}, {}}).at(0).disabled);
    }
    auto third = em->trigger({"ticket", "updated", 1, {}, {}});
    ASSERT_EQ(third.size(), 1u);
    EXPECT_TRUE(third[0].disabled);
    EXPECT_TRUE(em->find_callback(id)->inactive);
    EXPECT_TRUE(em->trigger({"ticket", "updated", 1, {}, {}}).empty());  // inactive: nothing fires

    // Visible through the API, and re-enabled by a PATCH like `subscriptions sync` sends.
    EXPECT_EQ(parse(api("GET", fmt::format("/system/callbacks/{}", id)).body).find("inactiveFlag")->as_bool(), true);
    ASSERT_EQ(api("PATCH", fmt::format("/system/callbacks/{}", id),
                  R"([{"op":"replace","path":"inactiveFlag","value":false}])")
                  .status,
              200);
    rx.always(200);
    EXPECT_TRUE(em->trigger({"ticket", "updated", 1, {}, {}}).at(0).delivered);
}

TEST_F(Emulator, ControlEndpointsDriveARunningEmulator)
{
    start();
    receiver rx;
    em->add_callback(entry(rx.url()));
    auto t = raw("POST", "/_emulator/trigger", R"({"type":"ticket","action":"updated","id":"77"})");
    ASSERT_EQ(t.status, 200) << t.body;
    const auto answer = parse(t.body);
    const auto* d = answer.find("deliveries");
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(d->as_array()->size(), 1u);
    EXPECT_EQ(d->as_array()->at(0).find("delivered")->as_bool(), true);
    EXPECT_EQ(rx.hits().at(0).target, "/hook?recordId=77");

    EXPECT_EQ(raw("POST", "/_emulator/trigger", R"({"type":"nosuch","action":"updated","id":1})").status, 400);
    EXPECT_EQ(raw("POST", "/_emulator/trigger", "{").status, 400);

    const auto old_url = em->key_url();
    auto rot = raw("POST", "/_emulator/rotate-key");
    ASSERT_EQ(rot.status, 200);
    EXPECT_EQ(*parse(rot.body).find("key_url")->as_string(), em->key_url());
    EXPECT_NE(em->key_url(), old_url);

    ASSERT_EQ(raw("POST", "/_emulator/faults", R"({"status":503,"count":1})").status, 200);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 503);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);
    ASSERT_EQ(raw("POST", "/_emulator/faults", R"({"status":429,"count":0,"retry_after":1})").status, 200);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 429);
    EXPECT_EQ(raw("DELETE", "/_emulator/faults").status, 200);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);

    auto st = raw("GET", "/_emulator/state");
    ASSERT_EQ(st.status, 200);
    EXPECT_EQ(parse(st.body).find("callbacks")->as_int(), 1);
    // Control requests are not Manage traffic.
    EXPECT_EQ(em->requests(emu::route::callbacks_list), 4u);
}

TEST_F(Emulator, ControlEndpointsRefuseProxiedAndBrowserRequests)
{
    start();
    receiver rx;
    em->add_callback(entry(rx.url()));
    const auto old_url = em->key_url();
    const std::pair<std::string, std::string> headers[] = {
        {"X-Forwarded-For", "203.0.113.9"},
        {"Forwarded", "for=203.0.113.9"},
        {"Origin", "https://attacker.example"},
    };
    const std::pair<std::string, std::string> requests[] = {
        {"POST", "/_emulator/trigger"},
        {"POST", "/_emulator/rotate-key"},
        {"POST", "/_emulator/faults"},
        {"DELETE", "/_emulator/faults"},
    };
    for (const auto& [name, value] : headers) {
        for (const auto& [method, target] : requests) {
            SCOPED_TRACE(name + " " + method + " " + target);
            http_call c;
            c.method = method;
            c.target = target;
            c.headers.emplace_back(name, value);
            if (target == "/_emulator/trigger") {
                c.body = R"({"type":"ticket","action":"updated","id":77})";
            } else if (method == "POST" && target == "/_emulator/faults") {
                c.body = R"({"status":503,"count":1})";
            }
            const auto r = send(loopback(em->port()), c, em->ca_file());
            EXPECT_EQ(r.status, 403);
            EXPECT_NE(r.body.find("\"error\":\"forbidden\""), std::string::npos) << r.body;
            EXPECT_NE(r.body.find(name), std::string::npos) << r.body;
        }
    }
    // Nothing happened: no delivery, the same key, no fault.
    EXPECT_TRUE(rx.hits().empty());
    EXPECT_EQ(em->key_url(), old_url);
    EXPECT_EQ(api("GET", "/system/callbacks").status, 200);
    // The same requests without those headers still work.
    EXPECT_EQ(raw("POST", "/_emulator/rotate-key").status, 200);
}

// --- with the receiver ---------------------------------------------------------------------------

class EmulatorLoop : public Emulator {
protected:
    std::string db = dir.file("var/cwhook.db");

    app_options allowing(const std::vector<std::string>& hosts)
    {
        app_options o;
        o.db = db;
        o.allowed_key_hosts = hosts;
        o.companies = {em->config().company};
        o.ca_file = em->ca_file();
        return o;
    }

    static std::string callbacks_url(running_app& app)
    {
        return fmt::format("http://127.0.0.1:{}/callbacks?recordId=", app.http().port());
    }
};

TEST_F(EmulatorLoop, TriggerIsStoredVerifiedByCwhook)
{
    start();
    running_app app(allowing({em->site()}));
    const auto sub = em->add_callback(entry(callbacks_url(app)));

    auto r = em->trigger({"ticket", "updated", 5000, {}, {}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200u) << r[0].error;
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].entity_id, 5000);
    EXPECT_EQ(rows[0].type, "ticket");
    EXPECT_EQ(rows[0].action, "updated");
    EXPECT_EQ(rows[0].body, r[0].body);
    EXPECT_EQ(count_rows(db, "events", fmt::format("callback_id = {}", sub)), 1);
    EXPECT_EQ(em->requests(emu::route::callback_key), 1u);

    // After a rotation the next delivery names a new key_url, which cwhook fetches.
    em->rotate_key();
    auto again = em->trigger({"ticket", "updated", 5001, {}, {}});
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].status, 200u);
    EXPECT_EQ(count_rows(db, "events", "status = 'verified'"), 2);
    EXPECT_EQ(em->requests(emu::route::callback_key), 2u);
}

TEST_F(EmulatorLoop, ForgedDeliveryWithANonAllowlistedKeyUrlIsRefusedWithoutContactingIt)
{
    start();
    // A rogue "Manage" on another host name and port, with its own key server.
    auto rogue_settings = fast();
    rogue_settings.host_name = "localhost";
    rogue_settings.company = "Cobalt";
    emu::emulator rogue(rogue_settings);
    ASSERT_TRUE(rogue.start());
    ASSERT_NE(rogue.site(), em->site());

    running_app app(allowing({em->site()}));
    rogue.add_callback(entry(callbacks_url(app)));
    auto r = rogue.trigger({"ticket", "updated", 5000, {}, {}});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 403u);
    EXPECT_NE(rogue.key_url().find("https://localhost:"), std::string::npos);
    EXPECT_NE(std::string(r[0].body).find(rogue.key_url()), std::string::npos);
    EXPECT_EQ(rogue.requests(emu::route::callback_key), 0u);
    EXPECT_EQ(rogue.total_requests(), 0u);  // nothing at all reached the rogue host
    EXPECT_EQ(em->total_requests(), 0u);
    EXPECT_EQ(app.counter("cwhook_key_fetches_total"), 0u);
    EXPECT_EQ(app.counter("cwhook_rejections_total", "reason=\"key_url_not_allowed\""), 1u);
    app.stop();  // flushes the store: the rejection row is written after the answer
    EXPECT_EQ(count_rows(db, "events"), 0);
    EXPECT_EQ(count_rows(db, "rejections", "reason = 'key_url_not_allowed' AND http_status = 403"), 1);
}

TEST_F(EmulatorLoop, EmulateCommandAndTriggerCommand)
{
    const auto state = dir.file("emu");
    child_process emu_proc({"emulate", "--listen", "127.0.0.1:0", "--state-dir", state, "--retry-delays", "10ms,20ms"});
    ASSERT_FALSE(emu_proc.wait_for_line("emulator ready").empty()) << emu_proc.output();
    auto url = read_file(state + "/url");
    while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) {
        url.pop_back();
    }
    ASSERT_TRUE(url.starts_with("https://127.0.0.1:")) << url;
    const auto port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
    EXPECT_NE(emu_proc.output().find(fmt::format("allowed_key_hosts = [\"127.0.0.1:{}\"]", port)), std::string::npos)
        << emu_proc.output();
    EXPECT_NE(emu_proc.output().find("[verify]\ncompanies = [\"cwhook_emulator\"]"), std::string::npos)
        << emu_proc.output();

    app_options o;
    o.db = db;
    o.allowed_key_hosts = {fmt::format("127.0.0.1:{}", port)};
    o.companies = {emu::settings{}.company};
    o.ca_file = state + "/cert.pem";
    running_app app(o);

    // Register the receiver through the emulator's REST API, as `subscriptions sync` would.
    emu::settings defaults;
    http_call create;
    create.target = "/v2025_1/apis/3.0/system/callbacks";
    create.headers = {{"Authorization", basic(defaults.company + "+" + defaults.public_key, defaults.private_key)},
                      {"clientId", defaults.client_id},
                      {"Content-Type", "application/json"}};
    create.body = fmt::format(R"({{"url":"{}","type":"ticket","level":"owner","objectId":1}})", callbacks_url(app));
    auto created = send(loopback(port), create, state + "/cert.pem");
    ASSERT_EQ(created.status, 201) << created.body << created.error;

    child_process trig({"emulate", "trigger", "--state-dir", state, "--type", "ticket", "--action", "updated", "--id",
                        "5000"});
    EXPECT_EQ(trig.wait(), 0) << trig.output();
    EXPECT_NE(trig.output().find("delivered"), std::string::npos) << trig.output();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].entity_id, 5000);

    child_process none({"emulate", "trigger", "--state-dir", state, "--type", "contact", "--action", "added", "--id",
                        "1"});
    EXPECT_EQ(none.wait(), 1) << none.output();
    child_process bad({"emulate", "trigger", "--state-dir", state, "--type", "ticket", "--action", "exploded", "--id",
                       "1"});
    EXPECT_EQ(bad.wait(), 2) << bad.output();

    // --no-callback changes the record and delivers nothing: the REST collection shows it.
    child_process quiet({"emulate", "trigger", "--state-dir", state, "--type", "ticket", "--action", "updated", "--id",
                         "5000", "--entity", R"({"summary":"changed in an outage"})", "--no-callback"});
    EXPECT_EQ(quiet.wait(), 0) << quiet.output();
    EXPECT_EQ(query_events(db).size(), 1u);
    http_call get;
    get.method = "GET";
    get.target = "/v2025_1/apis/3.0/service/tickets/5000";
    get.headers = {{"Authorization", basic(defaults.company + "+" + defaults.public_key, defaults.private_key)},
                   {"clientId", defaults.client_id}};
    auto record = send(loopback(port), get, state + "/cert.pem");
    ASSERT_EQ(record.status, 200) << record.body << record.error;
    EXPECT_EQ(*parse(record.body).find("summary")->as_string(), "changed in an outage");

    emu_proc.signal(SIGTERM);
    EXPECT_EQ(emu_proc.wait(), 0) << emu_proc.output();
    // The subscription survives in the state directory.
    EXPECT_NE(read_file(state + "/callbacks.json").find(callbacks_url(app)), std::string::npos);
}

} // namespace
} // namespace cwhook::test
