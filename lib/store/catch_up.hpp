// Catch-up, as the store keeps it: one watermark per (company, type) (the newest record
// `_info/lastUpdated` a run has confirmed), the runs' outcomes, each instance's heartbeat, and
// events synthesized from records read back from Manage's REST API. Plain data.
//
// A synthesized event is an ordinary events row with status `synthesized`, source `catch_up`,
// dedupe key "s:<company>:<type>:<id>:<lastUpdated us>" (so overlapping runs never double it)
// and entity_updated_at_us = the record's lastUpdated. It becomes forwardable (deliveries,
// feed position) in the transaction that stores it, like a verified callback.
//
// A callback stored later whose Entity's lastUpdated is not newer than a synthesized event of
// the same (type, entity id) is its twin: it is stored (status as verified, source callback)
// with twin_of = the synthesized row's id, and is neither forwarded nor given a feed position:
// consumers see the synthesized event only, once. A callback stored pending (key server down)
// is held to the same rule when it is settled verified.
#pragma once

#include "store/event_store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::store {

// What a synthesized event is made of (the catch-up engine builds the payload).
struct synthesized_event {
    std::string company;     // Manage company id ([manage] company_id)
    std::string type;        // callback Type, lower case ("ticket")
    std::string action;      // "added" | "updated" | "deleted"
    std::int64_t entity_id = 0;
    std::int64_t last_updated_us = 0; // the record's _info/lastUpdated (deleted: the run's start)
    std::string body;                 // the payload as stored and forwarded (Manage's shape)
    std::string body_sha256;          // hex SHA-256 of body (the store does no hashing)
    // The newest event id for (type, entity id) the engine saw when it decided this record is
    // unseen (0: none). The store inserts nothing when a newer row of that (type, id) has been
    // committed since (a callback raced the run): the outcome is then `seen`.
    std::int64_t newest_seen_id = 0;
};

enum class synthesis_outcome { synthesized, already, seen };

// The newest stored event of one (type, entity id), for the engine's "already seen?" check.
struct newest_event {
    std::int64_t id = 0;
    std::int64_t entity_id = 0;
    bool synthesized = false;                          // status synthesized
    std::optional<std::int64_t> entity_updated_at_us;  // synthesized rows (and twins)
    std::int64_t received_at_us = 0;
    std::string body;                                  // callbacks: the engine reads Entity's lastUpdated
};

struct watermark {
    std::string company;
    std::string type;
    std::int64_t last_updated_us = 0; // 0: none yet
    std::int64_t updated_at_us = 0;
};

struct catch_up_run {
    std::int64_t id = 0;
    std::string company;
    std::string type;
    std::string trigger;              // "start" | "interval" | "gap" | "command"
    std::int64_t started_at_us = 0;
    std::int64_t finished_at_us = 0;  // 0: running (or crashed)
    std::int64_t examined = 0;
    std::int64_t synthesized = 0;
    std::int64_t seen = 0;
    std::int64_t deleted = 0;         // deletions synthesized by reconciliation
    std::int64_t watermark_before_us = 0;
    std::int64_t watermark_after_us = 0;
    std::string error;                // "" when it completed
    bool dry_run = false;
};

struct heartbeat {
    std::string instance;
    std::int64_t beat_at_us = 0;
    std::int64_t clean_stop_at_us = 0; // 0: never stopped cleanly since its last start
};

} // namespace cwhook::store
