// Design: the admin API is a second router served by a second http::server, so ingest limits,
// timeouts and the connection cap of the callback listener are untouched by operators'
// traffic. A gate on that router refuses, before any handler runs, what a browser could send
// on a web page's behalf (see admin_policy.hpp), then checks the bearer token: SHA-256
// digests of the presented and the expected token compared in constant time, equal lengths
// whatever was sent, so neither the token's length nor a matching prefix shows in the timing.
// SQLite is synchronous, so the handlers never call it: one db_worker thread owns the API's
// connection and every query, event load and replay-history write is a job there that the
// handler awaits. A slow query then delays other admin requests, never a callback. Replays of
// a filter read their ids page by page through the same thread, so a filter matching
// millions of events never holds more than one page of ids.
#include "callback/admin_api.hpp"

#include "callback/admin_policy.hpp"
#include "callback/admin_ui.hpp"
#include "callback/detail/admin_db.hpp"
#include "callback/detail/admin_feed.hpp"
#include "callback/detail/admin_stats.hpp"
#include "callback/detail/admin_subscriptions.hpp"
#include "callback/reverify.hpp"
#include "core/await.hpp"
#include "core/json_string.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "events/deliveries_render.hpp"
#include "events/filter.hpp"
#include "events/render.hpp"
#include "events/replay.hpp"
#include "http/server.hpp"
#include "store/db_worker.hpp"
#include "store/event_db.hpp"
#include "json/records.hpp"
#include "json/utf8.hpp"

#include <boost/asio/strand.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include <fmt/format.h>

#include <charconv>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <type_traits>

namespace cwhook::callback {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

bool is_loopback_listen(std::string_view text)
{
    const auto ep = http::parse_listen(text);
    return ep && ep->address().is_loopback();
}

namespace {

constexpr std::size_t max_jobs_kept = 100;
constexpr std::size_t max_replay_concurrency = 64;
// Ids of a replay filter read per page: bounded memory whatever the filter matches.
constexpr std::size_t replay_page_size = 1000;

struct replay_job {
    std::string id;
    std::string to;
    std::mutex mutex;
    events::replay_summary summary;  // guarded by mutex
};

std::string job_json(replay_job& job)
{
    events::replay_summary s;
    {
        std::lock_guard lock(job.mutex);
        s = job.summary;
    }
    std::string non_2xx = "{";
    for (const auto& [status, n] : s.non_2xx) {
        non_2xx += fmt::format("{}\"{}\":{}", non_2xx.size() > 1 ? "," : "", status, n);
    }
    non_2xx += '}';
    const std::string error = s.error.empty() ? std::string() : ",\"error\":" + json_quoted(s.error);
    return fmt::format(
        R"({{"job":"{}","to":{},"total":{},"finished":{},"sent":{},"ok":{},"non_2xx":{},"failed":{},"stopped":{},"done":{}{}}})",
        job.id, json_quoted(job.to), s.total, s.finished(), s.sent, s.ok, non_2xx, s.failed, s.stopped, s.done, error);
}

using detail::on_db;

// GET /api/rejections?reason=&since=&until=&limit=&before= into a filter; the problem with
// the query otherwise ("limit: at most 1000").
std::optional<std::string> read_rejection_query(const query_params& params, std::int64_t now,
                                                store::rejection_filter& f)
{
    for (const auto& [name, value] : params) {
        store::event_filter scratch;
        if (name == "reason") {
            f.reason = value;
        } else if (name == "since" || name == "until" || name == "limit") {
            if (auto why = events::set_filter(scratch, name, value, now)) {
                return fmt::format("{}: {}", name, *why);
            }
            if (name == "since") {
                f.since_us = scratch.since_us;
            } else if (name == "until") {
                f.until_us = scratch.until_us;
            } else if (scratch.limit > events::max_api_page) {
                return fmt::format("limit: at most {}", events::max_api_page);
            } else {
                f.limit = scratch.limit;
            }
        } else if (name == "before") {
            const auto id = parse_id(value);
            if (!id) {
                return std::string("before: expected an id");
            }
            f.before_id = *id;
        } else {
            return fmt::format("{}: unknown parameter", name);
        }
    }
    return std::nullopt;
}

// A replay filter read in pages, oldest first; touched by the worker while the replay waits.
struct page_cursor {
    store::event_filter filter;
    std::optional<std::size_t> left;  // the filter's own limit, counted down
};

// The admin API's replay filter into a cursor over what was stored before `now`; the
// problem with it otherwise ("filter.type: ...").
std::optional<std::string> read_replay_filter(const std::vector<std::pair<std::string, std::string>>& filter,
                                              std::int64_t now, page_cursor& cursor)
{
    auto& f = cursor.filter;
    f.limit = 0;  // unless the filter sets one
    for (const auto& [name, value] : filter) {
        if (name == "cursor") {
            return "filter.cursor: not a replay filter";
        }
        if (auto why = events::set_filter(f, name, value, now)) {
            return fmt::format("filter.{}: {}", name, *why);
        }
    }
    // The selection is what was stored when the job started: later events are not
    // chased page after page, and the count stays the job's total.
    f.until_us = std::min(f.until_us.value_or(now + 1), now + 1);
    if (f.limit != 0) {
        cursor.left = f.limit;  // "limit": the first N of the selection, oldest first
    }
    f.limit = 0;
    return std::nullopt;
}

net::awaitable<events::id_page> next_page(store::db_worker* worker, page_cursor* cursor)
{
    if (cursor->left && *cursor->left == 0) {
        co_return events::id_page{};
    }
    cursor->filter.limit = std::min(replay_page_size, cursor->left.value_or(replay_page_size));
    using rows_t = store::db_result<std::vector<store::event_summary>>;
    const auto list = [cursor](store::event_db& db) { return db.list(cursor->filter, store::scan_order::oldest_first); };
    auto rows = co_await on_db<rows_t>(*worker, list);
    events::id_page page;
    if (!rows) {
        page.error = "the admin database queue is full";
        co_return page;
    }
    if (!*rows) {
        log::warn("admin: replay selection failed", {{"error", rows->error()}});
        page.error = "cannot read the selection: " + rows->error();
        co_return page;
    }
    page.ids.reserve((*rows)->size());
    for (const auto& r : **rows) {
        page.ids.push_back(r.id);
    }
    if (!(*rows)->empty()) {
        cursor->filter.after = store::event_cursor{(*rows)->back().received_at_us, (*rows)->back().id};
    }
    if (cursor->left) {
        *cursor->left -= std::min(*cursor->left, page.ids.size());
    }
    co_return page;
}

net::awaitable<std::optional<store::stored_event>> load_event(store::db_worker* worker, std::int64_t id)
{
    using row_t = store::db_result<std::optional<store::stored_event>>;
    const auto get = [id](store::event_db& db) { return db.get(id, false); };
    auto e = co_await on_db<row_t>(*worker, get);
    if (!e || !*e) {
        log::warn("admin: cannot load an event to replay",
                  {{"event", id}, {"error", !e ? std::string("the admin database queue is full") : e->error()}});
        co_return std::nullopt;
    }
    co_return std::move(**e);
}

// `a` lives in the replaying coroutine's frame, which awaits this.
net::awaitable<void> record_attempt(store::db_worker* worker, const store::replay_attempt& a)
{
    const store::replay_attempt* attempt = &a;
    const auto record = [attempt](store::event_db& db) { return db.record_replay(*attempt); };
    auto r = co_await on_db<store::db_result<void>>(*worker, record);
    if (!r || !*r) {
        log::warn("admin: cannot record replay attempt",
                  {{"error", !r ? std::string("the admin database queue is full") : r->error()}});
    }
    co_return;
}

// `u` lives in the re-checking coroutine's frame, which awaits this.
net::awaitable<std::optional<bool>> settle_row(store::db_worker* worker, const store::status_update& u)
{
    const store::status_update* update = &u;
    const auto settle = [update](store::event_db& db) { return db.settle(*update); };
    auto r = co_await on_db<store::db_result<bool>>(*worker, settle);
    if (!r || !*r) {
        log::warn("admin: cannot settle an event",
                  {{"event", u.id}, {"error", !r ? std::string("the admin database queue is full") : r->error()}});
        co_return std::nullopt;
    }
    co_return **r;
}

// The console's own requests: the Origin is this listener as the browser named it, and the
// gate has already checked that name (Host) against DNS rebinding, so a page of another
// origin can never match.
bool same_origin(const http::request& req, std::string_view origin)
{
    const auto given = normalize_origin(origin);
    const auto own = normalize_origin(fmt::format("{}://{}", req.tls ? "https" : "http", req.msg[bhttp::field::host]));
    return given && own && *given == *own;
}

bool changes_state(bhttp::verb v)
{
    return v == bhttp::verb::post || v == bhttp::verb::put || v == bhttp::verb::patch || v == bhttp::verb::delete_;
}

} // namespace

struct admin_api::impl {
    admin_settings cfg;
    net::io_context& ioc;
    client::https_client& client;
    metrics::counter& unauthorized;
    metrics::counter& replays_started;
    metrics::counter& refused_host;
    metrics::counter& refused_origin;
    metrics::counter& refused_media_type;
    metrics::counter& refused_replay_target;
    metrics::gauge& subscriptions_missing; // shared with subscription_check: the last look wins
    metrics::gauge& subscriptions_inactive;
    crypto::digest256 token_digest{};
    admin_policy policy;

