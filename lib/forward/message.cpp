#include "forward/message.hpp"

#include "core/json_string.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "crypto/standard_webhooks.hpp"
#include "json/pretty.hpp"
#include "json/utf8.hpp"

#include <fmt/format.h>

#include <span>
#include <utility>

namespace cwhook::forward {

namespace {

// Header values carry payload text (Type, Action): a CR or LF decoded from a JSON escape would
// otherwise split the header, and non-ASCII has no agreed encoding in HTTP.
std::string header_text(std::string_view s)
{
    std::string out(s);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte > 0x7E) {
            c = '?';
        }
    }
    return out;
}

void member(std::string& out, std::string_view key)
{
    if (out.size() > 1) {
        out.push_back(',');
    }
    append_json_string(out, key);
    out.push_back(':');
}

void text_member(std::string& out, std::string_view key, std::string_view value)
{
    member(out, key);
    append_json_string(out, json::valid_utf8(value));
}

} // namespace

std::string stable_webhook_id(std::string_view dedupe_key)
{
    const auto digest = crypto::sha256(dedupe_key);
    return "msg_" + crypto::hex(std::span<const std::uint8_t>(digest).first(16));
}

outgoing make_outgoing(std::int64_t event_id, const store::event_record& r)
{
    outgoing o;
    o.event_id = event_id;
    o.webhook_id = stable_webhook_id(r.dedupe_key);
    o.type = r.type;
    o.action = r.action;
    o.entity_id = r.entity_id;
    o.company_id = r.company_id;
    o.status = r.status;
    o.received_at_us = r.received_at_us;
    o.content_type = r.content_type;
    o.body = r.body;
    o.source = std::string(store::to_string(r.source));
    return o;
}

std::string event_document(const outgoing& o)
{
    // Built by hand around the payload because the payload is copied token by token
    // (json::reformat_payload): parsing it into a tree and serialising it back would rewrite
    // numbers.
    auto payload = json::reformat_payload(o.body, 0);
    std::string out;
    out.reserve(o.body.size() + o.body.size() / 4 + 512);
    out.push_back('{');
    text_member(out, "id", o.webhook_id);
    member(out, "event_id");
    out += fmt::format("{}", o.event_id);
    text_member(out, "type", o.type);
    text_member(out, "action", o.action);
    member(out, "entity_id");
    out += o.entity_id ? fmt::format("{}", *o.entity_id) : "null";
    if (o.company_id) {
        text_member(out, "company_id", *o.company_id);
    } else {
        member(out, "company_id");
        out += "null";
    }
    text_member(out, "status", store::to_string(o.status));
    text_member(out, "source", o.source);
    text_member(out, "received_at", format_time(o.received_at_us, time_precision::micros));
    member(out, "payload");
    if (payload) {
        out += *payload;
    } else {
        out += "null";
        text_member(out, "body", o.body);
    }
    out.push_back('}');
    return out;
}

client::request signed_request(const client::request& base, const destination& d, std::string_view key,
                               const outgoing& o, std::size_t attempt, std::int64_t timestamp_s)
{
    client::request r = base;
    r.method = "POST";
    std::string content_type;
    if (d.body == body_format::event) {
        r.body = event_document(o);
        content_type = "application/json";
    } else {
        r.body = o.body;
        content_type = o.content_type.empty() ? "application/json" : header_text(o.content_type);
    }
    // The signature covers exactly the id and bytes that go out: computed after both are final.
    auto id = header_text(o.webhook_id);
    auto signature = crypto::webhook_signature(key, id, timestamp_s, r.body);
    auto& h = r.headers;
    h.emplace_back("Content-Type", std::move(content_type));
    h.emplace_back("webhook-id", std::move(id));
    h.emplace_back("webhook-timestamp", fmt::format("{}", timestamp_s));
    h.emplace_back("webhook-signature", std::move(signature));
    h.emplace_back("X-Cwhook-Event-Id", fmt::format("{}", o.event_id));
    h.emplace_back("X-Cwhook-Type", header_text(o.type));
    h.emplace_back("X-Cwhook-Action", header_text(o.action));
    h.emplace_back("X-Cwhook-Attempt", fmt::format("{}", attempt));
    h.emplace_back("X-Cwhook-Source", header_text(o.source));
    h.emplace_back("User-Agent", "cwhook/" CWHOOK_VERSION);
    return r;
}

} // namespace cwhook::forward
