// A signed ping to one destination: the operator's check that its URL, TLS and secret work
// (`cwhook destinations test`). The request is the one an event gets (Standard Webhooks
// headers, X-Cwhook-*, the destination's timeout, private addresses allowed) with type
// "ping", action "test", source "test", event id 0 and, whatever the destination's body
// format, the body
//   {"type":"cwhook.ping","destination":"<name>","at":"<RFC 3339>"}
// Its webhook-id is new for every ping. Nothing is stored. Thread-safe (no state).
#pragma once

#include "client/https_client.hpp"
#include "forward/settings.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cwhook::forward {

struct ping_result {
    int http_status = 0; // 0: no answer
    std::int64_t latency_us = 0;
    std::string error; // "" on a 2xx; "HTTP <status>", or why there was no answer

    bool ok() const noexcept { return http_status >= 200 && http_status < 300; }
};

std::string ping_body(std::string_view destination, std::int64_t at_us);

// Sends the ping at now_us (wall clock; the latency is measured on the steady clock).
boost::asio::awaitable<ping_result> ping(client::https_client& client, destination d, std::int64_t now_us);

} // namespace cwhook::forward
