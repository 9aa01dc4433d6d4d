// Catch-up's SQL for both backends (see detail/catch_up.hpp). Values are always bound; the
// only text built here is a list of "?N" placeholders.
#include "store/detail/catch_up.hpp"

#include "store/detail/query.hpp"
#include "store/event_fields.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>

namespace cwhook::store::detail::catch_up {

namespace {

constexpr std::int64_t i64(std::size_t n) noexcept
{
    return static_cast<std::int64_t>(std::min<std::size_t>(n, static_cast<std::size_t>(INT64_MAX)));
}

// The record's fields as bound values, in column order (store/event_fields.hpp).
std::vector<sql_value> record_values(const event_record& r)
{
    std::vector<sql_value> out;
    for_each_field(r, [&out](const field_info& f, const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::int64_t>) {
            out.emplace_back(v);
        } else if constexpr (std::is_same_v<T, std::optional<std::int64_t>>) {
            if (v) {
                out.emplace_back(*v);
            } else {
                out.emplace_back(sql_null_integer{});
            }
        } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
            if (v) {
                out.emplace_back(*v);
            } else {
                out.emplace_back(std::monostate{});
            }
        } else if constexpr (std::is_same_v<T, event_status> || std::is_same_v<T, event_source>) {
            out.emplace_back(std::string(to_string(v)));
        } else {
            static_assert(std::is_same_v<T, std::string>);
            if (f.use == field_use::blob) {
                out.emplace_back(sql_blob{v});
            } else {
                out.emplace_back(v);
            }
        }
    });
    return out;
}

// A synthesized row is what a callback row would be had Manage sent the record: the
// request facts are empty, the payload fields come from the engine.
event_record synthesized_record(const synthesized_event& e, std::int64_t now_us)
{
    event_record r;
    r.received_at_us = now_us;
    r.status = event_status::synthesized;
    r.verify_reason = "catch_up";
    r.dedupe_key = dedupe_key(e);
    r.body_sha256 = e.body_sha256;
    r.body = e.body;
    r.method = "GET";
    r.content_type = "application/json";
    r.type = e.type;
    r.action = e.action;
    r.entity_id = e.entity_id;
    r.company_id = e.company;
    r.source = event_source::catch_up;
    r.entity_updated_at_us = e.last_updated_us;
    return r;
}

const std::string& insert_sql()
{
    // last_delivery_at_us is the first receipt: the row's own received_at_us (?1).
    static const std::string sql = fmt::format(
        "INSERT INTO events ({}, last_delivery_at_us) VALUES ({}, ?1) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        record_columns(), placeholders(dialect::sqlite, 1, record_field_count()));
    return sql;
}

// A failed row is a forgery's (or an unverifiable) claim: it says nothing about the record.
constexpr std::string_view newer_row_sql = R"sql(
SELECT 1 FROM events WHERE type = ?1 AND entity_id = ?2 AND id > ?3 AND status <> 'failed' LIMIT 1)sql";

constexpr std::string_view advance_sql = R"sql(
INSERT INTO catch_up_watermarks (company, type, last_updated_us, updated_at_us) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (company, type) DO UPDATE SET
    last_updated_us = CASE WHEN excluded.last_updated_us > catch_up_watermarks.last_updated_us
                           THEN excluded.last_updated_us ELSE catch_up_watermarks.last_updated_us END,
    updated_at_us = excluded.updated_at_us
)sql";

constexpr std::string_view run_columns =
    "id, company, type, trigger, started_at_us, finished_at_us, examined, synthesized, seen, deleted, "
    "watermark_before_us, watermark_after_us, error, dry_run";

} // namespace

std::string dedupe_key(const synthesized_event& e)
{
    return fmt::format("s:{}:{}:{}:{}", e.company, e.type, e.entity_id, e.last_updated_us);
}

outcome<std::vector<synthesis_outcome>> synthesize(sql_runner& db, std::span<const synthesized_event> events,
                                                   const std::optional<watermark>& advance, std::int64_t now_us,
                                                   std::vector<std::int64_t>& forwardable)
{
    std::vector<synthesis_outcome> out;
    out.reserve(events.size());
    for (const synthesized_event& e : events) {
        const event_record r = synthesized_record(e, now_us);
        auto exists = db.run("SELECT 1 FROM events WHERE dedupe_key = ?1", std::array<sql_value, 1>{r.dedupe_key});
        if (!exists) {
            return exists.error();
        }
        if (!exists->rows.empty()) {
            out.push_back(synthesis_outcome::already);
            continue;
        }
        auto newer = db.run(newer_row_sql, std::array<sql_value, 3>{e.type, e.entity_id, e.newest_seen_id});
        if (!newer) {
            return newer.error();
        }
        if (!newer->rows.empty()) {
            out.push_back(synthesis_outcome::seen);
            continue;
        }
        const auto values = record_values(r);
        auto inserted = db.run(insert_sql(), values);
        if (!inserted) {
            return inserted.error();
        }
        if (inserted->rows.empty()) {
            // Another instance stored the same key since the look above (PostgreSQL).
            out.push_back(synthesis_outcome::already);
            continue;
        }
        forwardable.push_back(inserted->int64(0, 0));
        out.push_back(synthesis_outcome::synthesized);
    }
    if (advance) {
        const std::array<sql_value, 4> p{advance->company, advance->type, advance->last_updated_us,
                                         advance->updated_at_us != 0 ? advance->updated_at_us : now_us};
        if (auto r = db.run(advance_sql, p); !r) {
            return r.error();
        }
    }
    return out;
}

