// The outbox's SQL for both backends (see detail/outbox.hpp), and the runner helpers. Values
// are always bound; the only text built here is a list of "?N" placeholders.
#include "store/detail/outbox.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <utility>

namespace cwhook::store {

std::string_view to_string(delivery_state s)
{
    switch (s) {
    case delivery_state::pending: return "pending";
    case delivery_state::failing: return "failing";
    case delivery_state::done: return "done";
    case delivery_state::dead: return "dead";
    case delivery_state::cancelled: return "cancelled";
    }
    return "pending";
}

std::optional<delivery_state> parse_delivery_state(std::string_view s)
{
    for (const auto st : {delivery_state::pending, delivery_state::failing, delivery_state::done, delivery_state::dead,
                          delivery_state::cancelled}) {
        if (to_string(st) == s) {
            return st;
        }
    }
    return std::nullopt;
}

} // namespace cwhook::store

namespace cwhook::store::detail {

std::int64_t sql_rows::int64(std::size_t row, std::size_t col) const
{
    const auto* v = std::get_if<std::int64_t>(&rows.at(row).at(col));
    return v != nullptr ? *v : 0;
}

std::optional<std::int64_t> sql_rows::int64_or_null(std::size_t row, std::size_t col) const
{
    const auto* v = std::get_if<std::int64_t>(&rows.at(row).at(col));
    return v != nullptr ? std::optional<std::int64_t>(*v) : std::nullopt;
}

std::string sql_rows::text(std::size_t row, std::size_t col) const
{
    const auto& v = rows.at(row).at(col);
    if (const auto* s = std::get_if<std::string>(&v)) {
        return *s;
    }
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        return std::to_string(*i);
    }
    return {};
}

std::optional<std::string> sql_rows::text_or_null(std::size_t row, std::size_t col) const
{
    if (std::holds_alternative<std::monostate>(rows.at(row).at(col))) {
        return std::nullopt;
    }
    return text(row, col);
}

std::string respell_for_postgres(std::string_view sql)
{
    std::string out;
    out.reserve(sql.size());
    bool quoted = false;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'') {
            quoted = !quoted;
        }
        if (!quoted && c == '?' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1])) != 0) {
            out.push_back('$');
            continue;
        }
        out.push_back(c);
    }
    return out;
}

} // namespace cwhook::store::detail

