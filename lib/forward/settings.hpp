// Settings of forwarding: the [forward] section and each [[destinations]] table, which the
// configuration fills. Plain data.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace cwhook::forward {

// What a destination receives as the request body.
enum class body_format {
    raw,    // Manage's exact bytes, with their Content-Type
    event,  // a normalised JSON document: cwhook's facts about the event and the payload with Entity decoded
};

enum class ordering {
    none,    // deliveries go in parallel, each on its own retry schedule
    entity,  // deliveries of one (type, entity id) go one at a time, in the order they became forwardable
};

// The delays before each attempt: the first is usually 0 (at once); after the last failed
// attempt the delivery is dead.
using retry_schedule = std::vector<std::chrono::milliseconds>;

// "immediate, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h".
retry_schedule default_retry_schedule();

struct destination {
    std::string name;    // [A-Za-z0-9_.-]{1,64}, unique
    std::string url;     // http:// or https://
    // "whsec_<base64>" (Standard Webhooks); a secret: never logged, "<redacted>" when rendered.
    std::string secret;
    std::string secret_file;  // where `secret` was read from ("" when given inline)
    std::vector<std::string> types;    // lower-case callback Types; empty = all
    std::vector<std::string> actions;  // lower-case actions (added, updated, deleted); empty = all
    body_format body = body_format::raw;
    std::chrono::milliseconds timeout{10'000};  // one attempt, end to end
    double rate = 0;                            // requests per second at most; 0 = no limit
    std::size_t concurrency = 4;                // requests in flight at most (per instance)
    ordering order = ordering::none;
    retry_schedule retries;                     // empty: [forward] retry_schedule

    bool operator==(const destination&) const = default;
};

struct settings {
    retry_schedule retries = default_retry_schedule();
    double jitter = 0.2;  // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    // A Retry-After (seconds) is honoured when it asks for a wait between the schedule's next
    // delay and this bound; a longer one is clamped to it.
    std::chrono::milliseconds max_retry_after{3'600'000};
    // After this many consecutive failures a destination's circuit opens: nothing is sent to
    // it but one probe per breaker_probe_interval until a probe succeeds. 0 = never.
    std::size_t breaker_threshold = 10;
    std::chrono::milliseconds breaker_probe_interval{30'000};
    // How often the forwarder looks for due deliveries besides when this process stores one
    // (other instances' rows, retries coming due).
    std::chrono::milliseconds poll_interval{1'000};
    // A claimed delivery's lease outlasts its request (the destination's timeout and its rate
    // wait) by this much: a sender that is merely slow keeps it, one that died (kill -9, a
    // lost host) lets another sender retry it this long after the request's deadline.
    std::chrono::milliseconds lease_margin{30'000};
    std::string ca_file;  // PEM bundle trusted for https destinations besides the system's
};

} // namespace cwhook::forward