    std::unique_ptr<store::db_worker> db;

    std::mutex jobs_mutex;
    std::map<std::string, std::shared_ptr<replay_job>, std::less<>> jobs;  // guarded by jobs_mutex
    std::deque<std::string> job_order;                                    // guarded by jobs_mutex

    impl(const admin_settings& s, admin_policy pol, net::io_context& c, client::https_client& cl, metrics::registry& m)
        : cfg(s), ioc(c), client(cl), unauthorized(m.get_counter("cwhook_admin_unauthorized_total")),
          replays_started(m.get_counter("cwhook_admin_replay_jobs_total")),
          refused_host(m.get_counter("cwhook_admin_refused_total", "reason=\"host_not_allowed\"")),
          refused_origin(m.get_counter("cwhook_admin_refused_total", "reason=\"origin_not_allowed\"")),
          refused_media_type(m.get_counter("cwhook_admin_refused_total", "reason=\"unsupported_media_type\"")),
          refused_replay_target(m.get_counter("cwhook_admin_refused_total", "reason=\"replay_target_not_allowed\"")),
          subscriptions_missing(m.get_gauge("cwhook_subscriptions_missing")),
          subscriptions_inactive(m.get_gauge("cwhook_subscriptions_inactive")), policy(std::move(pol))
    {
    }

    bool authorized(const http::request& req) const
    {
        const std::string_view auth = req.msg[bhttp::field::authorization];
        constexpr std::string_view scheme = "Bearer ";
        std::string_view presented;
        if (auth.size() > scheme.size() && boost::beast::iequals(auth.substr(0, scheme.size()), scheme)) {
            presented = auth.substr(scheme.size());
        }
        const auto given = crypto::sha256(presented);
        // Evaluated whether or not the header was well-formed: same work either way.
        const bool same = crypto::constant_time_equal(given, token_digest);
        return same && !presented.empty();
    }

    std::optional<http::response> gate(http::request& req);
    // Keeps the job for GET /api/replays/ID; the oldest finished jobs beyond max_jobs_kept go.
    void remember(const std::shared_ptr<replay_job>& job);

