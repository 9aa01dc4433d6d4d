// Design: the handler never throws for anything a client sends. Each outcome maps to one
// status, one reason code and one counter. Verification happens before persistence so a
// forgery never reaches the events table (except flagged, in report mode), and the answer
// is written only after the writer thread has committed the row.
#include "callback/ingest.hpp"

#include "callback/detail/await.hpp"
#include "core/log.hpp"
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

std::int64_t now_us()
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

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

http::response busy_response(std::string_view reason, std::string_view detail)
{
    auto res = http::error_response(429, reason, detail);
    res.set(bhttp::field::retry_after, "2");
    return res;
}

} // namespace

struct ingest::verdict {
    event_status status = event_status::failed;
    std::string reason;       // reason code: bad_signature, key_url_not_allowed, ...
    std::string detail;       // safe text for the client
    unsigned refuse_status = 0;  // enforce mode: the 4xx to answer instead of storing
};

net::awaitable<verify_outcome> verify_body(key_cache& keys, const key_target& target, const std::string& url,
                                           const std::string& body, const crypto::digest256& signature)
{
    auto lookup = co_await keys.get(target, url, false);
    if (lookup.key && crypto::verify_signature(*lookup.key, body, signature)) {
        co_return verify_outcome{event_status::verified, {}};
    }
    if (lookup.key && lookup.from_cache) {
        // Keys rotate: a mismatch against a cached key earns one fresh fetch.
        const auto old = *lookup.key;
        lookup = co_await keys.get(target, url, true);
        if (lookup.key && *lookup.key != old && crypto::verify_signature(*lookup.key, body, signature)) {
            co_return verify_outcome{event_status::verified, {}};
        }
    }
    if (lookup.key) {
        co_return verify_outcome{event_status::failed, "bad_signature"};
    }
    if (is_transient(lookup.key.error())) {
        co_return verify_outcome{event_status::pending, "key_fetch_failed"};
    }
    co_return verify_outcome{event_status::failed,
                             lookup.key.error() == errc::redirect_refused ? "key_redirect" : "key_unavailable"};
}

ingest::ingest(const verify_settings& cfg, const key_url_policy& policy, key_cache& keys, store::event_store& store,
               pending_tracker& pending, metrics::registry& metrics)
    : cfg_(cfg), policy_(policy), keys_(keys), store_(store), pending_(pending), metrics_(metrics),
      stored_(metrics.get_counter("cwhook_events_stored_total")),
      duplicates_(metrics.get_counter("cwhook_duplicates_total")),
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

net::awaitable<ingest::verdict> ingest::verify(const std::string& body, std::string_view signature_header,
                                               const std::string& key_url)
{
    verdict v;
    if (cfg_.mode == verify_mode::off) {
        v.status = event_status::unverified;
        v.reason = "verification_off";
        co_return v;
    }
    auto target = policy_.check(key_url);
    if (!target) {
        v.reason = "key_url_not_allowed";
        v.detail = target.error();
        v.refuse_status = 403;
        co_return v;
    }
    if (signature_header.empty()) {
        v.reason = "bad_signature";
        v.detail = "missing x-content-signature";
        v.refuse_status = 401;
        co_return v;
    }
    const auto sig = crypto::decode_signature_header(signature_header);
    if (!sig) {
        v.reason = "bad_signature";
        v.detail = "x-content-signature is not a base64 SHA-256 HMAC";
        v.refuse_status = 401;
        co_return v;
    }
    auto outcome = co_await verify_body(keys_, *target, key_url, body, *sig);
    v.status = outcome.status;
    v.reason = outcome.reason;
    if (outcome.status == event_status::failed) {
        v.refuse_status = 401;
        v.detail = outcome.reason == "bad_signature" ? "signature does not match the body"
                                                     : "the key server gave no usable key for key_url";
    }
    co_return v;
}

