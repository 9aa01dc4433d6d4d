// Catch-up: what Manage changed but never delivered, read back from its REST API.
//
// A run, for each type: take the type's lease (no two runs of one type at once, across
// instances), read the watermark W, list `<collection>?conditions=lastUpdated>[W - overlap]`
// with `fields=id,_info` (all pages, the client's paging), sort by (lastUpdated, id), and walk
// the list in batches: a record is already seen when the newest stored event of its (type, id)
// carries a lastUpdated at least as new (a synthesized event's own, a callback's Entity
// `_info/lastUpdated`, else the callback's arrival time); the unseen ones are fetched in full
// (`conditions=id in (...)`) and stored as synthesized events, with the watermark moved to the
// batch's newest lastUpdated in the same transaction. A crash or a failure therefore resumes
// from the last batch committed, and the dedupe key (company, type, id, lastUpdated) keeps
// overlapping runs from doubling anything.
//
// Manners: clientId on every call (the api's), at most settings.rate requests per second,
// 429 Retry-After honoured by the client and then by the run itself (it waits and asks again,
// keeping its place), a first run starts at now - initial_window.
//
// Deletions leave no lastUpdated: reconcile() compares the ids Manage lists with the entities
// the store knows (whose newest event is not a deletion) and synthesizes `deleted` for each
// one that vanished.
//
// Runs are serialized: run() and reconcile() on one engine never overlap (a second caller
// waits). Not thread-safe otherwise: call from the engine's executor.
#pragma once

#include "catchup/settings.hpp"
#include "core/metrics.hpp"
#include "manage/api.hpp"
#include "store/catch_up.hpp"
#include "store/event_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::catchup {

struct run_options {
    std::vector<std::string> types;       // empty: the engine's types
    std::optional<std::int64_t> since_us; // instead of the watermark (the watermark still only moves forward)
    bool dry_run = false;                 // count, store nothing, move no watermark
    std::string trigger = "command";      // "start" | "interval" | "gap" | "command" | "reconcile"
};

struct type_report {
    std::string type;
    std::int64_t examined = 0;
    std::int64_t synthesized = 0; // dry run: would be
    std::int64_t seen = 0;
    std::int64_t deleted = 0; // reconcile: deletions synthesized
    std::int64_t watermark_before_us = 0;
    std::int64_t watermark_after_us = 0;
    bool busy = false; // another instance holds the type: not run
    std::string error; // "" when the type's run completed
};

class engine {
public:
    struct timing {
        std::function<std::int64_t()> now_us;                                         // wall clock
        std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> sleep; // empty: a timer
    };

    // `company`: [manage] company_id, part of every watermark and dedupe key. `instance`
    // names this process in the type leases.
    engine(boost::asio::any_io_executor ex, store::event_store& store, manage::api& api, settings s,
           std::string company, std::string instance, metrics::registry& metrics, timing t = {});
    ~engine();

    // The types a run covers by default.
    const std::vector<std::string>& types() const noexcept;

    boost::asio::awaitable<std::vector<type_report>> run(run_options o);
    boost::asio::awaitable<std::vector<type_report>> reconcile(run_options o);

private:
    struct state;
    std::shared_ptr<state> s_;
};

// The payload of a synthesized event, in Manage's shape (Entity a JSON-encoded string, null
// for a deletion; Metadata.key_url empty; Metadata.source "catch_up").
std::string synthesized_body(std::string_view company, std::string_view type, std::string_view action, std::int64_t id,
                             std::optional<std::string_view> entity);

} // namespace cwhook::catchup
