// What every event_db shares, whatever its backend: opening by settings, and the paged scan
// built on each backend's page().
#include "store/event_db.hpp"

#include "store/detail/backends.hpp"

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

} // namespace cwhook::store