    net::awaitable<http::response> events_list(http::request& req);
    // GET /api/events/count: how many events the list filters select (the console's bulk
    // replay shows it before it asks).
    net::awaitable<http::response> events_count(http::request& req);
    net::awaitable<http::response> event_one(http::request& req);
    net::awaitable<http::response> replay_start(http::request& req);
    http::response replay_status(const http::request& req);
    net::awaitable<http::response> rejections(http::request& req);
    net::awaitable<http::response> reverify_run(http::request& req);
    // GET /api/deliveries and /api/deliveries/{id}.
    net::awaitable<http::response> deliveries(http::request& req);
    net::awaitable<http::response> deliveries_retry(http::request& req);
    net::awaitable<http::response> destinations_list(http::request& req);
    // POST /api/destinations/{name}/pause, /resume and /test.
    net::awaitable<http::response> destination_action(http::request& req);
    net::awaitable<http::response> destination_test_run(unsigned v, std::string name);

    admin_api::destination_test test_destination;  // set by set_destination_test()

    // Set by set_reverifier(): the daemon's key cache and key_url policy.
    key_cache* keys = nullptr;
    const key_url_policy* key_policy = nullptr;
    std::chrono::milliseconds reverify_wait{0};

    // GET /api/feed (detail/admin_feed.hpp), on the same db worker; made by create().
    std::unique_ptr<detail::admin_feed> feed;
    std::unique_ptr<detail::admin_subscriptions> subscriptions; // set by set_subscriptions()
    // The web console's files, login and sessions (admin_ui.hpp); made by create().
    std::unique_ptr<admin_ui> ui;
};

// The order matters: a page that rebinds a name to this address must get nothing, not even
// a 401 that tells it the token is wrong, and a form post must not reach a handler.
std::optional<http::response> admin_api::impl::gate(http::request& req)
{
    const unsigned v = req.msg.version();
    const auto refuse = [&req](metrics::counter& c, std::string_view reason) {
        c.inc();
        req.log_fields.emplace_back("reason", reason);
    };
    if (!policy.host_allowed(req.msg[bhttp::field::host])) {
        refuse(refused_host, "host_not_allowed");
        return http::error_response(421, "host_not_allowed",
                                    "the Host header names neither this listener nor an entry of admin.hosts", v);
    }
    if (const auto origin = req.msg.find(bhttp::field::origin);
        origin != req.msg.end() && !policy.origin_allowed(origin->value()) && !same_origin(req, origin->value())) {
        refuse(refused_origin, "origin_not_allowed");
        return http::error_response(403, "origin_not_allowed",
                                    "requests from web pages are refused unless their origin is in admin.origins", v);
    }
    if (changes_state(req.msg.method()) && !is_json_content_type(req.msg[bhttp::field::content_type])) {
        refuse(refused_media_type, "unsupported_media_type");
        return http::error_response(415, "unsupported_media_type", "send Content-Type: application/json", v);
    }
    if (authorized(req) || admin_ui::is_public(req)) {
        return std::nullopt;
    }
    // The console's session cookie stands in for the token; what it authenticates may change
    // state only with the session's CSRF token besides.
    switch (ui->check(req)) {
    case admin_ui::session_check::ok:
        return std::nullopt;
    case admin_ui::session_check::csrf_missing:
    case admin_ui::session_check::csrf_mismatch:
        req.log_fields.emplace_back("reason", "csrf");
        return http::error_response(403, "csrf_token_invalid",
                                    "a request authenticated by the session cookie that changes state must send "
                                    "the session's X-CSRF-Token header",
                                    v);
    case admin_ui::session_check::none:
        break;
    }
    {
        unauthorized.inc();
        req.log_fields.emplace_back("reason", "unauthorized");
        auto res = http::error_response(401, "unauthorized", "a valid Authorization: Bearer token is required", v);
        res.set(bhttp::field::www_authenticate, "Bearer");
        return res;
    }
    return std::nullopt;
}

namespace {

http::response storage_unavailable(unsigned v, std::string_view what)
{
    return http::error_response(503, "storage_unavailable", what, v);
}

constexpr std::string_view queue_full = "the admin database queue is full";
constexpr std::size_t default_reverify_rows = 1000;
constexpr std::size_t max_reverify_rows = 10'000;
// Ids in one POST /api/deliveries/retry (each is a bound parameter of one statement).
constexpr std::size_t max_retry_ids = 1000;
constexpr std::size_t max_pause_reason = 1000;

// The answer when a database job gave no value: the queue was full, or the query failed
// (logged); nullopt when it gave one.
template <class T> std::optional<http::response> db_failure(const std::optional<store::db_result<T>>& r, unsigned v)
{
    if (!r) {
        return storage_unavailable(v, queue_full);
    }
    if (!*r) {
        log::warn("admin: query failed", {{"error", r->error()}});
        return storage_unavailable(v, {});
    }
    return std::nullopt;
}

// GET /api/deliveries?destination=&state=&event=&limit=&before= into a filter; the problem
// with the query otherwise ("state: expected pending, ...").
std::optional<std::string> read_delivery_query(const query_params& params, store::delivery_filter& f)
{
    for (const auto& [name, value] : params) {
        if (auto why = events::set_delivery_filter(f, name, value)) {
            return fmt::format("{}: {}", name, *why);
        }
    }
    if (f.limit > events::max_api_page) {
        return fmt::format("limit: at most {}", events::max_api_page);
    }
    return std::nullopt;
}

// An event with its deliveries to destinations, read in one job.
struct event_detail {
    std::optional<store::stored_event> event;
    std::vector<store::delivery_row> forwarding;
};

store::db_result<event_detail> read_event_detail(store::event_db& db, std::int64_t id, bool with_forwarding)
{
    auto e = db.get(id, with_forwarding);
    if (!e) {
        return e.error();
    }
    event_detail out;
    out.event = std::move(*e);
    if (out.event && with_forwarding) {
        auto rows = db.deliveries_of(id);
        if (!rows) {
            return rows.error();
        }
        out.forwarding = std::move(*rows);
    }
    return out;
}

} // namespace

net::awaitable<http::response> admin_api::impl::events_list(http::request& req)
{
    const unsigned v = req.msg.version();
    auto params = parse_query(req.query());
    if (!params) {
        co_return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    store::event_filter f;
    f.limit = 50;
    const auto now = now_us();
    for (const auto& [name, value] : *params) {
        if (auto why = events::set_filter(f, name, value, now)) {
            co_return http::error_response(400, "bad_query", fmt::format("{}: {}", name, *why), v);
        }
    }
    if (f.limit > events::max_api_page) {
        co_return http::error_response(400, "bad_query", fmt::format("limit: at most {}", events::max_api_page), v);
    }
    // One row more than asked tells whether a next page exists without a count.
    const std::size_t wanted = f.limit;
    f.limit = wanted + 1;
    using rows_t = store::db_result<std::vector<store::event_summary>>;
    const store::event_filter* filter = &f;
    const auto list = [filter](store::event_db& db) { return db.list(*filter); };
    auto rows = co_await on_db<rows_t>(*db, list);
    if (!rows) {
        co_return storage_unavailable(v, queue_full);
    }
    if (!*rows) {
        log::warn("admin: query failed", {{"error", rows->error()}});
        co_return storage_unavailable(v, {});
    }
    auto& found = **rows;
    const bool more = found.size() > wanted;
    if (more) {
        found.resize(wanted);
    }
    std::string body = "{\"events\":[";
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::summary_json(found[i]);
    }
    body += "],\"next_cursor\":";
    if (more && !found.empty()) {
        body += json_quoted(events::format_cursor({found.back().received_at_us, found.back().id}));
    } else {
        body += "null";
    }
    body += '}';
    co_return http::json_response(200, std::move(body), v);
}

net::awaitable<http::response> admin_api::impl::events_count(http::request& req)
{
    const unsigned v = req.msg.version();
    auto params = parse_query(req.query());
    if (!params) {
        co_return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    store::event_filter f;
    const auto now = now_us();
    for (const auto& [name, value] : *params) {
        if (name == "cursor" || name == "limit") {
            co_return http::error_response(400, "bad_query", fmt::format("{}: not a count filter", name), v);
        }
        if (auto why = events::set_filter(f, name, value, now)) {
            co_return http::error_response(400, "bad_query", fmt::format("{}: {}", name, *why), v);
        }
    }
    f.limit = 0;
    const store::event_filter* filter = &f;
    const auto count = [filter](store::event_db& db) { return db.count(*filter); };
    auto n = co_await on_db<store::db_result<std::int64_t>>(*db, count);
    if (auto failed = db_failure(n, v)) {
        co_return std::move(*failed);
    }
    co_return http::json_response(200, fmt::format(R"({{"count":{}}})", **n), v);
}

net::awaitable<http::response> admin_api::impl::event_one(http::request& req)
{
    const unsigned v = req.msg.version();
    std::string_view rest = req.path().substr(std::string_view("/api/events/").size());
    bool raw = false;
    if (rest.ends_with("/raw")) {
        raw = true;
        rest.remove_suffix(4);
    }
    const auto id = parse_id(rest);
    if (!id) {
        co_return http::error_response(404, "not_found", {}, v);
    }
    const std::int64_t n = *id;
    const auto get = [n, raw](store::event_db& db) { return read_event_detail(db, n, !raw); };
    auto ev = co_await on_db<store::db_result<event_detail>>(*db, get);
    if (auto failed = db_failure(ev, v)) {
        co_return std::move(*failed);
    }
    if (!(*ev)->event) {
        co_return http::error_response(404, "not_found", fmt::format("no event {}", n), v);
    }
    const auto& stored = *(*ev)->event;
    if (!raw) {
        co_return http::json_response(200, events::detail_json(stored, (*ev)->forwarding), v);
    }
    // The stored bytes came from whoever reached the callback listener: never let a browser
    // render them (as HTML, say) in the admin listener's origin. A download, not a page; the
    // content type it arrived with is in X-Cwhook-Content-Type and in the event's JSON.
    http::response res{bhttp::status::ok, v};
    res.set(bhttp::field::content_type, "application/octet-stream");
    res.set(bhttp::field::content_disposition, fmt::format("attachment; filename=\"event-{}.bin\"", n));
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Content-Security-Policy", "sandbox");
    res.set(bhttp::field::cache_control, "no-store");
    // Stored as received, so it may hold anything; only visible ASCII goes into a header.
    std::string original = stored.record.content_type;
    const bool printable = std::all_of(original.begin(), original.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u < 0x7f;
    });
    if (!original.empty() && printable) {
        res.set("X-Cwhook-Content-Type", original);
    }
    res.body() = stored.record.body;
    res.prepare_payload();
    co_return res;
}

void admin_api::impl::remember(const std::shared_ptr<replay_job>& job)
{
    std::lock_guard lock(jobs_mutex);
    jobs.emplace(job->id, job);
    job_order.push_back(job->id);
    while (job_order.size() > max_jobs_kept) {
        const auto it = jobs.find(job_order.front());
        if (it != jobs.end()) {
            std::lock_guard job_lock(it->second->mutex);
            if (!it->second->summary.done) {
                break;
            }
        }
        jobs.erase(job_order.front());
        job_order.pop_front();
    }
}

net::awaitable<http::response> admin_api::impl::replay_start(http::request& req)
{
    const unsigned v = req.msg.version();
    auto parsed = json::parse_replay_request(req.msg.body());
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        co_return http::error_response(400, "bad_request", err->detail, v);
    }
    auto& r = std::get<json::replay_request>(parsed);
    if (r.ids.empty() == !r.has_filter) {
        co_return http::error_response(400, "bad_request", "give either ids or filter", v);
    }
    events::replay_options opt;
    opt.to = r.to;
    opt.rate = r.rate.value_or(0);
    opt.concurrency = static_cast<std::size_t>(std::clamp<std::int64_t>(r.concurrency.value_or(1), 0,
                                                                        max_replay_concurrency));
    opt.stop_on_error = r.stop_on_error;
    auto checked = events::replay_request_for(opt);
    if (!checked) {
        co_return http::error_response(400, "bad_request", "to: " + checked.error(), v);
    }
    // Whoever holds the token may replay, but only to where the operator said: the token in a
    // browser's or a script's hands must not turn the stored events into an exfiltration feed,
    // nor the daemon into a client of services on its own network.
    if (auto why = policy.replay_target_problem(*checked)) {
        refused_replay_target.inc();
        req.log_fields.emplace_back("reason", "replay_target_not_allowed");
        co_return http::error_response(403, "replay_target_not_allowed", *why, v);
    }

