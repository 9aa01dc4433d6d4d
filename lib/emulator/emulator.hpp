// A local ConnectWise Manage stand-in (docs/PROTOCOL.md sections 1-6): companyinfo, the
// system/callbacks REST API (CRUD, count, navigable and forward-only paging, conditions,
// Manage error bodies, Basic auth and clientId checks), the records of every callback type as
// read-only REST collections (service/tickets, company/contacts, ...: list, count, get by id,
// with the same paging, conditions, orderBy and fields), the callback signing-key endpoint with
// rotating keys, and deliveries fired like Manage's (signed compact payload, retry only on
// 404/409/419/429, subscriptions disabled after repeated failures). Fault knobs make it
// answer 429/5xx or slowly. Used by the integration tests and by `cwhook emulate`.
// Thread-safe: every public member may be called from any thread except the emulator's own
// io thread (the blocking calls - start, stop, trigger - would deadlock there). The emulator
// serves and delivers on one thread of its own.
#pragma once

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cwhook::emulator {

struct settings {
    // "host:port" to bind; port 0 picks a free one. Loopback unless you mean it.
    std::string listen = "127.0.0.1:0";
    bool tls = true;  // HTTPS with a self-signed certificate written at start; false: plain HTTP
    // Host name used in the base URL, key_url and FromUrl (the certificate names it too).
    // Empty: the listen address. A name like "localhost" lets tests tell two hosts apart.
    std::string host_name;
    // Where cert.pem/key.pem (and callbacks.json) live. Empty: a fresh temp dir, removed by
    // stop(). An existing certificate there is reused, so a restarted emulator keeps its CA.
    std::string state_dir;
    bool persist = false;  // keep the callback table in <state_dir>/callbacks.json across restarts

    std::string company = "cwhook_emulator";
    std::string public_key = "emulatorpublic";
    std::string private_key = "emulatorprivate";
    std::string client_id = "9b0e8d9e-7b0a-4f5e-9a63-3d1c7f7c2a11";
    std::string codebase = "v2025_1/";  // with its trailing slash, as companyinfo answers it
    std::string member_id = "emulator";  // MemberId of deliveries and updatedBy of their entities

    std::size_t default_page_size = 25;
    std::size_t max_page_size = 1000;

    // Deliveries: the receiver has `delivery_timeout` per attempt (Manage: 5 s); an answer of
    // 404/409/419/429 is retried after each of `retry_delays` in turn (Manage: 2 s, 4 s).
    std::chrono::milliseconds delivery_timeout{5000};
    std::vector<std::chrono::milliseconds> retry_delays{std::chrono::milliseconds{2000},
                                                        std::chrono::milliseconds{4000}};
    // A subscription whose deliveries failed (after retries) this many times in a row is
    // disabled (inactiveFlag = true), as Manage does after days of failures. 0 = never.
    unsigned disable_after_failures = 3;
    std::string delivery_ca_file;  // extra CA bundle for https subscription URLs (a test receiver)

    // "Now" for records' dateEntered and _info.lastUpdated (whole seconds, like Manage's).
    // Empty: the system clock. Tests set one to step time without sleeping.
    std::function<std::chrono::system_clock::time_point()> clock;
};

// One system/callbacks registration (docs/PROTOCOL.md section 5).
struct callback_entry {
    std::int64_t id = 0;
    std::string description;
    std::string url;
    std::int64_t object_id = 0;
    std::string type;
    std::string level;
    std::int64_t member_id = 243;
    std::string payload_version = "3.0.0";
    bool inactive = false;
    bool is_soap_callback = false;
    bool is_self_suppressed = false;
    std::string connectwise_id;   // GUID; assigned when empty
    std::string last_updated;     // "2026-06-04T17:14:20Z"; set on every change
    std::string updated_by;
    // Delivery bookkeeping (not part of the API model).
    unsigned consecutive_failures = 0;
    std::uint64_t deliveries = 0;  // attempts made to this URL
};

// The emulator answers the next `count` matching requests with `status` (0 = normal answer),
// after waiting `delay`. Control endpoints (/_emulator/...) are never faulted.
struct fault {
    std::string path_prefix;  // "" = every path; else e.g. "/v2025_1/apis/3.0/system/callbacks"
    unsigned status = 429;    // 429, 500, 503, 401, ...; 0 = delay only
    unsigned count = 1;       // 0 = until clear_faults()
    std::chrono::seconds retry_after{0};  // Retry-After header when > 0
    std::chrono::milliseconds delay{0};
};

// Request counters, per route (every request, faulted or not, authorised or not).
enum class route {
    companyinfo,
    callbacks_list,   // GET  .../system/callbacks
    callbacks_count,  // GET  .../system/callbacks/count
    callbacks_create, // POST .../system/callbacks
    callback_get,     // GET  .../system/callbacks/{id}
    callback_update,  // PUT/PATCH .../system/callbacks/{id}
    callback_delete,  // DELETE .../system/callbacks/{id}
    callback_key,     // GET  /<codebase>//system/callbackkey/index.rails
    records_list,     // GET  .../<collection> (service/tickets, company/contacts, ...)
    records_count,    // GET  .../<collection>/count
    record_get,       // GET  .../<collection>/{id}
    control,          // /_emulator/...
    other,            // anything else (answered 404)
};

// A request as the emulator received it (for assertions on headers the client sent).
struct seen_request {
    route kind = route::other;
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;  // as received
    std::string body;
    unsigned status = 0;  // what the emulator answered
    std::string header(std::string_view name) const;  // case-insensitive, "" when absent
};

struct trigger_request {
    std::string type;              // "ticket"
    std::string action;            // "added" | "updated" | "deleted"
    std::int64_t id = 0;           // record id, appended to each subscription URL
    // Level values of the record, e.g. {{"board", 1}, {"status", 7}}: a subscription of level L
    // with objectId N matches when the record has L = N. Level "owner" matches every record of
    // the type; the type's own level (ticket/ticket) matches objectId == id.
    std::vector<std::pair<std::string, std::int64_t>> levels;
    // Fields merged into the record (a JSON object). The record then goes out as the Entity
    // (JSON-encoded); "deleted" always sends null. Text that is no JSON object is sent as given.
    std::string entity;
    // false: change the record only, as an outage would (nothing is delivered).
    bool callback = true;
};

// One record of a REST collection, as the emulator keeps it.
struct record {
    std::int64_t id = 0;
    std::string date_entered; // "2026-12-03T10:00:00Z"
    std::string last_updated; // _info.lastUpdated
    std::string json;         // the record as GET <collection>/{id} answers it
};

struct delivery_result {
    std::int64_t callback_id = 0;
    std::string url;        // as POSTed (subscription URL + record id)
    unsigned attempts = 0;
    unsigned status = 0;    // of the last attempt; 0 = no HTTP answer (connect/TLS/timeout)
    bool delivered = false; // a 2xx
    bool disabled = false;  // this failure disabled the subscription
    std::string error;      // transport error of the last attempt, if any
    std::string body;       // the payload sent (identical on every attempt)
    std::string signature;  // its x-content-signature
};

class emulator {
public:
    explicit emulator(settings s);
    ~emulator();  // stop()s
    emulator(const emulator&) = delete;
    emulator& operator=(const emulator&) = delete;

    // Writes (or reuses) the certificate, binds, starts the io threads. Returns the bound port
    // on 127.0.0.1 (or the listen address). Errors are one clear line.
    boost::system::result<std::uint16_t, std::string> start();
    void stop();  // idempotent; waits for in-flight deliveries to be abandoned

    std::uint16_t port() const;
    std::string host() const;       // host name used in URLs ("127.0.0.1" by default)
    std::string site() const;       // "host:port": the `manage.site` to configure
    std::string base_url() const;   // "https://127.0.0.1:PORT"
    std::string api_url() const;    // base_url() + "/v2025_1/apis/3.0"
    std::string ca_file() const;    // the self-signed certificate (its own CA); "" with plain HTTP
    const settings& config() const;
    // Moves the API to another codebase (a cloud upgrade): companyinfo answers the new one and
    // the old paths answer 404 {"code":"ConnectWiseApi","message":"The endpoint does not exist."}.
    void set_codebase(std::string codebase);

    // Signing keys. rotate_key() makes a new key id and key; the old key_url then answers 404.
    std::string key_url() const;
    std::string signing_key() const;
    std::string rotate_key();  // returns the new key_url

    // Faults.
    void add_fault(fault f);
    void clear_faults();

    // Counters.
    std::uint64_t requests(route r) const;
    std::uint64_t total_requests() const;  // control endpoints excluded
    void reset_counters();
    // The last 256 requests (control endpoints excluded), oldest first.
    std::vector<seen_request> recent_requests() const;

    // Changes the record (added: created with dateEntered = lastUpdated = now; updated:
    // lastUpdated = now, created with dateEntered a day back when missing; deleted: removed;
    // t.entity merged in), then delivers it to every matching active subscription unless
    // t.callback is false. Blocking (from any thread but the emulator's own); without
    // deliveries it also works on a stopped emulator.
    std::vector<delivery_result> trigger(const trigger_request& t);

    // Records, per callback type ("ticket"; case-insensitive). touch_records applies `action`
    // to the ids first_id .. first_id + count - 1 as trigger() does, in one step when callback
    // is false (2,500 records take milliseconds); with callback, one trigger() each. Returns
    // the deliveries made.
    std::vector<delivery_result> touch_records(std::string_view type, std::int64_t first_id, std::size_t count,
                                               std::string_view action, bool callback = false);
    // Stores `json` (an object with a positive integer id) as the record, as given: no
    // timestamps are set, nothing is delivered. False when it is no such object or the type is
    // unknown.
    bool set_record(std::string_view type, std::string_view json);
    std::vector<record> records(std::string_view type) const; // by id
    std::optional<record> find_record(std::string_view type, std::int64_t id) const;
    void clear_records();

    // Direct access to the callback table (no auth, no duplicate check).
    std::int64_t add_callback(callback_entry e);  // returns the id assigned
    // n entries like `tmpl` with ids assigned in order, description "seed <i>", objectId
    // tmpl.object_id + i (so no two are duplicates). Returns the ids.
    std::vector<std::int64_t> seed_callbacks(std::size_t n, const callback_entry& tmpl);
    std::vector<callback_entry> callbacks() const;  // by id
    std::optional<callback_entry> find_callback(std::int64_t id) const;
    bool set_inactive(std::int64_t id, bool inactive);
    bool remove_callback(std::int64_t id);
    void clear_callbacks();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

// Answers, as Manage's (bodies {"code":..,"message":..[,"errors":[...]]}):
//   no/wrong Basic credentials  401 {"code":"Unauthorized","message":"Authentication failed."}
//   no clientId header          400 {"code":"InvalidClientId",...}
//   bad JSON / invalid fields   400 {"code":"InvalidObject","message":"callbackEntry object is invalid",
//                                    "errors":[{"code":"InvalidField",...,"field":"url"}]}
//   duplicate (type, level, objectId, url)
//                               400 InvalidObject with errors[0].code "ObjectExists" (the fixture)
//   bad conditions / paging     400 {"code":"InvalidObject",...}
//   unknown id                  404 {"code":"NotFound",...};  unknown path 404 "ConnectWiseApi"
//   a collection but not GET    405 {"code":"ConnectWiseApi",...} (the collections are read-only)
//   injected faults             status as set, {"code":"TooManyRequests"|"ServerError",...},
//                               Retry-After when set
// Paging: navigable `page`/`pageSize` (default 25, at most 1000) with RFC 5988 Link
// first/prev/next/last (first/prev omitted on page 1, next/last on the last page, no Link
// when everything fits one page); forward-only (`pagination-type: forward-only`, `pageId`)
// sorts by id, treats pageId as `id > pageId`, and ALWAYS sends a rel="next" Link (pageId =
// last id returned, or the same pageId on an empty page): stop on an empty or short page.
// `orderBy` takes a comma list of "field [asc|desc]" (default: id asc); `fields` a comma list
// of top-level member names (unknown ones ignored). On the collections, conditions and orderBy
// may name any member path (`company/id`); `lastUpdated` is `_info/lastUpdated`; a record
// without the field does not match. Dates compare as points in time.
//
// The control endpoints of a running emulator (loopback peers only, no Manage auth):
//   POST   /_emulator/trigger     {"type":"ticket","action":"updated","id":5000,
//                                  "levels":{"board":1},"entity":{...},"callback":true}
//                                  -> {"deliveries":[...],"record":{...}|null}
//   POST   /_emulator/faults      {"path_prefix":"...","status":429,"count":2,
//                                  "retry_after":1,"delay_ms":0}
//   DELETE /_emulator/faults
//   POST   /_emulator/rotate-key  -> {"key_url":"..."}
//   GET    /_emulator/state       -> {"base_url":..,"key_url":..,"callbacks":N,"records":{"ticket":N},
//                                     "requests":{...}}
inline constexpr std::string_view control_prefix = "/_emulator";

std::string_view to_string(route r);

} // namespace cwhook::emulator
