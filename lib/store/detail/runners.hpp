// The sql_runner of each backend, over that backend's connection. Internal to lib/store;
// included only by the backend's own files (sqlite_*.cpp, postgres_*.cpp).
#pragma once

#include "store/detail/sql_runner.hpp"

#include <functional>
#include <map>
#include <string>

namespace cwhook::store::sqlite {
class database;
class statement;
} // namespace cwhook::store::sqlite

namespace cwhook::store::pg {
class rows;
class params;
} // namespace cwhook::store::pg

namespace cwhook::store::detail {

// Statements are prepared once per distinct text and kept for the connection's life.
class sqlite_runner final : public sql_runner {
public:
    explicit sqlite_runner(sqlite::database& db);
    ~sqlite_runner() override;
    outcome<sql_rows> run(std::string_view sql, std::span<const sql_value> params) override;
    dialect spelling() const noexcept override { return dialect::sqlite; }
    void clear(); // finalizes the cached statements (before the connection closes)

private:
    sqlite::database& db_;
    std::map<std::string, sqlite::statement, std::less<>> cache_;
};

class postgres_runner final : public sql_runner {
public:
    // How a statement runs on the connection (the caller's reconnect and error mapping).
    using query_fn = std::function<outcome<pg::rows>(const std::string& sql, const pg::params& p)>;
    explicit postgres_runner(query_fn query) : query_(std::move(query)) {}
    outcome<sql_rows> run(std::string_view sql, std::span<const sql_value> params) override;
    dialect spelling() const noexcept override { return dialect::postgres; }

private:
    query_fn query_;
    std::map<std::string, std::string, std::less<>> respelled_;
};

} // namespace cwhook::store::detail
