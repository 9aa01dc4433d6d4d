// The forwarding outbox, as the store keeps it: one delivery row per (event, destination),
// created in the same transaction that makes the event forwardable (stored verified, upgraded
// by a verified redelivery, or settled verified), so an acknowledged event can never miss its
// forward. The same transaction gives the event its feed position (commit order). Plain data.
//
// A delivery is pending (never tried, or retried by an operator), failing (tried, waiting for
// its next attempt), done (a 2xx), dead (its schedule ran out) or cancelled (its destination
// left the configuration). A sender claims due rows with a lease (their next attempt moves to
// the lease's end), so that each delivery has one sender at a time across instances; the
// lease end is the fence its result must match.
#pragma once

#include "store/event_store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::store {

enum class delivery_state { pending, failing, done, dead, cancelled };
std::string_view to_string(delivery_state s);
std::optional<delivery_state> parse_delivery_state(std::string_view s);

// Which events a destination takes: lower-case Types and actions (empty = all).
struct destination_route {
    std::string name;
    std::vector<std::string> types;
    std::vector<std::string> actions;
};

// A delivery handed to a sender, with what it sends.
struct claimed_delivery {
    std::int64_t id = 0;
    std::int64_t event_id = 0;
    std::string destination;
    std::int64_t attempts = 0;       // made before this one (all rounds)
    std::int64_t tries = 0;          // made in this round (since creation or the last retry)
    std::int64_t created_at_us = 0;  // when the event became forwardable
    std::int64_t lease_until_us = 0; // the fence: a result applies while the row still holds it
    // The event.
    std::int64_t received_at_us = 0;
    event_status status = event_status::verified;
    event_source source = event_source::callback;
    std::string dedupe_key;
    std::string content_type;
    std::string body;
    std::string type;
    std::string action;
    std::optional<std::int64_t> entity_id;
    std::optional<std::string> company_id;
};

// What became of one claimed delivery.
struct delivery_result {
    std::int64_t id = 0;
    std::int64_t lease_until_us = 0;             // as claimed
    bool attempted = true;                       // false: released unsent (shutdown, paused); no attempt recorded
    delivery_state state = delivery_state::done; // done, failing, dead, or pending (released)
    std::int64_t next_attempt_at_us = 0;         // failing / pending rows
    std::int64_t at_us = 0;                      // when the attempt started
    int http_status = 0;                         // 0: no answer
    std::int64_t latency_us = 0;
    std::string error; // "" on success
};

struct delivery_attempt {
    std::int64_t delivery_id = 0;
    std::int64_t at_us = 0;
    int http_status = 0;
    std::int64_t latency_us = 0;
    std::string error;
};

// A delivery row for operators.
struct delivery_row {
    std::int64_t id = 0;
    std::int64_t event_id = 0;
    std::string destination;
    delivery_state state = delivery_state::pending;
    std::int64_t created_at_us = 0;
    std::int64_t next_attempt_at_us = 0;
    std::int64_t attempts = 0;
    std::int64_t tries = 0;
    int last_status = 0;
    std::string last_error;
    std::int64_t done_at_us = 0;
    std::vector<delivery_attempt> history; // oldest first, where asked for
};

// Every set member narrows the selection (AND); newest first, before_id pages.
struct delivery_filter {
    std::optional<std::string> destination;
    std::optional<delivery_state> state;
    std::optional<std::int64_t> event_id;
    std::optional<std::int64_t> before_id;
    std::size_t limit = 50; // 0: no limit
};

// One destination as the database knows it: whether the configuration holds it, whether it
// is paused (by an operator, or "gone" after a 410), and its outbox.
struct destination_status {
    std::string name;
    bool configured = false;
    bool paused = false;
    std::string pause_reason;
    std::int64_t changed_at_us = 0;
    std::int64_t pending = 0; // pending + failing rows
    std::int64_t failing = 0;
    std::int64_t dead = 0;
    std::int64_t done = 0;
    std::int64_t cancelled = 0;
    std::optional<std::int64_t> oldest_due_created_at_us; // oldest undelivered row's creation
};

// What a destination sync did.
struct sync_outcome {
    std::int64_t cancelled = 0; // undelivered rows of destinations no longer configured
};

// One event of the feed: its position (commit order of becoming forwardable) and id.
struct feed_position {
    std::int64_t seq = 0;
    std::int64_t event_id = 0;
};

} // namespace cwhook::store
