// One statement at a time on either backend, with values bound and rows copied out: what the
// outbox's SQL (outbox.cpp), written once for both backends, runs on. Not for the ingest hot
// path (rows are copied); the outbox's statements touch a few rows each. Internal to lib/store.
// Not thread-safe: a runner belongs to the connection's thread.
#pragma once

#include "store/detail/query.hpp"
#include "store/detail/writer.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cwhook::store::detail {

// Bytes bound as a BLOB (SQLite) or BYTEA (PostgreSQL).
struct sql_blob {
    std::string bytes;
};

// A NULL bound where PostgreSQL expects an integer (a plain NULL is sent as text, which an
// INSERT into a BIGINT column refuses).
struct sql_null_integer {};

// A bound value: NULL, an integer, text or bytes. Blobs are read as text (bytes kept).
using sql_value = std::variant<std::monostate, std::int64_t, std::string, sql_blob, sql_null_integer>;

struct sql_rows {
    std::vector<std::vector<sql_value>> rows;
    std::int64_t affected = 0; // rows an INSERT/UPDATE/DELETE changed

    std::int64_t int64(std::size_t row, std::size_t col) const;
    std::optional<std::int64_t> int64_or_null(std::size_t row, std::size_t col) const;
    std::string text(std::size_t row, std::size_t col) const;
    std::optional<std::string> text_or_null(std::size_t row, std::size_t col) const;
};

class sql_runner {
public:
    virtual ~sql_runner() = default;
    // `sql` is written with SQLite's "?N" placeholders; the PostgreSQL runner respells them
    // "$N" (once per distinct text). Values of type int64 or text; a statement's text is
    // cached (prepared once) by the runner.
    virtual outcome<sql_rows> run(std::string_view sql, std::span<const sql_value> params) = 0;
    virtual dialect spelling() const noexcept = 0;
};

// "?1 ... ?12" -> "$1 ... $12" (outside string literals).
std::string respell_for_postgres(std::string_view sql);

} // namespace cwhook::store::detail