http::response ingest::reject(http::request& req, unsigned status, std::string_view reason, std::string_view detail,
                              std::string_view key_url)
{
    metrics_.get_counter("cwhook_rejections_total", fmt::format("reason=\"{}\"", reason)).inc();
    req.log_fields.emplace_back("reason", reason);
    store::rejection_record r;
    r.received_at_us = now_us();
    r.http_status = static_cast<int>(status);
    r.reason = std::string(reason);
    r.detail = std::string(detail);
    r.client_addr = req.client_addr;
    r.path = std::string(req.msg.target());
    r.key_url = std::string(key_url);
    const auto& body = req.msg.body();
    r.body_size = static_cast<std::int64_t>(body.size());
    if (status == 413) {
        if (const auto len = req.msg[bhttp::field::content_length]; !len.empty()) {
            r.body_size = std::strtoll(std::string(len).c_str(), nullptr, 10);
        }
    }
    r.body_sha256 = crypto::hex(crypto::sha256(body));
    r.body_head = body.substr(0, 256);
    if (!store_.submit_rejection(std::move(r))) {
        metrics_.get_counter("cwhook_rejections_dropped_total").inc();
    }
    return http::error_response(status, reason, detail);
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

void ingest::record_rejection(http::request& req, unsigned status, std::string_view reason, std::string_view detail)
{
    (void)reject(req, status, reason, detail);
}

net::awaitable<http::response> ingest::handle(http::request& req)
{
    const std::string& body = req.msg.body();
    auto parsed = json::parse_payload(body);
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        co_return reject(req, 400, "malformed_payload", err->detail);
    }
    auto& p = std::get<json::payload>(parsed);
    req.log_fields.emplace_back("type", p.type);
    req.log_fields.emplace_back("action", p.action);
    req.log_fields.emplace_back("entity", p.id);

    const std::string_view signature = req.msg["x-content-signature"];
    auto v = co_await verify(body, signature, p.key_url);
    if (v.refuse_status != 0 && cfg_.mode == verify_mode::enforce) {
        co_return reject(req, v.refuse_status, v.reason, v.detail, p.key_url);
    }
    if (v.refuse_status != 0) {
        v.status = event_status::failed;  // report mode: keep it, flagged
    }
    if (v.status == event_status::pending &&
        pending_.count.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(cfg_.max_pending)) {
        metrics_.get_counter("cwhook_pending_limit_total").inc();
        req.log_fields.emplace_back("reason", "pending_limit");
        co_return busy_response("pending_limit", "too many events await verification; retry later");
    }

    store::event_record ev;
    ev.received_at_us = now_us();
    ev.status = v.status;
    ev.verify_reason = v.reason;
    ev.body_sha256 = crypto::hex(crypto::sha256(body));
    ev.dedupe_key = p.message_id ? "m:" + *p.message_id : "b:" + ev.body_sha256;
    ev.method = std::string(std::string_view(bhttp::to_string(req.msg.method())));
    ev.path = std::string(req.path());
    ev.query = std::string(req.query());
    ev.client_addr = req.client_addr;
    ev.headers = header_lines(req);
    ev.content_type = std::string(std::string_view(req.msg[bhttp::field::content_type]));
    ev.signature = std::string(signature);
    ev.message_id = std::move(p.message_id);
    const std::string labels_type = p.type;  // for the metric, after the event is stored
    const std::string labels_action = p.action;
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
    ev.next_verify_at_us = v.status == event_status::pending
                               ? ev.received_at_us + std::chrono::duration_cast<std::chrono::microseconds>(cfg_.pending_retry_min).count()
                               : 0;
    ev.body = std::move(req.msg.body());  // no rejection can follow from here on

    auto outcome = co_await detail::await_completion<result<store::insert_outcome>>(
        [&](auto done) { return store_.submit_event(std::move(ev), std::move(done)); });
    if (!outcome) {
        busy_.inc();
        req.log_fields.emplace_back("reason", "storage_queue_full");
        warn_busy("storage queue is full");
        co_return busy_response("storage_unavailable", "storage queue is full; retry later");
    }
    if (!*outcome) {
        busy_.inc();
        const auto ec = outcome->error();
        req.log_fields.emplace_back("reason", ec.message());
        warn_busy(ec.message());
        co_return busy_response("storage_unavailable", ec.message());
    }
    const auto& o = outcome->value();
    req.log_fields.emplace_back("event", o.id);
    if (o.duplicate) {
        duplicates_.inc();
        req.log_fields.emplace_back("reason", "duplicate");
        co_return stored_response(200, "duplicate", o.id);
    }
    stored_.inc();
    by_status_[static_cast<int>(v.status)]->inc();
    count_by_type(labels_type, labels_action, v.status);
    if (v.status == event_status::pending) {
        pending_.count.fetch_add(1, std::memory_order_relaxed);
        req.log_fields.emplace_back("reason", v.reason);
        co_return stored_response(202, "pending", o.id);
    }
    if (v.status == event_status::failed) {
        req.log_fields.emplace_back("reason", v.reason);
        co_return http::json_response(
            200, fmt::format("{{\"status\":\"stored\",\"id\":{},\"verification\":\"failed\",\"reason\":\"{}\"}}", o.id, v.reason));
    }
    co_return stored_response(200, "stored", o.id);
}

} // namespace cwhook::callback