outcome<std::optional<synthesized_twin>> newest_synthesized(sql_runner& db, std::string_view type,
                                                            std::int64_t entity_id)
{
    auto r = db.run(newest_synthesized_sql, std::array<sql_value, 2>{std::string(type), entity_id});
    if (!r) {
        return r.error();
    }
    if (r->rows.empty()) {
        return std::optional<synthesized_twin>();
    }
    return std::optional<synthesized_twin>(synthesized_twin{r->int64(0, 0), r->int64(0, 1)});
}

outcome<bool> link_settled_twin(sql_runner& db, std::int64_t id,
                                const event_store::entity_updated_reader& entity_updated)
{
    if (!entity_updated) {
        return false;
    }
    // The body is read only when a synthesized event of the row's (type, entity id) exists.
    auto row = db.run(R"sql(
SELECT type, entity_id FROM events
WHERE id = ?1 AND source = 'callback' AND entity_id IS NOT NULL AND twin_of IS NULL)sql",
                      std::array<sql_value, 1>{id});
    if (!row) {
        return row.error();
    }
    if (row->rows.empty()) {
        return false;
    }
    auto twin = newest_synthesized(db, row->text(0, 0), row->int64(0, 1));
    if (!twin) {
        return twin.error();
    }
    if (!*twin) {
        return false;
    }
    auto body = db.run("SELECT body FROM events WHERE id = ?1", std::array<sql_value, 1>{id});
    if (!body) {
        return body.error();
    }
    const auto updated = body->rows.empty() ? std::nullopt : entity_updated(body->text(0, 0));
    if (!updated || *updated > (*twin)->entity_updated_at_us) {
        return false;
    }
    auto linked = db.run("UPDATE events SET twin_of = ?2, entity_updated_at_us = ?3 WHERE id = ?1",
                         std::array<sql_value, 3>{id, (*twin)->id, *updated});
    if (!linked) {
        return linked.error();
    }
    return true;
}

outcome<std::vector<newest_event>> newest_events(sql_runner& db, std::string_view type,
                                                 std::span<const std::int64_t> entity_ids)
{
    std::vector<newest_event> out;
    for (const std::int64_t id : entity_ids) {
        auto r = db.run(R"sql(
SELECT id, entity_id, status, entity_updated_at_us, received_at_us, body FROM events
WHERE type = ?1 AND entity_id = ?2 AND status <> 'failed'
ORDER BY id DESC
LIMIT 1)sql",
                        std::array<sql_value, 2>{std::string(type), id});
        if (!r) {
            return r.error();
        }
        if (r->rows.empty()) {
            continue;
        }
        newest_event& n = out.emplace_back();
        n.id = r->int64(0, 0);
        n.entity_id = r->int64(0, 1);
        n.synthesized = r->text(0, 2) == "synthesized";
        n.entity_updated_at_us = r->int64_or_null(0, 3);
        n.received_at_us = r->int64(0, 4);
        n.body = r->text(0, 5);
    }
    return out;
}

outcome<std::vector<std::int64_t>> known_entities(sql_runner& db, std::string_view type)
{
    auto r = db.run(R"sql(
SELECT entity_id FROM events
WHERE id IN (SELECT max(id) FROM events
             WHERE type = ?1 AND entity_id IS NOT NULL AND status <> 'failed'
             GROUP BY entity_id)
  AND lower(action) <> 'deleted'
ORDER BY entity_id)sql",
                    std::array<sql_value, 1>{std::string(type)});
    if (!r) {
        return r.error();
    }
    std::vector<std::int64_t> out;
    out.reserve(r->rows.size());
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        out.push_back(r->int64(i, 0));
    }
    return out;
}

outcome<std::vector<watermark>> watermarks(sql_runner& db)
{
    auto r = db.run(
        "SELECT company, type, last_updated_us, updated_at_us FROM catch_up_watermarks ORDER BY company, type", {});
    if (!r) {
        return r.error();
    }
    std::vector<watermark> out;
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        out.push_back(watermark{r->text(i, 0), r->text(i, 1), r->int64(i, 2), r->int64(i, 3)});
    }
    return out;
}

