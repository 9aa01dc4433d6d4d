#include "db_command.hpp"

#include "config/config.hpp"

#include <unistd.h>

namespace cwhook::daemon {

void add_db_options(CLI::App& cmd, common_options& common, db_options& o)
{
    add_config_option(cmd, common);
    cmd.add_option("--db", o.db,
                   "SQLite file, or a postgresql:// URL (default: the configuration's storage; a password is "
                   "best given by PGPASSWORD or ~/.pgpass, not here)")
        ->type_name("FILE|URL");
}

std::optional<store::settings> storage_settings(const common_options& common, const db_options& o)
{
    store::settings storage;
    if (o.db) {
        const std::string_view db = *o.db;
        if (db.starts_with("postgresql://") || db.starts_with("postgres://")) {
            storage.backend = store::backend::postgres;
            storage.url = *o.db;
        } else {
            storage.path = *o.db;
        }
    } else {
        auto cfg = config::load(config_path(common), config::process_env());
        if (!cfg) {
            std::fprintf(stderr, "cwhook: %s\n", cfg.error().c_str());
            return std::nullopt;
        }
        storage = cfg->app.storage;
    }
    return storage;
}

std::unique_ptr<store::event_db> open_db(const common_options& common, const db_options& o, store::db_access access,
                                         bool may_create)
{
    auto found = storage_settings(common, o);
    if (!found) {
        return nullptr;
    }
    const store::settings storage = std::move(*found);
    const std::string& path = storage.path;
    const bool creates = access == store::db_access::read_write && may_create;
    if (storage.backend == store::backend::sqlite && !creates && path != ":memory:" &&
        ::access(path.c_str(), F_OK) != 0) {
        std::fprintf(stderr, "cwhook: %s: no such database\n", path.c_str());
        return nullptr;
    }
    auto db = store::event_db::open(storage, access);
    if (!db) {
        std::fprintf(stderr, "cwhook: %s\n", db.error().c_str());
        return nullptr;
    }
    return std::move(*db);
}

void out(std::string_view text)
{
    std::fwrite(text.data(), 1, text.size(), stdout);
}

int flush_stdout()
{
    if (std::fflush(stdout) != 0) {
        std::fprintf(stderr, "cwhook: cannot write to standard output\n");
        return 1;
    }
    return 0;
}

std::optional<std::vector<std::int64_t>> parse_ids(const std::vector<std::string>& texts)
{
    std::vector<std::int64_t> ids;
    for (const auto& text : texts) {
        const auto id = parse_id(text);
        if (!id) {
            std::fprintf(stderr, "cwhook: ID: \"%s\": expected a positive integer\n", text.c_str());
            return std::nullopt;
        }
        ids.push_back(*id);
    }
    return ids;
}

int run_parsed(const std::vector<leaf>& leaves)
{
    for (const auto& l : leaves) {
        if (l.cli->parsed()) {
            return l.run();
        }
    }
    return usage_error;
}

} // namespace cwhook::daemon
