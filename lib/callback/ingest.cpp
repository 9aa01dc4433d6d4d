// Design: the handler never throws for anything a client sends. Each outcome maps to one
// status, one reason code and one counter (refusal.hpp). Everything that needs no key (the
// key_url's host, path, query and company, the payload's company, the signature's shape) is
// checked before anything is fetched, so a forgery costs no request to ConnectWise.
// Verification happens before persistence so a forgery never reaches the events table as
// verified; what is stored unverified is pending (key server unreachable) or failed
// (quarantined: the key server answered without a usable key), each bounded by its own limit.
// The answer is written only after the writer thread has committed the row.
#include "callback/ingest.hpp"

#include "core/await.hpp"
#include "callback/verifier.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "crypto/signature.hpp"
#include "json/payload.hpp"

#include <boost/beast/http/field.hpp>

#include <fmt/format.h>

#include <chrono>

namespace cwhook::callback {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using store::event_status;

namespace {

bool is_redacted(std::string_view name)
{
    return boost::beast::iequals(name, "authorization") || boost::beast::iequals(name, "cookie") ||
           boost::beast::iequals(name, "proxy-authorization");
}

std::string header_lines(const http::request& req)
{
    std::string out;
    for (const auto& f : req.msg) {
        const std::string_view name = f.name_string();
        out += name;
        out += ": ";
        if (is_redacted(name)) {
            out += "<redacted>";
        } else {
            out += std::string_view(f.value());
        }
        out += '\n';
    }
    return out;
}

http::response stored_response(unsigned status, std::string_view what, std::int64_t id)
{
    return http::json_response(status, fmt::format("{{\"status\":\"{}\",\"id\":{}}}", what, id));
}

} // namespace

struct ingest::verdict {
    enum class fate { store, refuse, defer };
    fate what = fate::store;
    event_status status = event_status::failed;  // fate::store
    std::string_view reason;                     // stored verify_reason ("" when verified)
    refusal why = refusal::bad_signature;        // fate::refuse / fate::defer
    std::string detail;                          // safe text for the client
};

ingest::ingest(const live_value<verify_settings>& cfg, const key_url_policy& policy, key_cache& keys, store::event_store& store,
               status_counts& counts, metrics::registry& metrics)
    : cfg_(cfg), policy_(policy), keys_(keys), store_(store), counts_(counts), metrics_(metrics),
      stored_(metrics.get_counter("cwhook_events_stored_total")),
      duplicates_(metrics.get_counter("cwhook_duplicates_total")),
      upgraded_(metrics.get_counter("cwhook_events_upgraded_total")),
      busy_(metrics.get_counter("cwhook_storage_unavailable_total"))
{
    for (auto st : {event_status::verified, event_status::pending, event_status::failed, event_status::unverified}) {
        by_status_[static_cast<int>(st)] =
            &metrics.get_counter("cwhook_events_total", fmt::format("status=\"{}\"", store::to_string(st)));
    }
}

void ingest::count_by_type(std::string_view type, std::string_view action, event_status status)
{
    // Type and action come from the body (pending events are stored before they are verified):
    // only well-formed values become label values, and at most 64 distinct types, so a flood
    // of invented types cannot grow the metrics without bound.
    constexpr std::size_t max_types = 64;
    const bool well_formed = !type.empty() && type.size() <= 32 &&
                             std::all_of(type.begin(), type.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    std::string_view t = "other";
    if (well_formed) {
        std::lock_guard lock(label_mutex_);
        if (label_types_.contains(type) || label_types_.size() < max_types) {
            t = *label_types_.emplace(type).first;
        }
    }
    const std::string_view a = action == "added" || action == "updated" || action == "deleted" ? action : "other";
    metrics_
        .get_counter("cwhook_events_by_type_total",
                     fmt::format("type=\"{}\",action=\"{}\",status=\"{}\"", t, a, store::to_string(status)))
        .inc();
}

net::awaitable<ingest::verdict> ingest::verify(const verify_settings& cfg, const std::string& body,
                                               std::string_view signature_header, const std::string& key_url,
                                               const std::optional<std::string>& company_id)
{
    verdict v;
    const auto refuse = [&v](refusal why, std::string detail) {
        v.what = verdict::fate::refuse;
        v.why = why;
        v.detail = std::move(detail);
    };
    if (cfg.mode == verify_mode::off) {
        v.status = event_status::unverified;
        v.reason = "verification_off";
        co_return v;
    }
    // Everything that needs no key comes first: a forgery is refused before anything is fetched.
    auto target = policy_.check(key_url);
    if (!target) {
        refuse(target.error().reason, std::move(target.error().detail));
        co_return v;
    }
    if (company_id && lower_ascii(*company_id) != lower_ascii(target->company)) {
        refuse(refusal::company_mismatch, "CompanyId differs from the companyName of key_url");
        co_return v;
    }
    if (signature_header.empty()) {
        refuse(refusal::bad_signature, "missing x-content-signature");
        co_return v;
    }
    const auto sig = crypto::decode_signature_header(signature_header);
    if (!sig) {
        refuse(refusal::bad_signature, "x-content-signature is not a base64 SHA-256 HMAC");
        co_return v;
    }
    const auto arrived = keys_.now();
    const auto deadline = arrived + cfg.answer_deadline;
    const auto k = co_await check_signature(keys_, *target, body, *sig, arrived, deadline);
    switch (k.what) {
    case key_verdict::kind::verified: v.status = event_status::verified; break;
    case key_verdict::kind::bad_signature: refuse(refusal::bad_signature, "signature does not match the body"); break;
    case key_verdict::kind::refused:
        // check_signature decides on the key alone; a refusal before any fetch happened above.
        refuse(k.why.value_or(refusal::bad_signature), "refused before the key was fetched");
        break;
    case key_verdict::kind::transient:
        v.status = event_status::pending;
        v.reason = k.reason();
        break;
    case key_verdict::kind::busy:
        v.what = verdict::fate::defer;
        v.why = refusal::key_fetch_busy;
        v.detail = "the signing key cannot be fetched now; retry later";
        break;
    case key_verdict::kind::no_key:
        // Quarantine: kept whole, never verified, bounded so forgeries cannot fill the table.
        if (counts_.failed.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(cfg.max_failed)) {
            refuse(k.why.value_or(refusal::key_unavailable),
                   "the key server gave no usable key for key_url, and verify.max_failed events are quarantined");
        } else {
            v.status = event_status::failed;
            v.reason = k.reason();
        }
        break;
    }
    co_return v;
}

http::response ingest::reject(http::request& req, refusal why, std::string_view detail, std::string_view key_url)
{
    const auto info = describe(why);
    metrics_.get_counter("cwhook_rejections_total", fmt::format("reason=\"{}\"", info.code)).inc();
    req.log_fields.emplace_back("reason", info.code);
    store::rejection_record r;
    r.received_at_us = now_us();
    r.http_status = static_cast<int>(info.status);
    r.reason = std::string(info.code);
    r.detail = std::string(detail);
    r.client_addr = req.client_addr;
    r.path = std::string(req.msg.target());
    r.key_url = std::string(key_url);
    const auto& body = req.msg.body();
    r.body_size = static_cast<std::int64_t>(body.size());
    if (why == refusal::body_too_large) {
        if (const auto len = req.msg[bhttp::field::content_length]; !len.empty()) {
            r.body_size = std::strtoll(std::string(len).c_str(), nullptr, 10);
        }
    }
    r.body_sha256 = crypto::hex(crypto::sha256(body));
    r.body_head = body.substr(0, 256);
    if (!store_.submit_rejection(std::move(r))) {
        metrics_.get_counter("cwhook_rejections_dropped_total").inc();
    }
    return http::error_response(info.status, info.code, detail);
}

http::response ingest::defer(http::request& req, refusal why, std::string_view detail)
{
    const auto info = describe(why);
    metrics_.get_counter("cwhook_deferrals_total", fmt::format("reason=\"{}\"", info.code)).inc();
    req.log_fields.emplace_back("reason", info.code);
    auto res = http::error_response(info.status, info.code, detail);
    res.set(bhttp::field::retry_after, "2");
    return res;
}

void ingest::warn_busy(std::string_view why)
{
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
    auto last = last_busy_warning_ms_.load(std::memory_order_relaxed);
    if (now - last >= 10'000 && last_busy_warning_ms_.compare_exchange_strong(last, now)) {
        log::warn("storage cannot take events now; answering 429 with Retry-After", {{"reason", why}});
    }
}

void ingest::record_rejection(http::request& req, refusal why, std::string_view detail)
{
    (void)reject(req, why, detail);
}

namespace {

// What is stored of a delivery, but its body (moved in last, once nothing can refuse it).
store::event_record to_record(const http::request& req, json::payload&& p, event_status status, std::string_view reason,
                              const verify_settings& cfg)
{
    store::event_record ev;
    ev.received_at_us = now_us();
    ev.status = status;
    ev.verify_reason = std::string(reason);
    ev.body_sha256 = crypto::hex(crypto::sha256(req.msg.body()));
    ev.dedupe_key = p.message_id ? "m:" + *p.message_id : "b:" + ev.body_sha256;
    ev.method = std::string(std::string_view(bhttp::to_string(req.msg.method())));
    ev.path = std::string(req.path());
    ev.query = std::string(req.query());
    ev.client_addr = req.client_addr;
    ev.headers = header_lines(req);
    ev.content_type = std::string(std::string_view(req.msg[bhttp::field::content_type]));
    ev.signature = std::string(std::string_view(req.msg["x-content-signature"]));
    ev.message_id = std::move(p.message_id);
    ev.type = std::move(p.type);
    ev.action = std::move(p.action);
    ev.entity_id = p.id;
    ev.company_id = std::move(p.company_id);
    ev.member_id = std::move(p.member_id);
    ev.from_url = std::move(p.from_url);
    ev.product_instance_id = std::move(p.product_instance_id);
    ev.partner_id = std::move(p.partner_id);
    ev.callback_id = p.callback_id;
    ev.key_url = std::move(p.key_url);
    ev.next_verify_at_us =
        status == event_status::pending
            ? ev.received_at_us + std::chrono::duration_cast<std::chrono::microseconds>(cfg.pending_retry_min).count()
            : 0;
    return ev;
}

} // namespace

http::response ingest::answer(http::request& req, const store::insert_outcome& o, const verdict& v,
                              std::string_view type, std::string_view action, verify_mode mode)
{
    req.log_fields.emplace_back("event", o.id);
    if (o.duplicate) {
        duplicates_.inc();
        req.log_fields.emplace_back("reason", "duplicate");
        return stored_response(200, "duplicate", o.id);
    }
    if (o.upgraded_from) {
        // A verified redelivery settled an unsettled row.
        upgraded_.inc();
        (*o.upgraded_from == event_status::pending ? counts_.pending : counts_.failed).fetch_sub(1);
        req.log_fields.emplace_back("upgraded_from", store::to_string(*o.upgraded_from));
        return stored_response(200, "stored", o.id);
    }
    stored_.inc();
    by_status_[static_cast<int>(v.status)]->inc();
    count_by_type(type, action, v.status);
    if (v.status == event_status::pending) {
        counts_.pending.fetch_add(1, std::memory_order_relaxed);
        req.log_fields.emplace_back("reason", v.reason);
        return stored_response(202, "pending", o.id);
    }
    if (v.status == event_status::failed) {
        counts_.failed.fetch_add(1, std::memory_order_relaxed);
        req.log_fields.emplace_back("reason", v.reason);
        if (mode == verify_mode::enforce) {
            // Quarantined: acknowledged (Manage would not retry a refusal), never verified.
            return http::json_response(
                202, fmt::format("{{\"status\":\"failed\",\"id\":{},\"reason\":\"{}\"}}", o.id, v.reason));
        }
        return http::json_response(
            200, fmt::format("{{\"status\":\"stored\",\"id\":{},\"verification\":\"failed\",\"reason\":\"{}\"}}", o.id,
                             v.reason));
    }
    return stored_response(200, "stored", o.id);
}

net::awaitable<http::response> ingest::handle(http::request& req)
{
    const std::string& body = req.msg.body();
    auto parsed = json::parse_payload(body);
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        co_return reject(req, refusal::malformed_payload, err->detail);
    }
    auto& p = std::get<json::payload>(parsed);
    req.log_fields.emplace_back("type", p.type);
    req.log_fields.emplace_back("action", p.action);
    req.log_fields.emplace_back("entity", p.id);

    // One request runs with one version of the settings, whatever a reload does meanwhile.
    const std::shared_ptr<const verify_settings> snapshot = cfg_.get();
    const verify_settings& cfg = *snapshot;
    const std::string_view signature = req.msg["x-content-signature"];
    auto v = co_await verify(cfg, body, signature, p.key_url, p.company_id);
    if (v.what == verdict::fate::defer) {
        co_return defer(req, v.why, v.detail);
    }
    if (v.what == verdict::fate::refuse) {
        if (cfg.mode == verify_mode::enforce) {
            co_return reject(req, v.why, v.detail, p.key_url);
        }
        v.status = event_status::failed; // report mode: keep it, flagged
        v.reason = describe(v.why).code;
    }
    if (v.status == event_status::pending &&
        counts_.pending.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(cfg.max_pending)) {
        metrics_.get_counter("cwhook_pending_limit_total").inc();
        co_return defer(req, refusal::pending_limit, "too many events await verification; retry later");
    }

    const std::string labels_type = p.type; // for the metric, after the event is stored
    const std::string labels_action = p.action;
    store::event_record ev = to_record(req, std::move(p), v.status, v.reason, cfg);
    ev.body = std::move(req.msg.body()); // no rejection can follow from here on

    auto outcome = co_await await_completion<result<store::insert_outcome>>(
        [&](auto done) { return store_.submit_event(std::move(ev), std::move(done)); });
    if (!outcome || !*outcome) {
        busy_.inc();
        const std::string why = !outcome ? std::string("storage queue is full") : outcome->error().message();
        warn_busy(why);
        co_return defer(req, refusal::storage_unavailable, why + "; retry later");
    }
    co_return answer(req, outcome->value(), v, labels_type, labels_action, cfg.mode);
}

} // namespace cwhook::callback
