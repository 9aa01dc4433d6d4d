// Replaying stored events to a receiver: the exact stored bytes, POSTed with the original
// Content-Type and x-content-signature (or a signature made with a given signing key), plus
// X-Cwhook-Replay-Of: <event id>. Rate limited (events per second, across all workers), with
// a bounded number of requests in flight. Each attempt is reported for the replay history.
// The ids come as a list or page by page from a source, and events are loaded one at a time
// through awaitable hooks, so the database can live on a thread of its own.
// Thread-safety: start_replay() runs everything on the strand it is given; the hooks are
// called there, one at a time (an awaited hook may complete its work elsewhere).
#pragma once

#include "client/https_client.hpp"
#include "store/event_db.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::events {

inline constexpr std::string_view replay_header = "X-Cwhook-Replay-Of";

struct replay_options {
    std::string to;                     // http:// or https:// URL (private addresses allowed)
    double rate = 0;                    // events per second; 0 = as fast as concurrency allows
    std::size_t concurrency = 1;
    bool stop_on_error = false;         // no new request after the first non-2xx or failure
    std::optional<std::string> sign_key;  // re-sign bodies with this signing key
    std::chrono::milliseconds timeout{10'000};  // per request
    std::string job;                    // recorded with each attempt ("" from the command line)
};

struct replay_summary {
    std::size_t total = 0;
    std::size_t sent = 0;     // requests that got an answer
    std::size_t ok = 0;       // 2xx answers
    std::map<unsigned, std::size_t> non_2xx;  // by status
    std::size_t failed = 0;   // no answer: connect, TLS, timeout, event gone
    bool stopped = false;     // --stop-on-error (or a failed page of ids) ended it early
    std::string error;        // why the selection could not be read to the end ("" when it was)
    bool done = false;

    std::size_t finished() const;  // attempts made
    bool all_ok() const;           // every event answered 2xx
};

// The hooks that return awaitables are awaited in place: a reference argument stays valid
// until the awaitable completes.
struct replay_hooks {
    // Loads one event (nullopt: it no longer exists or cannot be read).
    std::function<boost::asio::awaitable<std::optional<store::stored_event>>(std::int64_t id)> load;
    // Called after each attempt; the next attempt of this worker waits for it.
    std::function<boost::asio::awaitable<void>(const store::replay_attempt&)> record;
    // Called after each attempt with the running totals, and once more with done set.
    std::function<void(const replay_summary&)> progress;
};

// One page of a paged selection, in replay order. Empty ids: the selection is exhausted.
struct id_page {
    std::vector<std::int64_t> ids;
    std::string error;  // non-empty: the page could not be read; the replay stops
};
// Called whenever the ids fetched so far are used up (never twice at once).
using id_source = std::function<boost::asio::awaitable<id_page>()>;

// Validates options.to; the error says why.
boost::system::result<client::request, std::string> replay_request_for(const replay_options& o);

// Starts replaying `ids` in order on `strand` (must be a strand or a one-thread executor).
// client must outlive the replay; progress(done) is the last call.
void start_replay(const boost::asio::any_io_executor& strand, client::https_client& client, std::vector<std::int64_t> ids,
                  replay_options options, replay_hooks hooks);

// The same for ids fetched page by page from `source`, so a large selection never sits in
// memory at once. `expected` is the summary's total until the source is exhausted; then the
// total becomes the number of ids the source gave.
void start_replay(const boost::asio::any_io_executor& strand, client::https_client& client, id_source source,
                  std::size_t expected, replay_options options, replay_hooks hooks);

// "sent 10, 2xx 8, non-2xx 2 (500 x1, 404 x1), failed 0"
std::string describe(const replay_summary& s);

} // namespace cwhook::events