namespace cwhook::store::detail::outbox {

namespace {

constexpr std::int64_t i64(std::size_t n) noexcept
{
    return static_cast<std::int64_t>(std::min<std::size_t>(n, static_cast<std::size_t>(INT64_MAX)));
}

// ",a,b," or "" (all): what the destinations table's filter columns hold.
std::string filter_list(const std::vector<std::string>& values)
{
    if (values.empty()) {
        return {};
    }
    std::string out = ",";
    for (const auto& v : values) {
        out += v;
        out += ',';
    }
    return out;
}

// One delivery per configured destination that takes the event, due at once (next attempt 0,
// whatever clock the sender keeps): its filter lists hold
// ",<type>," (LIKE's wildcards in the value escaped). The ordering key is always
// filled; only destinations with ordering = "entity" use it.
constexpr std::string_view enqueue_sql = R"sql(
INSERT INTO deliveries (event_id, destination, state, ordering_key, created_at_us, next_attempt_at_us)
SELECT e.id, d.name, 'pending', e.type || ':' || coalesce(CAST(e.entity_id AS TEXT), ''), ?2, 0
FROM events e JOIN destinations d ON d.configured = 1
 AND (d.types = '' OR d.types LIKE '%,' || replace(replace(replace(lower(e.type), '\', '\\'), '%', '\%'), '_', '\_') || ',%' ESCAPE '\')
 AND (d.actions = '' OR d.actions LIKE '%,' || replace(replace(replace(lower(e.action), '\', '\\'), '%', '\%'), '_', '\_') || ',%' ESCAPE '\')
WHERE e.id = ?1
ON CONFLICT (event_id, destination) DO NOTHING
)sql";

constexpr std::string_view next_feed_sql = "UPDATE counters SET value = value + ?1 WHERE name = 'feed' RETURNING value";

constexpr std::string_view set_feed_sql = "UPDATE events SET feed_seq = ?2 WHERE id = ?1 AND feed_seq IS NULL";

constexpr std::string_view delivery_columns =
    "id, event_id, destination, state, created_at_us, next_attempt_at_us, attempts, tries, last_status, last_error, "
    "done_at_us";

delivery_row read_delivery(const sql_rows& r, std::size_t row)
{
    delivery_row d;
    d.id = r.int64(row, 0);
    d.event_id = r.int64(row, 1);
    d.destination = r.text(row, 2);
    d.state = parse_delivery_state(r.text(row, 3)).value_or(delivery_state::pending);
    d.created_at_us = r.int64(row, 4);
    d.next_attempt_at_us = r.int64(row, 5);
    d.attempts = r.int64(row, 6);
    d.tries = r.int64(row, 7);
    d.last_status = static_cast<int>(r.int64(row, 8));
    d.last_error = r.text(row, 9);
    d.done_at_us = r.int64(row, 10);
    return d;
}

outcome<void> add_history(sql_runner& db, std::vector<delivery_row>& rows)
{
    for (auto& d : rows) {
        const std::array<sql_value, 1> p{d.id};
        auto r = db.run("SELECT at_us, http_status, latency_us, error FROM delivery_attempts WHERE delivery_id = ?1 "
                        "ORDER BY at_us, id",
                        p);
        if (!r) {
            return r.error();
        }
        for (std::size_t i = 0; i < r->rows.size(); ++i) {
            delivery_attempt a;
            a.delivery_id = d.id;
            a.at_us = r->int64(i, 0);
            a.http_status = static_cast<int>(r->int64(i, 1));
            a.latency_us = r->int64(i, 2);
            a.error = r->text(i, 3);
            d.history.push_back(std::move(a));
        }
    }
    return {};
}

// The filter's terms, numbered from `first`, ANDed after " WHERE 1 = 1".
struct filter_sql {
    std::string where = " WHERE 1 = 1";
    std::vector<sql_value> params;

    void add(std::string_view column_op, sql_value v)
    {
        params.push_back(std::move(v));
        where += fmt::format(" AND {} ?{}", column_op, params.size());
    }
};

filter_sql delivery_where(const delivery_filter& f)
{
    filter_sql w;
    if (f.destination) {
        w.add("destination =", *f.destination);
    }
    if (f.state) {
        w.add("state =", std::string(to_string(*f.state)));
    }
    if (f.event_id) {
        w.add("event_id =", *f.event_id);
    }
    if (f.before_id) {
        w.add("id <", *f.before_id);
    }
    return w;
}

} // namespace

outcome<void> make_forwardable(sql_runner& db, std::span<const std::int64_t> event_ids, std::int64_t now_us)
{
    if (event_ids.empty()) {
        return {};
    }
    for (const std::int64_t id : event_ids) {
        const std::array<sql_value, 2> p{id, now_us};
        if (auto r = db.run(enqueue_sql, p); !r) {
            return r.error();
        }
    }
    const std::array<sql_value, 1> n{i64(event_ids.size())};
    auto counter = db.run(next_feed_sql, n);
    if (!counter) {
        return counter.error();
    }
    if (counter->rows.empty()) {
        return failure{errc::storage_error, "the feed counter is missing"};
    }
    std::int64_t seq = counter->int64(0, 0) - i64(event_ids.size());
    for (const std::int64_t id : event_ids) {
        const std::array<sql_value, 2> p{id, ++seq};
        if (auto r = db.run(set_feed_sql, p); !r) {
            return r.error();
        }
    }
    return {};
}

outcome<sync_outcome> sync_destinations(sql_runner& db, std::span<const destination_route> routes, std::int64_t now_us)
{
    // Not configured first; then each configured one (new, or filters changed) upserted.
    if (auto r = db.run("UPDATE destinations SET configured = 0", {}); !r) {
        return r.error();
    }
    for (const auto& route : routes) {
        const std::array<sql_value, 4> p{route.name, filter_list(route.types), filter_list(route.actions), now_us};
        auto r = db.run(R"sql(
INSERT INTO destinations (name, configured, types, actions, paused, pause_reason, changed_at_us)
VALUES (?1, 1, ?2, ?3, 0, '', ?4)
ON CONFLICT (name) DO UPDATE SET configured = 1, types = ?2, actions = ?3
)sql",
                        p);
        if (!r) {
            return r.error();
        }
    }
    sync_outcome out;
    auto c = db.run(R"sql(
UPDATE deliveries SET state = 'cancelled', done_at_us = ?1
WHERE state IN ('pending', 'failing')
  AND destination IN (SELECT name FROM destinations WHERE configured = 0)
)sql",
                    std::array<sql_value, 1>{now_us});
    if (!c) {
        return c.error();
    }
    out.cancelled = c->affected;
    return out;
}

outcome<std::vector<claimed_delivery>> claim(sql_runner& db, std::string_view destination, bool entity_ordering,
                                             std::int64_t now_us, std::size_t limit, std::int64_t lease_until_us)
{
    // The oldest undelivered row of its (type, entity) goes first: rows are created in the
    // order events became forwardable, so a lower id is an earlier event.
    const std::string_view ordered = entity_ordering ? R"sql(
  AND NOT EXISTS (SELECT 1 FROM deliveries o
                  WHERE o.destination = d.destination AND o.ordering_key = d.ordering_key
                    AND o.state IN ('pending', 'failing') AND o.id < d.id))sql"
                                                     : "";
    const bool pg = db.spelling() == dialect::postgres;
    const std::string due = fmt::format(R"sql(
SELECT d.id FROM deliveries d
WHERE d.destination = ?1 AND d.state IN ('pending', 'failing') AND d.next_attempt_at_us <= ?2
  AND NOT EXISTS (SELECT 1 FROM destinations s WHERE s.name = d.destination AND s.paused = 1){}
ORDER BY d.next_attempt_at_us, d.id
LIMIT ?3{})sql",
                                        ordered, pg ? " FOR UPDATE OF d SKIP LOCKED" : "");
    const std::string sql = fmt::format(R"sql(
WITH due AS ({}),
claimed AS (
  UPDATE deliveries SET next_attempt_at_us = ?4 WHERE id IN (SELECT id FROM due)
  RETURNING id, event_id, destination, attempts, tries, created_at_us)
SELECT c.id, c.event_id, c.destination, c.attempts, c.tries, c.created_at_us,
       e.received_at_us, e.status, e.dedupe_key, e.content_type, e.body, e.type, e.action, e.entity_id, e.company_id,
       e.source
FROM claimed c JOIN events e ON e.id = c.event_id
)sql",
                                        due);
    std::vector<claimed_delivery> out;
    const std::array<sql_value, 4> p{std::string(destination), now_us, i64(limit), lease_until_us};
    if (pg) {
        auto r = db.run(sql, p);
        if (!r) {
            return r.error();
        }
        for (std::size_t i = 0; i < r->rows.size(); ++i) {
            claimed_delivery& c = out.emplace_back();
            c.id = r->int64(i, 0);
            c.event_id = r->int64(i, 1);
            c.destination = r->text(i, 2);
            c.attempts = r->int64(i, 3);
            c.tries = r->int64(i, 4);
            c.created_at_us = r->int64(i, 5);
            c.received_at_us = r->int64(i, 6);
            c.status = parse_event_status(r->text(i, 7)).value_or(event_status::verified);
            c.dedupe_key = r->text(i, 8);
            c.content_type = r->text(i, 9);
            c.body = r->text(i, 10);
            c.type = r->text(i, 11);
            c.action = r->text(i, 12);
            c.entity_id = r->int64_or_null(i, 13);
            c.company_id = r->text_or_null(i, 14);
            c.source = parse_event_source(r->text(i, 15)).value_or(event_source::callback);
            c.lease_until_us = lease_until_us;
        }
    } else {
        // SQLite has no UPDATE in a WITH of a SELECT: read the due rows with their events
        // (inside the writer's IMMEDIATE transaction nobody else writes), then move them.
        const std::string read = fmt::format(R"sql(
SELECT d.id, d.event_id, d.destination, d.attempts, d.tries, d.created_at_us,
       e.received_at_us, e.status, e.dedupe_key, e.content_type, e.body, e.type, e.action, e.entity_id, e.company_id,
       e.source
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.id IN ({})
ORDER BY d.next_attempt_at_us, d.id)sql",
                                             due);
        const std::array<sql_value, 3> rp{std::string(destination), now_us, i64(limit)};
        auto r = db.run(read, rp);
        if (!r) {
            return r.error();
        }
        for (std::size_t i = 0; i < r->rows.size(); ++i) {
            claimed_delivery& c = out.emplace_back();
            c.id = r->int64(i, 0);
            c.event_id = r->int64(i, 1);
            c.destination = r->text(i, 2);
            c.attempts = r->int64(i, 3);
            c.tries = r->int64(i, 4);
            c.created_at_us = r->int64(i, 5);
            c.received_at_us = r->int64(i, 6);
            c.status = parse_event_status(r->text(i, 7)).value_or(event_status::verified);
            c.dedupe_key = r->text(i, 8);
            c.content_type = r->text(i, 9);
            c.body = r->text(i, 10);
            c.type = r->text(i, 11);
            c.action = r->text(i, 12);
            c.entity_id = r->int64_or_null(i, 13);
            c.company_id = r->text_or_null(i, 14);
            c.source = parse_event_source(r->text(i, 15)).value_or(event_source::callback);
            c.lease_until_us = lease_until_us;
            const std::array<sql_value, 2> u{c.id, lease_until_us};
            if (auto m = db.run("UPDATE deliveries SET next_attempt_at_us = ?2 WHERE id = ?1", u); !m) {
                return m.error();
            }
        }
    }
    return out;
}

outcome<void> apply_results(sql_runner& db, std::span<const delivery_result> results)
{
    for (const delivery_result& r : results) {
        const std::int64_t made = r.attempted ? 1 : 0;
        const bool finished = r.state == delivery_state::done || r.state == delivery_state::dead;
        const std::array<sql_value, 9> p{r.id,
                                         r.lease_until_us,
                                         std::string(to_string(r.state)),
                                         r.next_attempt_at_us,
                                         made,
                                         std::int64_t{r.http_status},
                                         r.error,
                                         finished ? r.at_us + r.latency_us : std::int64_t{0},
                                         r.attempted ? std::int64_t{1} : std::int64_t{0}};
        // An unattempted release keeps the row's last answer.
        auto u = db.run(R"sql(
UPDATE deliveries SET state = ?3, next_attempt_at_us = ?4, attempts = attempts + ?5, tries = tries + ?5,
    last_status = CASE WHEN ?9 = 1 THEN ?6 ELSE last_status END,
    last_error = CASE WHEN ?9 = 1 THEN ?7 ELSE last_error END,
    done_at_us = ?8
WHERE id = ?1 AND next_attempt_at_us = ?2 AND state IN ('pending', 'failing')
)sql",
                        p);
        if (!u) {
            return u.error();
        }
        if (!r.attempted) {
            continue;
        }
        const std::array<sql_value, 5> a{r.id, r.at_us, std::int64_t{r.http_status}, r.latency_us, r.error};
        auto h = db.run(R"sql(
INSERT INTO delivery_attempts (delivery_id, at_us, http_status, latency_us, error)
SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1)
)sql",
                        a);
        if (!h) {
            return h.error();
        }
    }
    return {};
}