    std::vector<std::int64_t> ids = std::move(r.ids);
    std::shared_ptr<page_cursor> cursor;
    std::size_t total = ids.size();
    if (r.has_filter) {
        cursor = std::make_shared<page_cursor>();
        if (auto why = read_replay_filter(r.filter, now_us(), *cursor)) {
            co_return http::error_response(400, "bad_request", *why, v);
        }
        const auto& f = cursor->filter;
        const store::event_filter* filter = &f;
        const auto count = [filter](store::event_db& db) { return db.count(*filter); };
        auto n = co_await on_db<store::db_result<std::int64_t>>(*db, count);
        if (!n) {
            co_return storage_unavailable(v, queue_full);
        }
        if (!*n) {
            log::warn("admin: query failed", {{"error", n->error()}});
            co_return storage_unavailable(v, {});
        }
        total = static_cast<std::size_t>(std::max<std::int64_t>(**n, 0));
        if (cursor->left) {
            total = std::min(total, *cursor->left);
        }
    }

    auto job = std::make_shared<replay_job>();
    job->id = crypto::random_hex(8);
    job->to = opt.to;
    job->summary.total = total;
    opt.job = job->id;
    remember(job);
    replays_started.inc();
    log::info("admin: replay job started", {{"job", job->id}, {"events", total}, {"to", opt.to}});

