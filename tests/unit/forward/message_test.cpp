#include "forward/message.hpp"

#include "crypto/standard_webhooks.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>

namespace cwhook::forward {
namespace {

constexpr std::string_view secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// A Manage callback body: Entity is the entity as a JSON-encoded string.
constexpr std::string_view manage_body =
    R"({"MessageId":"4f2a9c","Action":"updated","Type":"ticket","ID":42,"CompanyId":"acme",)"
    R"("Metadata":{"key_url":"https://na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackentry/key?id=7"},)"
    R"("Entity":"{\"id\":42,\"budgetHours\":1.10,\"summary\":\"Printer \\\"B\\\" down\"}"})";

std::string key()
{
    auto k = crypto::webhook_key(secret);
    EXPECT_TRUE(k);
    return k ? *k : std::string();
}

client::request base()
{
    auto r = client::request_for_url("https://hooks.example.com/in?x=1");
    EXPECT_TRUE(r);
    return r ? *r : client::request{};
}

outgoing ticket_event()
{
    store::event_record r;
    r.received_at_us = 1'764'302'706'123'456;
    r.status = store::event_status::verified;
    r.dedupe_key = "m:4f2a9c";
    r.body = std::string(manage_body);
    r.content_type = "application/json; charset=utf-8";
    r.type = "ticket";
    r.action = "updated";
    r.entity_id = 42;
    r.company_id = "acme";
    return make_outgoing(17, r);
}

destination with_body(body_format f)
{
    destination d;
    d.name = "crm";
    d.url = "https://hooks.example.com/in?x=1";
    d.secret = std::string(secret);
    d.body = f;
    return d;
}

std::string header(const client::request& r, std::string_view name)
{
    const auto found =
        std::find_if(r.headers.begin(), r.headers.end(), [name](const auto& h) { return h.first == name; });
    return found == r.headers.end() ? std::string("<absent>") : found->second;
}

// The Standard Webhooks check a consumer makes, done with OpenSSL alone: base64-decode the
// secret after "whsec_", HMAC-SHA256 over "id.timestamp.body", base64 the MAC.
std::string openssl_signature(std::string_view id, std::string_view timestamp, std::string_view body)
{
    const std::string_view b64 = secret.substr(6);
    std::array<unsigned char, 64> raw_key{};
    const int decoded = EVP_DecodeBlock(raw_key.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                        static_cast<int>(b64.size()));
    EXPECT_EQ(decoded, 24); // 32 characters without padding
    std::string content = std::string(id) + "." + std::string(timestamp) + "." + std::string(body);
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), raw_key.data(), decoded, reinterpret_cast<const unsigned char*>(content.data()), content.size(),
         mac.data(), &mac_len);
    std::array<unsigned char, 4 * EVP_MAX_MD_SIZE> text{};
    const int n = EVP_EncodeBlock(text.data(), mac.data(), static_cast<int>(mac_len));
    return "v1," + std::string(reinterpret_cast<const char*>(text.data()), static_cast<std::size_t>(n));
}

