// Design: a trigger picks the matching active subscriptions under the lock, then spawns one
// delivery coroutine per subscription so a slow or retrying receiver does not hold up the
// others, and waits for all of them on a timer used as an event (everything runs on the
// emulator's one thread, so the counter and the timer need no further synchronisation).
// Each delivery follows Manage's documented rule (docs/PROTOCOL.md section 4): POST the compact
// signed body; any 2xx is success; only 404/409/419/429 are retried, after each configured
// delay in turn; a 5xx, a timeout or a refused connection ends it. The same bytes (same
// MessageId and signature) go out on every attempt. The trigger's record (records.cpp) is
// changed before anything is sent, and its JSON is the Entity.
#include "emulator/callback_table.hpp"

#include "core/json_string.hpp"
#include "core/log.hpp"
#include "crypto/signature.hpp"
#include "emulator/detail/impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace cwhook::emulator {

namespace net = boost::asio;
using net::awaitable;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::string lowered(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool matches(const callback_entry& s, const trigger_request& t)
{
    if (s.inactive || s.type != lowered(t.type)) {
        return false;
    }
    if (s.level == "owner") {
        return true;
    }
    if (s.level == s.type) {
        return s.object_id == t.id;
    }
    return std::any_of(t.levels.begin(), t.levels.end(), [&](const auto& lv) {
        return lowered(lv.first) == s.level && lv.second == s.object_id;
    });
}

bool retryable(unsigned status)
{
    return status == 404 || status == 409 || status == 419 || status == 429;
}

// The compact body Manage POSTs, Entity as a JSON-encoded string (null on deleted).
std::string make_body(const emulator::impl& im, const trigger_request& t, std::int64_t callback_id,
                      const std::string& key_url)
{
    const std::string action = lowered(t.action);
    const std::string type = lowered(t.type);
    std::string body = "{\"MessageId\":";
    append_json_string(body, new_guid());
    body += ",\"FromUrl\":";
    append_json_string(body, im.host);
    body += ",\"CompanyId\":";
    append_json_string(body, im.cfg.company);
    body += ",\"MemberId\":";
    append_json_string(body, im.cfg.member_id);
    body += ",\"Action\":";
    append_json_string(body, action);
    body += ",\"Type\":";
    append_json_string(body, type);
    body += fmt::format(",\"ID\":{},\"ProductInstanceId\":", t.id);
    append_json_string(body, im.product_instance_id);
    body += ",\"PartnerId\":";
    append_json_string(body, im.partner_id);
    body += ",\"Entity\":";
    if (action == "deleted") {
        body += "null";
    } else if (!t.entity.empty()) {
        append_json_string(body, t.entity);
    } else {
        std::string entity = fmt::format("{{\"id\":{},\"name\":", t.id);
        append_json_string(entity, fmt::format("Emulated {} {}", type, t.id));
        entity += ",\"_info\":{\"lastUpdated\":";
        append_json_string(entity, utc_now());
        entity += ",\"updatedBy\":";
        append_json_string(entity, im.cfg.member_id);
        entity += "}}";
        append_json_string(body, entity);
    }
    body += ",\"Metadata\":{\"key_url\":";
    append_json_string(body, key_url);
    body += fmt::format("}},\"CallbackObjectRecId\":{}}}", callback_id);
    return body;
}

struct join_state {
    explicit join_state(const net::any_io_executor& ex) : done(ex, net::steady_timer::time_point::max()) {}
    net::steady_timer done;
    std::size_t left = 0;
    std::vector<delivery_result> results;
};

// Spawned (never awaited in place), so its parameters are by value.
awaitable<void> deliver_one(emulator::impl* im, callback_entry sub, std::string body, std::string signature,
                            std::int64_t record_id, std::shared_ptr<join_state> join, std::size_t index)
{
    delivery_result r;
    r.callback_id = sub.id;
    r.url = sub.url + std::to_string(record_id);
    r.body = body;
    r.signature = signature;

    client::request req;
    req.method = "POST";
    req.body = std::move(body);
    req.headers = {{"Content-Type", "application/json"}, {"x-content-signature", signature}};
    client::options opt;
    opt.timeout = im->cfg.delivery_timeout;
    opt.allow_private = true;  // subscriptions of a local trial point at this machine

    auto url = boost::urls::parse_absolute_uri(r.url);
    const bool usable = url && (url->scheme_id() == boost::urls::scheme::http ||
                                url->scheme_id() == boost::urls::scheme::https) &&
                        !url->encoded_host().empty();
    if (!usable) {
        r.attempts = 1;
        r.error = "invalid subscription URL";
    } else {
        req.tls = url->scheme_id() == boost::urls::scheme::https;
        req.host = url->host_type() == boost::urls::host_type::ipv6 ? url->host_ipv6_address().to_string()
                                                                      : std::string(url->encoded_host());
        req.port = url->has_port() ? url->port_number() : static_cast<std::uint16_t>(req.tls ? 443 : 80);
        req.target = url->encoded_path().empty() ? std::string("/") : std::string(url->encoded_path());
        if (url->has_query()) {
            req.target += "?" + std::string(url->encoded_query());
        }
        for (std::size_t attempt = 0;; ++attempt) {
            ++r.attempts;
            auto res = co_await im->outbound->fetch(req, opt);
            if (res) {
                r.status = res->status;
                r.error.clear();
            } else {
                r.status = 0;
                r.error = res.error().detail;
            }
            r.delivered = r.status >= 200 && r.status < 300;
            if (r.delivered || !retryable(r.status) || attempt >= im->cfg.retry_delays.size()) {
                break;
            }
            net::steady_timer wait(im->ioc->get_executor(), im->cfg.retry_delays[attempt]);
            co_await wait.async_wait(use_tuple);
        }
    }

    {
        std::lock_guard lock(im->mutex);
        if (auto it = im->entries.find(sub.id); it != im->entries.end()) {
            auto& e = it->second;
            e.deliveries += r.attempts;
            if (r.delivered) {
                e.consecutive_failures = 0;
            } else if (++e.consecutive_failures >= im->cfg.disable_after_failures &&
                       im->cfg.disable_after_failures > 0 && !e.inactive) {
                e.inactive = true;
                e.last_updated = utc_now();
                r.disabled = true;
            }
            im->persist_locked();
        }
    }
    // The error (connection refused, TLS handshake, timeout) says why a status 0 failed.
    log::info("delivery", {{"callback_id", r.callback_id},
                           {"url", r.url},
                           {"attempts", r.attempts},
                           {"status", r.status},
                           {"delivered", r.delivered ? "yes" : "no"},
                           {"disabled", r.disabled ? "yes" : "no"},
                           {"error", r.error.empty() ? "-" : r.error}});

    join->results[index] = std::move(r);
    if (--join->left == 0) {
        join->done.cancel();
    }
    co_return;
}

} // namespace

