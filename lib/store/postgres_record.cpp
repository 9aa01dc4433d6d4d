#include "store/detail/postgres_record.hpp"

#include "store/event_fields.hpp"

#include <optional>
#include <type_traits>

namespace cwhook::store::detail {

const char* const update_status_sql = R"sql(
UPDATE events
SET status = $2, verify_reason = $3, next_verify_at_us = $4, verify_attempts = verify_attempts + 1
WHERE id = $1 AND status = $5
)sql";

void bind_status_update(pg::params& p, const status_update& u)
{
    p.add(u.id);
    p.add_text(to_string(u.status));
    p.add_text(std::string_view(u.verify_reason));
    p.add(u.next_verify_at_us);
    p.add_text(to_string(u.from));
}

void bind_record(pg::params& p, const event_record& e, bool skip_identity)
{
    for_each_field(e, [&](const field_info& f, const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if (skip_identity && f.use == field_use::identity) {
            return;
        }
        if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::optional<std::int64_t>>) {
            p.add(v);
        } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
            p.add_text(v);
        } else if constexpr (std::is_same_v<T, event_status> || std::is_same_v<T, event_source>) {
            p.add_text(to_string(v));
        } else {
            static_assert(std::is_same_v<T, std::string>);
            if (f.use == field_use::blob) {
                p.add_bytea(v);
            } else {
                p.add_text(std::string_view(v));
            }
        }
    });
}

int read_record(const pg::rows& r, int row, event_record& e, int first)
{
    int column = first;
    for_each_field(e, [&](const field_info&, auto& v) {
        using T = std::decay_t<decltype(v)>;
        const int c = column++;
        if constexpr (std::is_same_v<T, std::int64_t>) {
            v = r.int64(row, c);
        } else if constexpr (std::is_same_v<T, std::optional<std::int64_t>>) {
            v = r.int64_or_null(row, c);
        } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
            v = r.text_or_null(row, c);
        } else if constexpr (std::is_same_v<T, event_status>) {
            v = parse_event_status(r.bytes(row, c)).value_or(event_status::unverified);
        } else if constexpr (std::is_same_v<T, event_source>) {
            v = parse_event_source(r.bytes(row, c)).value_or(event_source::callback);
        } else {
            static_assert(std::is_same_v<T, std::string>);
            v = r.text(row, c);
        }
    });
    return column;
}

} // namespace cwhook::store::detail
