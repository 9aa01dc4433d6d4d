#include "store/detail/query.hpp"

#include "core/time.hpp"
#include "store/event_fields.hpp"

#include <fmt/format.h>
#include <tuple>

namespace cwhook::store::detail {

std::string placeholder(dialect d, int n)
{
    return fmt::format("{}{}", d == dialect::sqlite ? '?' : '$', n);
}

std::string record_columns()
{
    std::string out;
    const event_record r;
    for_each_field(r, [&out](const field_info& f, const auto&) {
        if (!out.empty()) {
            out += ", ";
        }
        out += f.name;
    });
    return out;
}

std::string record_assignments(dialect d, int first)
{
    std::string out;
    const event_record r;
    for_each_field(r, [&](const field_info& f, const auto&) {
        if (f.use == field_use::identity) {
            return;
        }
        if (!out.empty()) {
            out += ", ";
        }
        out += fmt::format("{} = {}", f.name, placeholder(d, first++));
    });
    return out;
}

std::string placeholders(dialect d, int first, int count)
{
    std::string out;
    for (int i = 0; i < count; ++i) {
        out += fmt::format("{}{}", i == 0 ? "" : ", ", placeholder(d, first + i));
    }
    return out;
}

int record_field_count()
{
    int n = 0;
    const event_record r;
    for_each_field(r, [&n](const field_info&, const auto&) { ++n; });
    return n;
}

const std::string& full_columns()
{
    static const std::string columns = "id, deliveries, last_delivery_at_us, verify_attempts, " + record_columns();
    return columns;
}

std::string columns_for(std::string_view columns, std::int64_t version)
{
    if (version >= 4) {
        return std::string(columns);
    }
    // v4's events columns (catch-up).
    static constexpr std::pair<std::string_view, std::string_view> added[] = {
        {"source", "'callback' AS source"},
        {"twin_of", "CAST(NULL AS BIGINT) AS twin_of"},
        {"entity_updated_at_us", "CAST(NULL AS BIGINT) AS entity_updated_at_us"},
    };
    std::string out;
    while (!columns.empty()) {
        const auto comma = columns.find(", ");
        const auto name = columns.substr(0, comma);
        columns.remove_prefix(comma == std::string_view::npos ? columns.size() : comma + 2);
        std::string_view column = name;
        for (const auto& [n, old] : added) {
            if (name == n) {
                column = old;
            }
        }
        out += out.empty() ? "" : ", ";
        out += column;
    }
    return out;
}

void where_clause::add(std::string_view term, std::initializer_list<param> values)
{
    sql += sql.empty() ? " WHERE " : " AND ";
    auto value = values.begin();
    for (const char c : term) {
        if (c == '?' && value != values.end()) {
            params.push_back(*value++);
            sql += placeholder(d, static_cast<int>(params.size()));
        } else {
            sql += c;
        }
    }
}

where_clause event_where(const event_filter& f, scan_order order, dialect d, bool with_cursor)
{
    where_clause w{d};
    if (f.type) {
        w.add("type = ?", {*f.type});
    }
    if (f.action) {
        w.add("action = ?", {*f.action});
    }
    if (f.entity_id) {
        w.add("entity_id = ?", {*f.entity_id});
    }
    if (f.company_id) {
        w.add("company_id = ?", {*f.company_id});
    }
    if (f.status) {
        w.add("status = ?", {std::string(to_string(*f.status))});
    }
    if (f.source) {
        w.add("source = ?", {std::string(to_string(*f.source))});
    }
    if (f.callback_id) {
        w.add("callback_id = ?", {*f.callback_id});
    }
    if (f.since_us) {
        w.add("received_at_us >= ?", {*f.since_us});
    }
    if (f.until_us) {
        w.add("received_at_us < ?", {*f.until_us});
    }
    if (with_cursor && f.after) {
        // A row value: one index range on (..., received_at_us, id) in both databases.
        w.add(order == scan_order::newest_first ? "(received_at_us, id) < (?, ?)" : "(received_at_us, id) > (?, ?)",
              {f.after->received_at_us, f.after->id});
    }
    return w;
}

std::string_view order_by(scan_order order)
{
    return order == scan_order::newest_first ? " ORDER BY received_at_us DESC, id DESC"
                                             : " ORDER BY received_at_us, id";
}

where_clause rejection_where(const rejection_filter& f, dialect d)
{
    where_clause w{d};
    if (f.reason) {
        w.add("reason = ?", {*f.reason});
    }
    if (f.since_us) {
        w.add("received_at_us >= ?", {*f.since_us});
    }
    if (f.until_us) {
        w.add("received_at_us < ?", {*f.until_us});
    }
    if (f.before_id) {
        w.add("id < ?", {*f.before_id});
    }
    return w;
}

where_clause prune_where(std::int64_t cutoff_us, std::optional<event_status> status, dialect d)
{
    where_clause w{d};
    w.add("received_at_us < ?", {cutoff_us});
    if (status) {
        w.add("status = ?", {std::string(to_string(*status))});
    } else {
        w.add("status <> 'pending'", {});
    }
    // An event still owed to a destination stays until it is delivered, dead or cancelled.
    w.add("NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state IN ('pending', 'failing'))",
          {});
    return w;
}

stats_statements stats_sql(std::optional<std::int64_t> since_us, dialect d)
{
    stats_statements out{where_clause(d), {}, {}};
    if (since_us) {
        out.since.add("received_at_us >= ?", {*since_us});
    }
    for (auto [column, member] :
         {std::pair{"type", &event_stats::by_type}, std::pair{"action", &event_stats::by_action},
          std::pair{"status", &event_stats::by_status}}) {
        out.by_key.emplace_back(
            fmt::format("SELECT {0}, count(*) FROM events{1} GROUP BY {0} ORDER BY 2 DESC, 1", column, out.since.sql),
            member);
    }
    out.by_day =
        fmt::format("SELECT received_at_us / 86400000000, count(*) FROM events{} GROUP BY 1 ORDER BY 1", out.since.sql);
    return out;
}

window_statements window_sql(std::int64_t start_us, std::int64_t end_us, std::int64_t bucket_us, dialect d)
{
    window_statements out{where_clause(d), {}};
    out.range.add("received_at_us >= ?", {start_us});
    out.range.add("received_at_us < ?", {end_us});
    // Two numbers of ours (never request text) written into the statement: the range's
    // placeholders are numbered by where_clause.
    const auto bucket = fmt::format("(received_at_us - {}) / {}", start_us, bucket_us);
    for (auto [table, column, member] : {std::tuple{"events", "type", &window_counts::by_type},
                                         std::tuple{"events", "status", &window_counts::by_status},
                                         std::tuple{"rejections", "reason", &window_counts::by_reason}}) {
        out.queries.emplace_back(fmt::format("SELECT {0}, COALESCE({1}, ''), count(*) FROM {2}{3} GROUP BY 1, 2",
                                             bucket, column, table, out.range.sql),
                                 member);
    }
    return out;
}

std::string day_of(std::int64_t day_number)
{
    constexpr std::int64_t us_per_day = 86'400'000'000;
    return format_time(day_number * us_per_day, time_precision::seconds).substr(0, 10);
}

} // namespace cwhook::store::detail
