// What every event_db shares, whatever its backend: opening by settings, and the paged scan
// built on each backend's page().
#include "store/event_db.hpp"

#include "store/detail/backends.hpp"
#include "store/detail/catch_up.hpp"
#include "store/detail/outbox.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace cwhook::store {

db_result<std::unique_ptr<event_db>> event_db::open(const std::string& path, db_access access,
                                                    std::chrono::milliseconds busy_timeout)
{
    return detail::open_sqlite_db(path, access, busy_timeout);
}

db_result<std::unique_ptr<event_db>> event_db::open(const settings& s, db_access access)
{
    if (s.backend == backend::postgres) {
        return detail::open_postgres_db(s, access);
    }
    return detail::open_sqlite_db(s.path, access, std::chrono::seconds(5));
}

db_result<void> event_db::scan(const event_filter& f, scan_order order,
                               const std::function<bool(const stored_event&)>& each, std::size_t page_size)
{
    page_size = std::max<std::size_t>(page_size, 1);
    event_filter next = f;
    std::size_t left = f.limit;  // 0: unlimited
    for (;;) {
        next.limit = left == 0 ? page_size : std::min(left, page_size);
        auto rows = page(next, order);
        if (!rows) {
            return db_result<void>(boost::system::in_place_error, rows.error());
        }
        for (const stored_event& e : *rows) {
            next.after = event_cursor{e.record.received_at_us, e.id};
            if (!each(e)) {
                return {};
            }
        }
        if (left != 0) {
            left -= rows->size();
            if (left == 0) {
                return {};
            }
        }
        if (rows->size() < next.limit) {
            return {};
        }
    }
}

namespace {

// The runner's outcome as a db_result, its failure prefixed with the database's name.
template <class T> db_result<T> named(const std::string& name, detail::outcome<T> r)
{
    if (!r) {
        return db_result<T>(boost::system::in_place_error, fmt::format("{}: {}", name, r.error().message));
    }
    return db_result<T>(boost::system::in_place_value, std::move(*r));
}

} // namespace

db_result<std::vector<delivery_row>> event_db::deliveries(const delivery_filter& f)
{
    return named(display_name(), detail::outbox::list(runner(), f));
}

db_result<std::optional<delivery_row>> event_db::delivery(std::int64_t id)
{
    return named(display_name(), detail::outbox::get(runner(), id));
}

db_result<std::vector<delivery_row>> event_db::deliveries_of(std::int64_t event_id)
{
    return named(display_name(), detail::outbox::of_event(runner(), event_id));
}

db_result<std::int64_t> event_db::retry_deliveries(std::span<const std::int64_t> ids, const delivery_filter& f,
                                                   bool dry_run)
{
    return named(display_name(), detail::outbox::retry(runner(), ids, f, dry_run));
}

db_result<std::vector<destination_status>> event_db::destinations()
{
    return named(display_name(), detail::outbox::destinations(runner()));
}

db_result<bool> event_db::set_destination_paused(std::string_view name, bool paused, std::string_view reason,
                                                 std::int64_t now_us)
{
    return named(display_name(), detail::outbox::set_paused(runner(), name, paused, reason, now_us));
}

db_result<std::vector<feed_position>> event_db::feed(std::int64_t after, std::size_t limit)
{
    return named(display_name(), detail::outbox::feed(runner(), after, limit));
}

db_result<std::int64_t> event_db::feed_end()
{
    return named(display_name(), detail::outbox::feed_end(runner()));
}

db_result<std::vector<watermark>> event_db::watermarks()
{
    return named(display_name(), detail::catch_up::watermarks(runner()));
}

db_result<std::vector<catch_up_run>> event_db::catch_up_runs(std::optional<std::string> type, std::size_t limit)
{
    return named(display_name(), detail::catch_up::runs(runner(), type, limit));
}

db_result<std::vector<heartbeat>> event_db::heartbeats()
{
    return named(display_name(), detail::catch_up::heartbeats(runner()));
}

} // namespace cwhook::store