outcome<std::vector<destination_status>> destinations(sql_runner& db)
{
    auto r = db.run(R"sql(
SELECT s.name, s.configured, s.paused, s.pause_reason, s.changed_at_us,
  (SELECT count(*) FROM deliveries d WHERE d.destination = s.name AND d.state = 'pending'),
  (SELECT count(*) FROM deliveries d WHERE d.destination = s.name AND d.state = 'failing'),
  (SELECT count(*) FROM deliveries d WHERE d.destination = s.name AND d.state = 'dead'),
  (SELECT count(*) FROM deliveries d WHERE d.destination = s.name AND d.state = 'done'),
  (SELECT count(*) FROM deliveries d WHERE d.destination = s.name AND d.state = 'cancelled'),
  (SELECT min(d.created_at_us) FROM deliveries d WHERE d.destination = s.name AND d.state IN ('pending', 'failing'))
FROM destinations s ORDER BY s.name
)sql",
                    {});
    if (!r) {
        return r.error();
    }
    std::vector<destination_status> out;
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        destination_status& s = out.emplace_back();
        s.name = r->text(i, 0);
        s.configured = r->int64(i, 1) != 0;
        s.paused = r->int64(i, 2) != 0;
        s.pause_reason = r->text(i, 3);
        s.changed_at_us = r->int64(i, 4);
        s.pending = r->int64(i, 5);
        s.failing = r->int64(i, 6);
        s.dead = r->int64(i, 7);
        s.done = r->int64(i, 8);
        s.cancelled = r->int64(i, 9);
        s.oldest_due_created_at_us = r->int64_or_null(i, 10);
    }
    return out;
}