    store::db_worker* worker = db.get();
    events::replay_hooks hooks;
    hooks.load = [worker](std::int64_t id) { return load_event(worker, id); };
    hooks.record = [worker](const store::replay_attempt& a) { return record_attempt(worker, a); };
    hooks.progress = [job](const events::replay_summary& s) {
        std::lock_guard lock(job->mutex);
        job->summary = s;
        if (s.done) {
            log::info("admin: replay job finished", {{"job", job->id}, {"result", events::describe(s)}});
        }
    };
    auto strand = net::make_strand(ioc);
    if (cursor) {
        events::id_source source = [worker, cursor] { return next_page(worker, cursor.get()); };
        events::start_replay(strand, client, std::move(source), total, std::move(opt), std::move(hooks));
    } else {
        events::start_replay(strand, client, std::move(ids), std::move(opt), std::move(hooks));
    }
    co_return http::json_response(202, fmt::format(R"({{"job":"{}","total":{}}})", job->id, total), v);
}

// Re-checks pending and failed events with the daemon's key cache, in the request: the
// selection is bounded (limit, at most max_reverify_rows), and a cached key makes a row cost
// microseconds. Rows are settled through the API's own connection; the daemon's counts catch
// up at the re-verifier's next resync.
net::awaitable<http::response> admin_api::impl::reverify_run(http::request& req)
{
    const unsigned v = req.msg.version();
    auto parsed = json::parse_replay_request(req.msg.body());
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        co_return http::error_response(400, "bad_request", err->detail, v);
    }
    auto& r = std::get<json::replay_request>(parsed);
    if (!r.to.empty() || r.rate || r.concurrency || r.stop_on_error) {
        co_return http::error_response(400, "bad_request", "give ids or filter only", v);
    }
    if (!r.ids.empty() && r.has_filter) {
        co_return http::error_response(400, "bad_request", "give either ids or filter", v);
    }
    std::vector<std::int64_t> ids = std::move(r.ids);
    if (ids.size() > max_reverify_rows) {
        co_return http::error_response(400, "bad_request", fmt::format("ids: at most {}", max_reverify_rows), v);
    }
    if (ids.empty()) {
        store::event_filter f;
        f.limit = default_reverify_rows;
        const auto now = now_us();
        for (const auto& [name, value] : r.filter) {
            if (name == "cursor") {
                co_return http::error_response(400, "bad_request", "filter.cursor: not a reverify filter", v);
            }
            if (auto why = events::set_filter(f, name, value, now)) {
                co_return http::error_response(400, "bad_request", fmt::format("filter.{}: {}", name, *why), v);
            }
        }
        if (f.status && *f.status != store::event_status::pending && *f.status != store::event_status::failed) {
            co_return http::error_response(400, "bad_request", "filter.status: only pending or failed events are re-checked", v);
        }
        if (f.limit == 0 || f.limit > max_reverify_rows) {
            co_return http::error_response(400, "bad_request", fmt::format("filter.limit: 1 to {}", max_reverify_rows), v);
        }
        const std::size_t wanted = f.limit;
        for (const auto st : {store::event_status::pending, store::event_status::failed}) {
            if ((f.status && *f.status != st) || ids.size() >= wanted) {
                continue;
            }
            store::event_filter one = f;
            one.status = st;
            one.limit = wanted - ids.size();
            const store::event_filter* filter = &one;
            const auto select = [filter](store::event_db& db) { return db.ids(*filter); };
            auto found = co_await on_db<store::db_result<std::vector<std::int64_t>>>(*db, select);
            if (!found) {
                co_return storage_unavailable(v, queue_full);
            }
            if (!*found) {
                log::warn("admin: query failed", {{"error", found->error()}});
                co_return storage_unavailable(v, {});
            }
            ids.insert(ids.end(), (*found)->begin(), (*found)->end());
        }
    }
    store::db_worker* worker = db.get();
    const row_loader load = [worker](std::int64_t id) { return load_event(worker, id); };
    const row_writer write = [worker](const store::status_update& u) { return settle_row(worker, u); };
    const auto sum = co_await reverify(*keys, *key_policy, reverify_wait, ids, load, write);
    log::info("admin: events re-checked", {{"result", sum.text()}});
    co_return http::json_response(200, sum.json(), v);
}