awaitable<std::vector<delivery_result>> run_trigger(emulator::impl* im, const trigger_request& t_in)
{
    trigger_request t = t_in; // copied before the first suspension
    std::vector<callback_entry> subs;
    std::string key_url;
    std::string key;
    {
        std::lock_guard lock(im->mutex);
        // The record changes first, so the Entity delivered is the record a GET then answers.
        t.entity = im->apply_trigger_locked(t);
        if (!t.callback) {
            co_return std::vector<delivery_result>{};
        }
        for (const auto& [id, e] : im->entries) {
            if (matches(e, t)) {
                subs.push_back(e);
            }
        }
        key_url = im->key_url_locked();
        key = im->key;
    }
    auto ex = im->ioc->get_executor();
    auto join = std::make_shared<join_state>(ex);
    join->left = subs.size();
    join->results.resize(subs.size());
    for (std::size_t i = 0; i < subs.size(); ++i) {
        auto body = make_body(*im, t, subs[i].id, key_url);
        auto signature = crypto::sign(key, body);
        net::co_spawn(ex, deliver_one(im, subs[i], std::move(body), std::move(signature), t.id, join, i),
                      [join](const std::exception_ptr& e) {
                          if (!e) {
                              return;
                          }
                          try {
                              std::rethrow_exception(e);
                          } catch (const std::exception& x) {
                              log::error("emulator delivery failed", {{"what", x.what()}});
                          }
                          // It threw before reporting: count it as done so the trigger ends.
                          if (--join->left == 0) {
                              join->done.cancel();
                          }
                      });
    }
    if (join->left > 0) {
        co_await join->done.async_wait(use_tuple);
    }
    co_return join->results;
}

std::string delivery_json(const delivery_result& r)
{
    std::string out = fmt::format("{{\"callback_id\":{},\"url\":", r.callback_id);
    append_json_string(out, r.url);
    out += fmt::format(",\"attempts\":{},\"status\":{},\"delivered\":{},\"disabled\":{}", r.attempts, r.status,
                       r.delivered, r.disabled);
    if (!r.error.empty()) {
        out += ",\"error\":";
        append_json_string(out, r.error);
    }
    out.push_back('}');
    return out;
}

} // namespace cwhook::emulator
