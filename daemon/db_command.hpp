// What the commands on the database share (`events`, `rejections`, `deliveries`,
// `destinations`): the --db option, opening the database, writing to stdout, and the shapes of
// their list and show subcommands. Errors go to stderr as one "cwhook: ..." line.
#pragma once

#include "commands.hpp"

#include "core/text.hpp"
#include "store/event_db.hpp"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cwhook::daemon {

inline constexpr int usage_error = 2;

struct db_options {
    std::optional<std::string> db; // --db, else the configuration's storage
};

// --config and --db.
void add_db_options(CLI::App& cmd, common_options& common, db_options& o);

// The storage settings --db names (a postgresql:// URL selects PostgreSQL), else the
// configuration's [storage]; nullopt when the configuration cannot be loaded (said on stderr).
std::optional<store::settings> storage_settings(const common_options& common, const db_options& o);

// The database --db names (a postgresql:// URL selects PostgreSQL), else the configuration's
// [storage]; nullptr when it cannot be opened (said on stderr). read_only never creates a
// SQLite file, nor does read_write without may_create (a command that changes rows the daemon
// made: a mistyped path is an error, not a new empty database).
std::unique_ptr<store::event_db> open_db(const common_options& common, const db_options& o, store::db_access access,
                                         bool may_create = true);

void out(std::string_view text);
// 0, or 1 when standard output could not be written (said on stderr).
int flush_stdout();

// The ids given on the command line; nullopt (said on stderr) when one is not an id.
std::optional<std::vector<std::int64_t>> parse_ids(const std::vector<std::string>& texts);

// rows as one JSON array (json), one object a line (jsonl) or the aligned table.
template <class Row, class ToJson, class ToTable>
void print_rows(const std::vector<Row>& rows, bool json, bool jsonl, ToJson to_json, ToTable to_table)
{
    if (!json && !jsonl) {
        out(to_table(rows));
        return;
    }
    std::string text = json ? "[" : "";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (json && i > 0) {
            text += ",";
        }
        text += to_json(rows[i]);
        if (jsonl) {
            text += '\n';
        }
    }
    if (json) {
        text += "]\n";
    }
    out(text);
}

// The list commands: run the query on the database (read-only) and print its rows.
template <class Query, class ToJson, class ToTable>
int list_rows(const common_options& common, const db_options& dbo, Query query, bool json, bool jsonl, ToJson to_json,
              ToTable to_table)
{
    auto db = open_db(common, dbo, store::db_access::read_only);
    if (!db) {
        return 1;
    }
    auto rows = query(*db);
    if (!rows) {
        std::fprintf(stderr, "cwhook: %s\n", rows.error().c_str());
        return 1;
    }
    print_rows(*rows, json, jsonl, to_json, to_table);
    return flush_stdout();
}

// The show commands: parse the id, load the row, say why when there is none, print it.
template <class Get, class Print>
int show_one(const common_options& common, const db_options& dbo, const std::string& id_text, const char* what, Get get,
             Print print)
{
    const auto id = parse_id(id_text);
    if (!id) {
        std::fprintf(stderr, "cwhook: ID: \"%s\": expected a positive integer\n", id_text.c_str());
        return usage_error;
    }
    auto db = open_db(common, dbo, store::db_access::read_only);
    if (!db) {
        return 1;
    }
    auto row = get(*db, *id);
    if (!row) {
        std::fprintf(stderr, "cwhook: %s\n", row.error().c_str());
        return 1;
    }
    if (!*row) {
        std::fprintf(stderr, "cwhook: no %s %lld\n", what, static_cast<long long>(*id));
        return 1;
    }
    return print(*db, **row);
}

// One subcommand of a group: its CLI and how to run it.
struct leaf {
    CLI::App* cli;
    std::function<int()> run;
};

// Runs the leaf that was parsed.
int run_parsed(const std::vector<leaf>& leaves);

} // namespace cwhook::daemon