http::response admin_api::impl::replay_status(const http::request& req)
{
    const unsigned v = req.msg.version();
    const auto id = req.path().substr(std::string_view("/api/replays/").size());
    std::shared_ptr<replay_job> job;
    {
        std::lock_guard lock(jobs_mutex);
        const auto it = jobs.find(id);
        if (it != jobs.end()) {
            job = it->second;
        }
    }
    if (!job) {
        return http::error_response(404, "not_found", "no such replay job", v);
    }
    return http::json_response(200, job_json(*job), v);
}

net::awaitable<http::response> admin_api::impl::rejections(http::request& req)
{
    const unsigned v = req.msg.version();
    const auto path = req.path();
    constexpr std::string_view base = "/api/rejections";
    if (path.size() > base.size()) {
        const auto id = parse_id(path.substr(base.size() + 1));
        if (!id) {
            co_return http::error_response(404, "not_found", {}, v);
        }
        using row_t = store::db_result<std::optional<store::stored_rejection>>;
        const std::int64_t n = *id;
        const auto get = [n](store::event_db& db) { return db.rejection(n); };
        auto r = co_await on_db<row_t>(*db, get);
        if (!r) {
            co_return storage_unavailable(v, queue_full);
        }
        if (!*r) {
            co_return storage_unavailable(v, {});
        }
        if (!**r) {
            co_return http::error_response(404, "not_found", fmt::format("no rejection {}", n), v);
        }
        co_return http::json_response(200, events::rejection_json(***r), v);
    }
    auto params = parse_query(req.query());
    if (!params) {
        co_return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    store::rejection_filter f;
    if (auto why = read_rejection_query(*params, now_us(), f)) {
        co_return http::error_response(400, "bad_query", *why, v);
    }
    const std::size_t wanted = f.limit;
    f.limit = wanted + 1;
    using rows_t = store::db_result<std::vector<store::stored_rejection>>;
    const store::rejection_filter* filter = &f;
    const auto list = [filter](store::event_db& db) { return db.rejections(*filter); };
    auto rows = co_await on_db<rows_t>(*db, list);
    if (!rows) {
        co_return storage_unavailable(v, queue_full);
    }
    if (!*rows) {
        co_return storage_unavailable(v, {});
    }
    auto& found = **rows;
    const bool more = found.size() > wanted;
    if (more) {
        found.resize(wanted);
    }
    std::string body = "{\"rejections\":[";
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::rejection_json(found[i]);
    }
    body += "],\"next_before\":";
    body += more && !found.empty() ? std::to_string(found.back().id) : std::string("null");
    body += '}';
    co_return http::json_response(200, std::move(body), v);
}

net::awaitable<http::response> admin_api::impl::deliveries(http::request& req)
{
    const unsigned v = req.msg.version();
    const auto path = req.path();
    constexpr std::string_view base = "/api/deliveries";
    if (path.size() > base.size()) {
        const auto id = parse_id(path.substr(base.size() + 1));
        if (!id) {
            co_return http::error_response(404, "not_found", {}, v);
        }
        using row_t = store::db_result<std::optional<store::delivery_row>>;
        const std::int64_t n = *id;
        const auto get = [n](store::event_db& db) { return db.delivery(n); };
        auto r = co_await on_db<row_t>(*db, get);
        if (auto failed = db_failure(r, v)) {
            co_return std::move(*failed);
        }
        if (!**r) {
            co_return http::error_response(404, "not_found", fmt::format("no delivery {}", n), v);
        }
        co_return http::json_response(200, events::delivery_json(***r, true), v);
    }
    auto params = parse_query(req.query());
    if (!params) {
        co_return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    store::delivery_filter f;
    if (auto why = read_delivery_query(*params, f)) {
        co_return http::error_response(400, "bad_query", *why, v);
    }
    // One row more than asked tells whether a next page exists without a count.
    const std::size_t wanted = f.limit;
    f.limit = wanted + 1;
    using rows_t = store::db_result<std::vector<store::delivery_row>>;
    const store::delivery_filter* filter = &f;
    const auto list = [filter](store::event_db& db) { return db.deliveries(*filter); };
    auto rows = co_await on_db<rows_t>(*db, list);
    if (auto failed = db_failure(rows, v)) {
        co_return std::move(*failed);
    }
    auto& found = **rows;
    const bool more = found.size() > wanted;
    if (more) {
        found.resize(wanted);
    }
    std::string body = "{\"deliveries\":[";
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::delivery_json(found[i]);
    }
    body += "],\"next_before\":";
    body += more && !found.empty() ? std::to_string(found.back().id) : std::string("null");
    body += '}';
    co_return http::json_response(200, std::move(body), v);
}

