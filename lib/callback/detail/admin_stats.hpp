// GET /api/stats?window=1h|6h|24h: events by type and by status, and rejections by reason,
// counted in time buckets (1 min, 5 min, 15 min) over the window, plus the events waiting
// (pending) or unverifiable (failed) now. For the console's overview; runs on the admin
// API's database worker like every other query.
#pragma once

#include "http/router.hpp"
#include "store/db_worker.hpp"

#include <boost/asio/awaitable.hpp>

namespace cwhook::callback::detail {

boost::asio::awaitable<http::response> serve_stats(store::db_worker* db, http::request& req);

} // namespace cwhook::callback::detail
