// The PostgreSQL sql_runner: "?N" respelled "$N" once per text, values sent in binary (int8,
// text), rows read by column type (integers as integers, everything else as its bytes).
#include "store/detail/runners.hpp"
#include "store/postgres.hpp"

#include <libpq-fe.h>

namespace cwhook::store::detail {

namespace {

constexpr Oid int2_oid = 21;
constexpr Oid int4_oid = 23;
constexpr Oid int8_oid = 20;

} // namespace

outcome<sql_rows> postgres_runner::run(std::string_view sql, std::span<const sql_value> params)
{
    auto it = respelled_.find(sql);
    if (it == respelled_.end()) {
        it = respelled_.emplace(std::string(sql), respell_for_postgres(sql)).first;
    }
    pg::params p;
    p.reserve(params.size());
    for (const sql_value& v : params) {
        if (const auto* i = std::get_if<std::int64_t>(&v)) {
            p.add(*i);
        } else if (const auto* t = std::get_if<std::string>(&v)) {
            p.add_text(std::string_view(*t));
        } else if (const auto* b = std::get_if<sql_blob>(&v)) {
            p.add_bytea(b->bytes);
        } else if (std::holds_alternative<sql_null_integer>(v)) {
            p.add(std::optional<std::int64_t>());
        } else {
            p.add_null_text();
        }
    }
    auto r = query_(it->second, p);
    if (!r) {
        return r.error();
    }
    sql_rows out;
    out.affected = r->affected();
    const PGresult* res = r->get();
    const int columns = PQnfields(res);
    for (int row = 0; row < r->size(); ++row) {
        auto& cells = out.rows.emplace_back();
        cells.reserve(static_cast<std::size_t>(columns));
        for (int c = 0; c < columns; ++c) {
            if (r->is_null(row, c)) {
                cells.emplace_back(std::monostate{});
                continue;
            }
            const Oid type = PQftype(res, c);
            if (type == int2_oid || type == int4_oid || type == int8_oid) {
                cells.emplace_back(r->int64(row, c));
            } else {
                cells.emplace_back(r->text(row, c));
            }
        }
    }
    return out;
}

} // namespace cwhook::store::detail