outcome<bool> set_paused(sql_runner& db, std::string_view name, bool paused, std::string_view reason,
                         std::int64_t now_us)
{
    const std::array<sql_value, 4> p{std::string(name), std::int64_t{paused ? 1 : 0},
                                     std::string(paused ? reason : std::string_view{}), now_us};
    auto r = db.run("UPDATE destinations SET paused = ?2, pause_reason = ?3, changed_at_us = ?4 WHERE name = ?1", p);
    if (!r) {
        return r.error();
    }
    return r->affected > 0;
}

outcome<std::vector<delivery_row>> list(sql_runner& db, const delivery_filter& f)
{
    filter_sql w = delivery_where(f);
    std::string sql = fmt::format("SELECT {} FROM deliveries{} ORDER BY id DESC", delivery_columns, w.where);
    if (f.limit != 0) {
        w.params.emplace_back(i64(f.limit));
        sql += fmt::format(" LIMIT ?{}", w.params.size());
    }
    auto r = db.run(sql, w.params);
    if (!r) {
        return r.error();
    }
    std::vector<delivery_row> out;
    out.reserve(r->rows.size());
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        out.push_back(read_delivery(*r, i));
    }
    return out;
}

outcome<std::optional<delivery_row>> get(sql_runner& db, std::int64_t id)
{
    auto r =
        db.run(fmt::format("SELECT {} FROM deliveries WHERE id = ?1", delivery_columns), std::array<sql_value, 1>{id});
    if (!r) {
        return r.error();
    }
    if (r->rows.empty()) {
        return std::optional<delivery_row>();
    }
    std::vector<delivery_row> rows{read_delivery(*r, 0)};
    if (auto h = add_history(db, rows); !h) {
        return h.error();
    }
    return std::optional<delivery_row>(std::move(rows.front()));
}

