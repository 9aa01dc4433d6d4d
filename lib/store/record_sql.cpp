#include "store/detail/record_sql.hpp"

#include "store/event_fields.hpp"

#include <optional>
#include <type_traits>

namespace cwhook::store::detail {
namespace {

struct binder {
    sqlite::statement& s;
    int index;
    bool skip_identity;

    template <class T>
    void operator()(const field_info& f, const T& v)
    {
        if (skip_identity && f.use == field_use::identity) {
            return;
        }
        const int i = index++;
        if constexpr (std::is_same_v<T, std::int64_t>) {
            s.bind_int64(i, v);
        } else if constexpr (std::is_same_v<T, std::optional<std::int64_t>>) {
            s.bind_int64_or_null(i, v);
        } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
            s.bind_text_or_null(i, v);
        } else if constexpr (std::is_same_v<T, event_status> || std::is_same_v<T, event_source>) {
            s.bind_text(i, to_string(v));
        } else {
            static_assert(std::is_same_v<T, std::string>);
            if (f.use == field_use::blob) {
                s.bind_blob(i, v);
            } else {
                s.bind_text(i, v);
            }
        }
    }
};

struct reader {
    const sqlite::statement& s;
    int column;

    template <class T>
    void operator()(const field_info& f, T& v)
    {
        const int c = column++;
        if constexpr (std::is_same_v<T, std::int64_t>) {
            v = s.column_int64(c);
        } else if constexpr (std::is_same_v<T, std::optional<std::int64_t>>) {
            v = s.column_is_null(c) ? std::nullopt : std::optional<std::int64_t>(s.column_int64(c));
        } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
            v = s.column_is_null(c) ? std::nullopt : std::optional<std::string>(s.column_text(c));
        } else if constexpr (std::is_same_v<T, event_status>) {
            v = parse_event_status(s.column_text(c)).value_or(event_status::unverified);
        } else if constexpr (std::is_same_v<T, event_source>) {
            v = parse_event_source(s.column_text(c)).value_or(event_source::callback);
        } else {
            static_assert(std::is_same_v<T, std::string>);
            v = f.use == field_use::blob ? s.column_blob(c) : s.column_text(c);
        }
    }
};

} // namespace

int bind_record(sqlite::statement& s, const event_record& e, int first, bool skip_identity)
{
    binder b{s, first, skip_identity};
    for_each_field(e, b);
    return b.index;
}

int read_record(const sqlite::statement& s, event_record& e, int first)
{
    reader r{s, first};
    for_each_field(e, r);
    return r.column;
}

} // namespace cwhook::store::detail