TEST(SignedRequest, ReproducesThePublishedStandardWebhooksExample)
{
    outgoing o;
    o.webhook_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    o.body = R"({"test": 2432232314})";
    const auto r = signed_request(base(), with_body(body_format::raw), key(), o, 1, 1614265330);
    EXPECT_EQ(r.body, o.body);
    EXPECT_EQ(header(r, "webhook-id"), "msg_p5jXN8AQM9LWM0D4loKWxJek");
    EXPECT_EQ(header(r, "webhook-timestamp"), "1614265330");
    EXPECT_EQ(header(r, "webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(SignedRequest, SignatureVerifiesIndependently)
{
    for (const auto f : {body_format::raw, body_format::event}) {
        const auto r = signed_request(base(), with_body(f), key(), ticket_event(), 3, 1'764'302'710);
        EXPECT_EQ(header(r, "webhook-signature"),
                  openssl_signature(header(r, "webhook-id"), header(r, "webhook-timestamp"), r.body));
    }
}

TEST(SignedRequest, PostToTheDestinationWithEveryHeader)
{
    const auto r = signed_request(base(), with_body(body_format::raw), key(), ticket_event(), 3, 1'764'302'710);
    EXPECT_EQ(r.method, "POST");
    EXPECT_TRUE(r.tls);
    EXPECT_EQ(r.host, "hooks.example.com");
    EXPECT_EQ(r.port, 443);
    EXPECT_EQ(r.target, "/in?x=1");
    EXPECT_EQ(r.body, manage_body);
    EXPECT_EQ(header(r, "Content-Type"), "application/json; charset=utf-8");
    EXPECT_EQ(header(r, "webhook-id"), "msg_3fe4dc5ae4ef25568a13afc634098cb5");
    EXPECT_EQ(header(r, "webhook-timestamp"), "1764302710");
    EXPECT_TRUE(header(r, "webhook-signature").starts_with("v1,"));
    EXPECT_EQ(header(r, "X-Cwhook-Event-Id"), "17");
    EXPECT_EQ(header(r, "X-Cwhook-Type"), "ticket");
    EXPECT_EQ(header(r, "X-Cwhook-Action"), "updated");
    EXPECT_EQ(header(r, "X-Cwhook-Attempt"), "3");
    EXPECT_EQ(header(r, "X-Cwhook-Source"), "callback");
    EXPECT_EQ(header(r, "User-Agent"), "cwhook/" CWHOOK_VERSION);
}

TEST(SignedRequest, ASynthesizedEventSaysItCameFromCatchUp)
{
    store::event_record r;
    r.status = store::event_status::synthesized;
    r.source = store::event_source::catch_up;
    r.dedupe_key = "s:acme:ticket:42:1764302706000000";
    r.body = std::string(manage_body);
    r.type = "ticket";
    r.action = "updated";
    const auto o = make_outgoing(18, r);
    EXPECT_EQ(o.source, "catch_up");
    const auto req = signed_request(base(), with_body(body_format::event), key(), o, 1, 1'764'302'710);
    EXPECT_EQ(header(req, "X-Cwhook-Source"), "catch_up");
    EXPECT_NE(req.body.find(R"("status":"synthesized","source":"catch_up")"), std::string::npos) << req.body;
}

TEST(SignedRequest, RawBodyWithoutContentTypeIsSentAsJson)
{
    auto o = ticket_event();
    o.content_type.clear();
    const auto r = signed_request(base(), with_body(body_format::raw), key(), o, 1, 1'764'302'710);
    EXPECT_EQ(header(r, "Content-Type"), "application/json");
}

TEST(SignedRequest, EventBodyIsTheEventDocument)
{
    auto o = ticket_event();
    o.content_type = "text/plain";
    const auto r = signed_request(base(), with_body(body_format::event), key(), o, 1, 1'764'302'710);
    EXPECT_EQ(r.body, event_document(o));
    EXPECT_EQ(header(r, "Content-Type"), "application/json");
}

TEST(SignedRequest, PayloadTextCannotAddHeaders)
{
    auto o = ticket_event();
    o.type = "ticket\r\nX-Evil: 1";
    o.action = "upd\xc3\xa4ted";
    const auto r = signed_request(base(), with_body(body_format::raw), key(), o, 1, 1'764'302'710);
    EXPECT_EQ(header(r, "X-Cwhook-Type"), "ticket??X-Evil: 1");
    EXPECT_EQ(header(r, "X-Cwhook-Action"), "upd??ted");
    EXPECT_EQ(header(r, "X-Evil"), "<absent>");
}

TEST(WebhookId, StableDigestOfTheDedupeKey)
{
    EXPECT_EQ(stable_webhook_id("m:4f2a9c"), "msg_3fe4dc5ae4ef25568a13afc634098cb5");
    EXPECT_NE(stable_webhook_id("m:4f2a9d"), stable_webhook_id("m:4f2a9c"));
    EXPECT_EQ(ticket_event().webhook_id, stable_webhook_id("m:4f2a9c"));
}

TEST(EventDocument, FactsThenPayloadWithEntityDecoded)
{
    EXPECT_EQ(
        event_document(ticket_event()),
        R"({"id":"msg_3fe4dc5ae4ef25568a13afc634098cb5","event_id":17,"type":"ticket","action":"updated",)"
        R"("entity_id":42,"company_id":"acme","status":"verified","source":"callback",)"
        R"("received_at":"2025-11-28T04:05:06.123456Z","payload":)"
        R"({"MessageId":"4f2a9c","Action":"updated","Type":"ticket","ID":42,"CompanyId":"acme",)"
        R"("Metadata":{"key_url":"https://na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackentry/key?id=7"},)"
        R"("Entity":{"id":42,"budgetHours":1.10,"summary":"Printer \"B\" down"}}})");
}

TEST(EventDocument, AbsentFieldsAreNull)
{
    auto o = ticket_event();
    o.entity_id.reset();
    o.company_id.reset();
    const auto doc = event_document(o);
    EXPECT_NE(doc.find(R"("entity_id":null,"company_id":null,)"), std::string::npos) << doc;
}

TEST(EventDocument, NumbersKeepTheirTextOutsideEntityToo)
{
    auto o = ticket_event();
    o.body = R"({ "Type": "ticket", "ID": 42, "Rate": 2.50, "Big": 1e2, "Entity": null })";
    const auto doc = event_document(o);
    EXPECT_NE(doc.find(R"("payload":{"Type":"ticket","ID":42,"Rate":2.50,"Big":1e2,"Entity":null}})"),
              std::string::npos)
        << doc;
}

TEST(EventDocument, EntityThatIsNotJsonStaysAString)
{
    auto o = ticket_event();
    o.body = R"({"Type":"ticket","Entity":"not {json"})";
    const auto doc = event_document(o);
    EXPECT_NE(doc.find(R"("payload":{"Type":"ticket","Entity":"not {json"}})"), std::string::npos) << doc;
}

TEST(EventDocument, BodyThatIsNotJsonIsCarriedAsText)
{
    auto o = ticket_event();
    o.body = "ID=42&Type=\"ticket\"\n\xff";
    const auto doc = event_document(o);
    EXPECT_TRUE(doc.ends_with(R"("payload":null,"body":"ID=42&Type=\"ticket\"\n?"})")) << doc;
}

} // namespace
} // namespace cwhook::forward
