// What a destination receives for one event: the body (Manage's exact bytes, or cwhook's
// normalised "event" document) and the Standard Webhooks signed request around it. The
// webhook-id is the consumer's dedupe key, so it is derived from the event's dedupe key
// (stable across retries, restarts, instances and an export/import into another database)
// rather than from the row id. Pure functions, thread-safe.
#pragma once

#include "client/https_client.hpp"
#include "forward/settings.hpp"
#include "store/event_store.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::forward {

// One event as it is forwarded.
struct outgoing {
    std::int64_t event_id = 0; // the row id in this database (X-Cwhook-Event-Id, "event_id")
    std::string webhook_id;    // stable_webhook_id(dedupe key)
    std::string type;
    std::string action;
    std::optional<std::int64_t> entity_id;
    std::optional<std::string> company_id;
    store::event_status status = store::event_status::verified;
    std::int64_t received_at_us = 0;
    std::string content_type; // as received ("" when there was none)
    std::string body;         // Manage's exact bytes
    std::string source = "callback"; // store::to_string(event_source)
};

// "msg_" + the first 32 hex digits (128 bits) of SHA-256(dedupe_key). The same event keeps
// its id on every attempt and after an import; a delivery Manage repeated has the same dedupe
// key, and so the same id. (A row id would be renumbered by an import.)
std::string stable_webhook_id(std::string_view dedupe_key);

// The outgoing form of a stored event.
outgoing make_outgoing(std::int64_t event_id, const store::event_record& r);

// The body of body = "event": one compact JSON object
//   {"id":"<webhook id>","event_id":N,"type":"..","action":"..","entity_id":N|null,
//    "company_id":".."|null,"status":"verified","source":"callback",
//    "received_at":"2026-11-28T04:05:06.123456Z","payload":{...}}
// where payload is the body as sent with its top-level Entity string replaced by the JSON it
// holds; every number keeps Manage's text (1.10 stays 1.10). A body that is not JSON gives
// "payload":null followed by "body":"<the text>" (bytes of invalid UTF-8 as '?'); "body" is
// absent otherwise.
std::string event_document(const outgoing& o);

// The request of one attempt: base (request_for_url(d.url): scheme, host, port, target) as a
// POST of the body d.body asks for, with
//   Content-Type       raw: the stored one (application/json when none); event: application/json
//   webhook-id         o.webhook_id
//   webhook-timestamp  timestamp_s (Unix seconds of this attempt)
//   webhook-signature  crypto::webhook_signature(key, id, timestamp, the exact body sent)
//   X-Cwhook-Event-Id, X-Cwhook-Type, X-Cwhook-Action, X-Cwhook-Attempt (1-based),
//   X-Cwhook-Source, User-Agent: cwhook/<version>
// key: the key bytes of d.secret (crypto::webhook_key). Header values taken from the payload
// are made printable ASCII (other bytes as '?'), so no payload can add a header.
client::request signed_request(const client::request& base, const destination& d, std::string_view key,
                               const outgoing& o, std::size_t attempt, std::int64_t timestamp_s);

} // namespace cwhook::forward