outcome<bool> claim(sql_runner& db, std::string_view company, std::string_view type, std::string_view holder,
                    std::int64_t now_us, std::int64_t lease_until_us)
{
    const std::array<sql_value, 2> key{std::string(company), std::string(type)};
    if (auto r = db.run("INSERT INTO catch_up_watermarks (company, type) VALUES (?1, ?2) "
                        "ON CONFLICT (company, type) DO NOTHING",
                        key);
        !r) {
        return r.error();
    }
    // PostgreSQL: a second claimer waits for the first one's row lock, then re-reads the row
    // and finds the lease taken.
    const std::array<sql_value, 5> p{std::string(company), std::string(type), std::string(holder), now_us,
                                     lease_until_us};
    auto r = db.run(R"sql(
UPDATE catch_up_watermarks SET lease_holder = ?3, lease_until_us = ?5
WHERE company = ?1 AND type = ?2 AND (lease_holder = '' OR lease_holder = ?3 OR lease_until_us <= ?4)
)sql",
                    p);
    if (!r) {
        return r.error();
    }
    return r->affected > 0;
}

outcome<void> release(sql_runner& db, std::string_view company, std::string_view type, std::string_view holder)
{
    const std::array<sql_value, 3> p{std::string(company), std::string(type), std::string(holder)};
    auto r = db.run("UPDATE catch_up_watermarks SET lease_holder = '', lease_until_us = 0 "
                    "WHERE company = ?1 AND type = ?2 AND lease_holder = ?3",
                    p);
    if (!r) {
        return r.error();
    }
    return {};
}

outcome<std::int64_t> record_run(sql_runner& db, const catch_up_run& run)
{
    const std::array<sql_value, 14> p{run.id,
                                      run.company,
                                      run.type,
                                      run.trigger,
                                      run.started_at_us,
                                      run.finished_at_us,
                                      run.examined,
                                      run.synthesized,
                                      run.seen,
                                      run.deleted,
                                      run.watermark_before_us,
                                      run.watermark_after_us,
                                      run.error,
                                      std::int64_t{run.dry_run ? 1 : 0}};
    if (run.id == 0) {
        // ?1 is bound (0) but unused: one parameter list for both statements.
        auto r = db.run(R"sql(
INSERT INTO catch_up_runs (company, type, trigger, started_at_us, finished_at_us, examined, synthesized, seen,
    deleted, watermark_before_us, watermark_after_us, error, dry_run)
SELECT ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 WHERE ?1 = 0
RETURNING id)sql",
                        p);
        if (!r) {
            return r.error();
        }
        return r->int64(0, 0);
    }
    auto r = db.run(R"sql(
UPDATE catch_up_runs SET company = ?2, type = ?3, trigger = ?4, started_at_us = ?5, finished_at_us = ?6,
    examined = ?7, synthesized = ?8, seen = ?9, deleted = ?10, watermark_before_us = ?11,
    watermark_after_us = ?12, error = ?13, dry_run = ?14
WHERE id = ?1)sql",
                    p);
    if (!r) {
        return r.error();
    }
    return run.id;
}

outcome<std::vector<catch_up_run>> runs(sql_runner& db, const std::optional<std::string>& type, std::size_t limit)
{
    std::vector<sql_value> p;
    std::string sql = fmt::format("SELECT {} FROM catch_up_runs", run_columns);
    if (type) {
        p.emplace_back(*type);
        sql += " WHERE type = ?1";
    }
    sql += " ORDER BY started_at_us DESC, id DESC";
    if (limit != 0) {
        p.emplace_back(i64(limit));
        sql += fmt::format(" LIMIT ?{}", p.size());
    }
    auto r = db.run(sql, p);
    if (!r) {
        return r.error();
    }
    std::vector<catch_up_run> out;
    out.reserve(r->rows.size());
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        catch_up_run& c = out.emplace_back();
        c.id = r->int64(i, 0);
        c.company = r->text(i, 1);
        c.type = r->text(i, 2);
        c.trigger = r->text(i, 3);
        c.started_at_us = r->int64(i, 4);
        c.finished_at_us = r->int64(i, 5);
        c.examined = r->int64(i, 6);
        c.synthesized = r->int64(i, 7);
        c.seen = r->int64(i, 8);
        c.deleted = r->int64(i, 9);
        c.watermark_before_us = r->int64(i, 10);
        c.watermark_after_us = r->int64(i, 11);
        c.error = r->text(i, 12);
        c.dry_run = r->int64(i, 13) != 0;
    }
    return out;
}

outcome<void> beat(sql_runner& db, std::string_view instance, std::int64_t now_us, bool clean_stop)
{
    const std::array<sql_value, 3> p{std::string(instance), now_us, clean_stop ? now_us : std::int64_t{0}};
    auto r = db.run(R"sql(
INSERT INTO heartbeats (instance, beat_at_us, clean_stop_at_us) VALUES (?1, ?2, ?3)
ON CONFLICT (instance) DO UPDATE SET beat_at_us = excluded.beat_at_us, clean_stop_at_us = excluded.clean_stop_at_us
)sql",
                    p);
    if (!r) {
        return r.error();
    }
    return {};
}

outcome<std::vector<heartbeat>> heartbeats(sql_runner& db)
{
    auto r = db.run("SELECT instance, beat_at_us, clean_stop_at_us FROM heartbeats ORDER BY instance", {});
    if (!r) {
        return r.error();
    }
    std::vector<heartbeat> out;
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        out.push_back(heartbeat{r->text(i, 0), r->int64(i, 1), r->int64(i, 2)});
    }
    return out;
}

} // namespace cwhook::store::detail::catch_up