// As `cwhook deliveries retry`, without its question: ids, or a selection, or "all" (so that
// an empty or mistyped body never selects the whole outbox).
net::awaitable<http::response> admin_api::impl::deliveries_retry(http::request& req)
{
    const unsigned v = req.msg.version();
    auto parsed = json::parse_delivery_retry_request(req.msg.body());
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        co_return http::error_response(400, "bad_request", err->detail, v);
    }
    auto& r = std::get<json::delivery_retry_request>(parsed);
    const bool selection = !r.filter.empty() || r.all;
    if (!r.ids.empty() && selection) {
        co_return http::error_response(400, "bad_request",
                                       "give either ids or a selection (destination, state, "
                                       "event, all)",
                                       v);
    }
    if (r.ids.empty() && !selection) {
        co_return http::error_response(400, "bad_request",
                                       "give ids, a selection (destination, state, event), or "
                                       "\"all\": true to retry every delivery not pending",
                                       v);
    }
    if (r.ids.size() > max_retry_ids) {
        co_return http::error_response(400, "bad_request", fmt::format("ids: at most {}", max_retry_ids), v);
    }
    for (const auto id : r.ids) {
        if (id < 1) {
            co_return http::error_response(400, "bad_request", fmt::format("ids: {} is not a delivery id", id), v);
        }
    }
    store::delivery_filter f;
    for (const auto& [name, value] : r.filter) {
        if (auto why = events::set_delivery_filter(f, name, value)) {
            co_return http::error_response(400, "bad_request", fmt::format("{}: {}", name, *why), v);
        }
    }
    f.limit = 0;
    const std::vector<std::int64_t>* ids = &r.ids;
    const store::delivery_filter* filter = &f;
    const bool dry_run = r.dry_run;
    const auto retry = [ids, filter, dry_run](store::event_db& db) {
        return db.retry_deliveries(*ids, *filter, dry_run);
    };
    auto n = co_await on_db<store::db_result<std::int64_t>>(*db, retry);
    if (auto failed = db_failure(n, v)) {
        co_return std::move(*failed);
    }
    if (!dry_run) {
        log::info("admin: deliveries retried", {{"count", **n}});
    }
    co_return http::json_response(200, fmt::format(R"({{"count":{},"dry_run":{}}})", **n, dry_run), v);
}

net::awaitable<http::response> admin_api::impl::destinations_list(http::request& req)
{
    const unsigned v = req.msg.version();
    using rows_t = store::db_result<std::vector<store::destination_status>>;
    const auto list = [](store::event_db& db) { return db.destinations(); };
    auto rows = co_await on_db<rows_t>(*db, list);
    if (auto failed = db_failure(rows, v)) {
        co_return std::move(*failed);
    }
    const auto now = now_us();
    std::string body = "{\"destinations\":[";
    for (std::size_t i = 0; i < (*rows)->size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::destination_json((**rows)[i], now);
    }
    body += "]}";
    co_return http::json_response(200, std::move(body), v);
}

net::awaitable<http::response> admin_api::impl::destination_action(http::request& req)
{
    const unsigned v = req.msg.version();
    constexpr std::string_view base = "/api/destinations/";
    // The route is a prefix: it also matches "/api/destinations" itself.
    std::string_view rest = req.path().size() > base.size() ? req.path().substr(base.size()) : std::string_view{};
    const auto slash = rest.rfind('/');
    const std::string_view action = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    const auto name = percent_decode(rest.substr(0, slash == std::string_view::npos ? 0 : slash));
    const bool pause = action == "pause";
    const bool test = action == "test" && test_destination;
    if ((!pause && action != "resume" && !test) || !name || name->empty() || name->find('/') != std::string::npos) {
        co_return http::error_response(404, "not_found", {}, v);
    }
    // A body is optional; only a pause takes a member ("reason").
    std::string reason;
    if (!trim(req.msg.body()).empty()) {
        auto parsed = json::parse_flat_object(req.msg.body());
        if (auto* err = std::get_if<json::parse_error>(&parsed)) {
            co_return http::error_response(400, "bad_request", err->detail, v);
        }
        for (const auto& [key, value] : std::get<json::flat_object>(parsed).fields) {
            const auto* text = std::get_if<std::string>(&value);
            if (key != "reason" || !pause) {
                co_return http::error_response(400, "bad_request", "unknown field " + key, v);
            }
            if (text == nullptr) {
                co_return http::error_response(400, "bad_request", "field reason is not a string", v);
            }
            if (text->size() > max_pause_reason) {
                co_return http::error_response(400, "bad_request",
                                               fmt::format("reason: at most {} bytes", max_pause_reason), v);
            }
            reason = *text;
        }
    }
    if (test) {
        co_return co_await destination_test_run(v, *name);
    }
    const std::string* destination = &*name;
    const std::string* why = &reason;
    const std::int64_t now = now_us();
    const auto set = [destination, why, pause, now](store::event_db& db) {
        return db.set_destination_paused(*destination, pause, *why, now);
    };
    auto known = co_await on_db<store::db_result<bool>>(*db, set);
    if (auto failed = db_failure(known, v)) {
        co_return std::move(*failed);
    }
    if (!**known) {
        co_return http::error_response(404, "not_found", fmt::format("no destination {}", json_quoted(*name)), v);
    }
    log::info(pause ? "admin: destination paused" : "admin: destination resumed",
              {{"destination", *name}, {"reason", reason}});
    std::string body = "{\"name\":";
    append_json_string(body, *name);
    body += fmt::format(",\"paused\":{}}}", pause);
    co_return http::json_response(200, std::move(body), v);
}

// The ping goes to a destination of the configuration only, never to a URL the request
// names: the token buys no new reach.
net::awaitable<http::response> admin_api::impl::destination_test_run(unsigned v, std::string name)
{
    const auto r = co_await test_destination(name);
    if (!r) {
        co_return http::error_response(404, "not_found",
                                       fmt::format("no destination {} in the configuration", json_quoted(name)), v);
    }
    log::info("admin: destination tested", {{"destination", name}, {"status", r->http_status}, {"error", r->error}});
    std::string out = "{\"name\":";
    append_json_string(out, name);
    out += fmt::format(",\"ok\":{},\"http_status\":{},\"latency_ms\":{}.{:03},\"error\":", r->ok(),
                       r->http_status != 0 ? std::to_string(r->http_status) : std::string("null"), r->latency_us / 1000,
                       r->latency_us % 1000);
    append_json_string(out, json::valid_utf8(r->error));
    out += '}';
    co_return http::json_response(200, std::move(out), v);
}

