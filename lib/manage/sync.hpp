// Declarative subscriptions: make_plan() compares the [[subscriptions]] the configuration asks
// for with what Manage holds (a pure function), apply_plan() carries the plan out.
// An entry matches a desired subscription when type, level, objectId and url are the same
// (type and level case-insensitively, url exactly) - the fields Manage's ObjectExists rule
// looks at. Only entries that are "ours" are candidates for deletion: their url, without its
// query, equals the url (without query) of some desired subscription, i.e. they point at this
// receiver. Entries of other integrations are never touched.
// Thread-safe: pure functions; apply_plan uses the api's guarantees.
#pragma once

#include "manage/api.hpp"
#include "manage/callback.hpp"
#include "manage/settings.hpp"
#include "json/value.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::manage {

enum class action { create, update, reenable, remove, unchanged };

std::string_view to_string(action a);

struct plan_item {
    action what = action::unchanged;
    std::optional<subscription> desired;        // all but remove
    std::optional<callback> actual;             // all but create
    bool apply = true;                          // remove without --prune: false (shown as delete-if-prune)
    std::optional<std::string> new_description; // update / reenable: the description to set
};

struct plan {
    std::vector<plan_item> items;
    std::size_t count(action a, bool applied_only = false) const;
    bool has_changes() const; // anything to apply
};

plan make_plan(const std::vector<subscription>& desired, const std::vector<callback>& actual, bool prune);

struct applied {
    const plan_item* item = nullptr;
    bool ok = false;
    std::int64_t id = 0; // the entry acted on (created id for create)
    std::string message; // "created", "exists already (id 42)", or the failure
};

// Applies every item with apply=true and a change; goes on after a failure. `plan` must
// outlive the call (the results point into it).
boost::asio::awaitable<std::vector<applied>> apply_plan(api& manage, const plan& p);

// ---- Reporting a plan: one shape for `cwhook subscriptions sync` and the admin API.

// What a plan item says about the subscription: "missing" (create), "inactive" (re-enable),
// "description differs" (update), "extra" (delete: ours, not declared), "in sync".
std::string_view state_of(const plan_item& i);
// The item's action as shown: to_string(what), or "delete-if-prune" for a delete not applied.
std::string label_of(const plan_item& i);

// One line of a report: the item, the entry it concerns, what applying it did.
struct report_row {
    const plan_item* item = nullptr;
    std::string label;
    std::int64_t id = 0; // the entry (created id once applied); 0 for a create not applied
    std::string type;
    std::string level;
    std::int64_t object_id = 0;
    std::string url;
    std::string description;
    const applied* result = nullptr; // nullptr: not applied (dry run, unchanged, not pruned)
};

// `p` and `results` must outlive the rows.
std::vector<report_row> report_rows(const plan& p, const std::vector<applied>& results);

// {"dryRun","prune","ok","plan":[{"action","state","id","type","level","objectId","url",
// "description","applied"[,"result"]}]}: what `sync --json` prints.
json::value report_json(const std::vector<report_row>& rows, bool dry_run, bool prune);

// A short digest of what applying `p` would do (the items that change something, and how):
// the console shows a plan, and its apply request names the digest, so that a plan changed
// meanwhile (in Manage or here) is refused instead of applied unseen.
std::string plan_digest(const plan& p);

} // namespace cwhook::manage
