#include "forward/ping.hpp"

#include "core/json_string.hpp"
#include "core/time.hpp"
#include "crypto/standard_webhooks.hpp"
#include "forward/message.hpp"

#include <fmt/format.h>

#include <chrono>

namespace cwhook::forward {

std::string ping_body(std::string_view destination, std::int64_t at_us)
{
    return fmt::format(R"({{"type":"cwhook.ping","destination":{},"at":{}}})", json_quoted(destination),
                       json_quoted(format_time(at_us, time_precision::micros)));
}

boost::asio::awaitable<ping_result> ping(client::https_client& client, destination d, std::int64_t now_us)
{
    ping_result out;
    auto key = crypto::webhook_key(d.secret);
    if (!key) {
        out.error = "secret: " + key.error();
        co_return out;
    }
    auto base = client::request_for_url(d.url);
    if (!base) {
        out.error = "url: " + base.error();
        co_return out;
    }
    outgoing o;
    // Each ping its own id: a consumer that dedupes must not drop the second test.
    o.webhook_id = stable_webhook_id(fmt::format("ping:{}:{}", d.name, now_us));
    o.type = "ping";
    o.action = "test";
    o.source = "test";
    o.received_at_us = now_us;
    o.content_type = "application/json";
    o.body = ping_body(d.name, now_us);
    // The ping is its own document, not an event to wrap.
    d.body = body_format::raw;
    const auto req = signed_request(*base, d, *key, o, 1, now_us / 1'000'000);
    // As the forwarder sends (forwarder.cpp), so that the test shows what a delivery meets.
    client::options opt;
    opt.timeout = d.timeout;
    opt.connect_timeout = d.timeout;
    opt.handshake_timeout = d.timeout;
    opt.exchange_timeout = d.timeout;
    opt.max_response_bytes = std::size_t{64} * 1024;
    opt.allow_private = true;
    const auto started = std::chrono::steady_clock::now();
    const auto r = co_await client.fetch(req, opt);
    out.latency_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
    if (!r) {
        out.error = r.error().detail;
        co_return out;
    }
    out.http_status = static_cast<int>(r->status);
    if (!out.ok()) {
        out.error = fmt::format("HTTP {}", r->status);
    }
    co_return out;
}

} // namespace cwhook::forward
