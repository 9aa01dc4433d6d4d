// Operators' re-check of unsettled events on demand (cwhook events reverify, POST
// /api/events/reverify): each pending or failed row is checked again against the key
// server (policy first, then the key; see recheck()) and settled when the answer is
// definitive. A row the key server cannot be asked about now keeps its status. The caller
// says how rows are read and written (the CLI's own connection, the admin API's worker).
// Not thread-safe: one reverify() runs its rows one after the other.
#pragma once

#include "callback/verifier.hpp"
#include "store/event_db.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cwhook::callback {

struct reverify_summary {
    std::int64_t checked = 0;
    std::int64_t verified = 0;
    std::int64_t failed = 0;     // settled as failed (or still failed, with the new reason)
    std::int64_t unchanged = 0;  // no definitive answer now, or settled meanwhile by someone else
    std::int64_t skipped = 0;    // gone, or neither pending nor failed
    std::int64_t errors = 0;     // could not be read or written

    std::string json() const;
    std::string text() const;
};

// The update a re-check applies to a row that had status `from`; nullopt when the verdict
// settles nothing (key server unreachable or busy: the row keeps its status).
std::optional<store::status_update> settled_by(std::int64_t id, store::event_status from, const key_verdict& v);

using row_loader = std::function<boost::asio::awaitable<std::optional<store::stored_event>>(std::int64_t id)>;
// Applies an update; true when the row changed, false when it had been settled meanwhile,
// nullopt on a database error.
using row_writer = std::function<boost::asio::awaitable<std::optional<bool>>(const store::status_update& u)>;

// wait: how long one row may wait for its key (a fetch, the refetch interval, the budget).
boost::asio::awaitable<reverify_summary> reverify(key_cache& keys, const key_url_policy& policy,
                                                  std::chrono::milliseconds wait, const std::vector<std::int64_t>& ids,
                                                  const row_loader& load, const row_writer& write);

} // namespace cwhook::callback
