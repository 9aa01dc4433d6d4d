// Settings of catch-up (the [catch_up] section). Plain data; defaults are the member
// initializers.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace cwhook::catchup {

struct settings {
    // Runs only when [manage] has REST credentials; off: never (the commands still work).
    bool enabled = true;
    // Callback types to catch up; empty: the types of [[subscriptions]].
    std::vector<std::string> types;
    std::chrono::milliseconds interval{15 * 60 * 1000};
    // At start, or when the heartbeat finds itself late, by more than this: the daemon was away.
    std::chrono::milliseconds gap_after{2 * 60 * 1000};
    std::chrono::milliseconds heartbeat_interval{30 * 1000};
    // A run asks for lastUpdated > watermark - overlap (Manage's clock and commit order are not ours).
    std::chrono::milliseconds overlap{5 * 60 * 1000};
    // The first run of a type (no watermark) looks this far back, never to the beginning of time.
    std::chrono::milliseconds initial_window{60 * 60 * 1000};
    double rate = 3;         // REST requests per second, at most
    std::size_t batch = 100; // full records fetched per request (conditions=id in (...)), 1..1000
    // Types whose deletions are found by comparing id lists, every reconcile_interval.
    std::vector<std::string> reconcile_deletes;
    std::chrono::milliseconds reconcile_interval{6 * 60 * 60 * 1000};
    // A run's hold on a type (several instances on PostgreSQL never run one type together).
    std::chrono::milliseconds lease{10 * 60 * 1000};
};

} // namespace cwhook::catchup