outcome<std::vector<delivery_row>> of_event(sql_runner& db, std::int64_t event_id)
{
    auto r =
        db.run(fmt::format("SELECT {} FROM deliveries WHERE event_id = ?1 ORDER BY destination, id", delivery_columns),
               std::array<sql_value, 1>{event_id});
    if (!r) {
        return r.error();
    }
    std::vector<delivery_row> rows;
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        rows.push_back(read_delivery(*r, i));
    }
    if (auto h = add_history(db, rows); !h) {
        return h.error();
    }
    return rows;
}

outcome<std::int64_t> retry(sql_runner& db, std::span<const std::int64_t> ids, const delivery_filter& f, bool dry_run)
{
    filter_sql w;
    if (ids.empty()) {
        delivery_filter unlimited = f;
        unlimited.before_id.reset();
        w = delivery_where(unlimited);
    } else {
        std::string list;
        for (const std::int64_t id : ids) {
            w.params.emplace_back(id);
            list += fmt::format("{}?{}", list.empty() ? "" : ", ", w.params.size());
        }
        w.where += fmt::format(" AND id IN ({})", list);
    }
    w.where += " AND state <> 'pending'";
    if (dry_run) {
        auto r = db.run(fmt::format("SELECT count(*) FROM deliveries{}", w.where), w.params);
        if (!r) {
            return r.error();
        }
        return r->int64(0, 0);
    }
    // Due at once (0), whatever clock the sender keeps.
    auto r = db.run(fmt::format("UPDATE deliveries SET state = 'pending', tries = 0, next_attempt_at_us = 0, "
                                "done_at_us = 0{}",
                                w.where),
                    w.params);
    if (!r) {
        return r.error();
    }
    return r->affected;
}

outcome<std::vector<feed_position>> feed(sql_runner& db, std::int64_t after, std::size_t limit)
{
    const std::array<sql_value, 2> p{after, i64(std::max<std::size_t>(limit, 1))};
    auto r = db.run("SELECT feed_seq, id FROM events WHERE feed_seq > ?1 ORDER BY feed_seq LIMIT ?2", p);
    if (!r) {
        return r.error();
    }
    std::vector<feed_position> out;
    out.reserve(r->rows.size());
    for (std::size_t i = 0; i < r->rows.size(); ++i) {
        out.push_back(feed_position{r->int64(i, 0), r->int64(i, 1)});
    }
    return out;
}

// The counter, not MAX(feed_seq): retention may have deleted the newest positioned events.
// Its committed value is the end of what a reader can see, because the counter's row lock is
// taken last and held to COMMIT (PostgreSQL), or the single writer commits it (SQLite).
outcome<std::int64_t> feed_end(sql_runner& db)
{
    auto r = db.run("SELECT value FROM counters WHERE name = 'feed'", {});
    if (!r) {
        return r.error();
    }
    if (r->rows.empty()) {
        return failure{errc::storage_error, "the feed counter is missing"};
    }
    return r->int64(0, 0);
}

} // namespace cwhook::store::detail::outbox