boost::system::result<std::unique_ptr<admin_api>, std::string>
admin_api::create(const admin_settings& s, std::string_view token, const store::settings& storage, net::io_context& ioc,
                  client::https_client& client, metrics::registry& metrics)
{
    using out = boost::system::result<std::unique_ptr<admin_api>, std::string>;
    if (token.empty()) {
        return out(boost::system::in_place_error, std::string("admin: no bearer token"));
    }
    auto policy = admin_policy::make(s);
    if (!policy) {
        return out(boost::system::in_place_error, policy.error());
    }
    auto p = std::make_unique<impl>(s, std::move(*policy), ioc, client, metrics);
    p->token_digest = crypto::sha256(token);
    // SQLite: one connection (its writes would only queue for the file's lock); PostgreSQL:
    // storage.pool, so that a slow export does not hold up every other request.
    // Opened side by side: start-up waits for one connection's set-up, not `pool` of them.
    const std::size_t connections = storage.backend == store::backend::postgres ? storage.pool : 1;
    std::vector<std::future<store::db_result<std::unique_ptr<store::event_db>>>> opening;
    for (std::size_t i = 0; i < connections; ++i) {
        opening.push_back(std::async(std::launch::async, [&storage] {
            return store::event_db::open(storage, store::db_access::read_write);
        }));
    }
    std::vector<std::unique_ptr<store::event_db>> pool;
    std::string failure;
    for (auto& f : opening) {
        auto db = f.get();
        if (!db) {
            failure = db.error();
        } else {
            pool.push_back(std::move(*db));
        }
    }
    if (!failure.empty()) {
        return out(boost::system::in_place_error, "admin: " + failure);
    }
    p->db = std::make_unique<store::db_worker>(std::move(pool), std::string(admin_db_thread_name));
    p->feed = std::make_unique<detail::admin_feed>(*p->db, ioc, metrics);
    session_settings sessions;
    sessions.ttl = std::chrono::duration_cast<std::chrono::seconds>(s.session_lifetime);
    p->ui = std::make_unique<admin_ui>(p->token_digest, s, sessions, metrics);
    return std::unique_ptr<admin_api>(new admin_api(std::move(p)));
}

admin_api::admin_api(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
admin_api::~admin_api() = default;

void admin_api::set_reverifier(key_cache& keys, const key_url_policy& policy, std::chrono::milliseconds wait)
{
    impl_->keys = &keys;
    impl_->key_policy = &policy;
    impl_->reverify_wait = wait;
}

void admin_api::set_destination_test(destination_test test)
{
    impl_->test_destination = std::move(test);
}

void admin_api::set_subscriptions(manage::api* manage, std::vector<manage::subscription> desired, std::string why_not)
{
    impl_->subscriptions = std::make_unique<detail::admin_subscriptions>(
        manage, std::move(desired), std::move(why_not),
        detail::admin_subscriptions::gauges{impl_->subscriptions_missing, impl_->subscriptions_inactive});
}

void admin_api::set_listener(const std::vector<net::ip::tcp::endpoint>& bound)
{
    impl_->policy.add_listener(bound);
}

namespace {

// Router handlers: plain functions of the impl pointer and the request, which the session
// keeps alive while it awaits the answer.
net::awaitable<http::response> serve_events(admin_api::impl* p, http::request& req)
{
    if (req.path() == "/api/events") {
        co_return co_await p->events_list(req);
    }
    if (req.path() == "/api/events/count") {
        co_return co_await p->events_count(req);
    }
    co_return co_await p->event_one(req);
}

net::awaitable<http::response> serve_replay_status(admin_api::impl* p, http::request& req)
{
    co_return p->replay_status(req);
}

} // namespace

void admin_api::add_routes(http::router& r)
{
    impl* p = impl_.get();
    r.set_gate([p](http::request& req) {
        auto refused = p->gate(req);
        if (refused && is_ui_path(req.path())) {
            add_ui_headers(*refused);
        }
        return refused;
    });
    p->ui->add_routes(r);
    r.add(bhttp::verb::get, "/api/events", [p](http::request& req) { return serve_events(p, req); }, true);
    r.add(bhttp::verb::post, "/api/events/replay", [p](http::request& req) { return p->replay_start(req); });
    if (p->keys != nullptr) {
        r.add(bhttp::verb::post, "/api/events/reverify", [p](http::request& req) { return p->reverify_run(req); });
    }
    r.add(bhttp::verb::get, "/api/replays", [p](http::request& req) { return serve_replay_status(p, req); }, true);
    r.add(bhttp::verb::get, "/api/rejections", [p](http::request& req) { return p->rejections(req); }, true);
    r.add(
        bhttp::verb::get, "/api/deliveries", [p](http::request& req) { return p->deliveries(req); }, true);
    r.add(bhttp::verb::post, "/api/deliveries/retry", [p](http::request& req) { return p->deliveries_retry(req); });
    r.add(bhttp::verb::get, "/api/destinations", [p](http::request& req) { return p->destinations_list(req); });
    r.add(
        bhttp::verb::post, "/api/destinations", [p](http::request& req) { return p->destination_action(req); }, true);
    r.add(bhttp::verb::get, "/api/feed", [p](http::request& req) { return p->feed->serve(req); });
    r.add(bhttp::verb::get, "/api/stats", [p](http::request& req) { return detail::serve_stats(p->db.get(), req); });
    if (auto* subs = p->subscriptions.get()) {
        r.add(bhttp::verb::get, "/api/subscriptions", [subs](http::request& req) { return subs->show(req); });
        r.add(bhttp::verb::post, "/api/subscriptions/sync", [subs](http::request& req) { return subs->sync(req); });
    }
}

// ---- The feed ---------------------------------------------------------------------------

void admin_api::notify_feed()
{
    impl_->feed->notify();
}

void admin_api::end_feed_waits()
{
    impl_->feed->stop();
}

} // namespace cwhook::callback
