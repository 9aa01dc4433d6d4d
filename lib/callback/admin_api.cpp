// Design: the admin API is a second router served by a second http::server, so ingest limits,
// timeouts and the connection cap of the callback listener are untouched by operators'
// traffic. Authentication compares SHA-256 digests of the presented and the configured token
// with a constant-time compare: equal lengths whatever was sent, so neither the token's
// length nor a matching prefix shows in the timing. Queries are single indexed pages (see
// store/event_db.cpp) and run inline under one mutex-guarded connection; anything long
// (replay) becomes a job on its own strand that the client polls.
#include "callback/admin_api.hpp"

#include "core/log.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "events/filter.hpp"
#include "events/render.hpp"
#include "events/replay.hpp"
#include "http/server.hpp"
#include "json/records.hpp"
#include "store/event_db.hpp"

#include <boost/asio/strand.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include <fmt/format.h>

#include <charconv>
#include <deque>
#include <map>
#include <mutex>

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

std::optional<std::int64_t> parse_id(std::string_view text)
{
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || n < 1) {
        return std::nullopt;
    }
    return n;
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// application/x-www-form-urlencoded decoding of one name or value; nullopt on a bad escape.
std::optional<std::string> url_decode(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out.push_back(' ');
        } else if (s[i] == '%') {
            if (i + 2 >= s.size()) {
                return std::nullopt;
            }
            const int hi = hex_value(s[i + 1]);
            const int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> query_params(std::string_view q)
{
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto part = q.substr(0, amp);
        q.remove_prefix(amp == std::string_view::npos ? q.size() : amp + 1);
        if (part.empty()) {
            continue;
        }
        const auto eq = part.find('=');
        auto name = url_decode(part.substr(0, eq));
        auto value = url_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
        if (!name || !value) {
            return std::nullopt;
        }
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

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
    return fmt::format(
        R"({{"job":"{}","to":{},"total":{},"finished":{},"sent":{},"ok":{},"non_2xx":{},"failed":{},"stopped":{},"done":{}}})",
        job.id, json::quote(job.to), s.total, s.finished(), s.sent, s.ok, non_2xx, s.failed, s.stopped, s.done);
}

} // namespace

struct admin_api::impl {
    admin_settings cfg;
    net::io_context& ioc;
    client::https_client& client;
    metrics::counter& unauthorized;
    metrics::counter& replays_started;
    std::optional<crypto::digest256> token_digest;

    std::mutex db_mutex;
    std::unique_ptr<store::event_db> db;  // guarded by db_mutex

    std::mutex jobs_mutex;
    std::map<std::string, std::shared_ptr<replay_job>, std::less<>> jobs;  // guarded by jobs_mutex
    std::deque<std::string> job_order;                                    // guarded by jobs_mutex

    impl(const admin_settings& s, net::io_context& c, client::https_client& cl, metrics::registry& m)
        : cfg(s), ioc(c), client(cl), unauthorized(m.get_counter("cwhook_admin_unauthorized_total")),
          replays_started(m.get_counter("cwhook_admin_replay_jobs_total"))
    {
    }

    bool authorized(const http::request& req) const
    {
        if (!token_digest) {
            return true;
        }
        const std::string_view auth = req.msg[bhttp::field::authorization];
        constexpr std::string_view scheme = "Bearer ";
        std::string_view presented;
        if (auth.size() > scheme.size() && boost::beast::iequals(auth.substr(0, scheme.size()), scheme)) {
            presented = auth.substr(scheme.size());
        }
        const auto given = crypto::sha256(presented);
        // Evaluated whether or not the header was well-formed: same work either way.
        const bool same = crypto::constant_time_equal(given, *token_digest);
        return same && !presented.empty();
    }

    http::response events_list(const http::request& req);
    http::response event_one(const http::request& req, std::string_view rest);
    http::response replay_start(const http::request& req);
    http::response replay_status(const http::request& req);
    http::response rejections(const http::request& req);
};

namespace {

net::awaitable<http::response> run_guarded(admin_api::impl* p, const http::handler* h, http::request& req)
{
    if (!p->authorized(req)) {
        p->unauthorized.inc();
        req.log_fields.emplace_back("reason", "unauthorized");
        auto res = http::error_response(401, "unauthorized", "a valid Authorization: Bearer token is required",
                                        req.msg.version());
        res.set(bhttp::field::www_authenticate, "Bearer");
        co_return res;
    }
    auto res = co_await (*h)(req);
    co_return res;
}

// A synchronous handler as a router handler.
template <class F>
http::handler sync_handler(F f)
{
    return [f](http::request& req) -> net::awaitable<http::response> { co_return f(req); };
}

} // namespace

http::response admin_api::impl::events_list(const http::request& req)
{
    const unsigned v = req.msg.version();
    auto params = query_params(req.query());
    if (!params) {
        return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    store::event_filter f;
    f.limit = 50;
    const auto now = now_us();
    for (const auto& [name, value] : *params) {
        if (auto why = events::set_filter(f, name, value, now)) {
            return http::error_response(400, "bad_query", fmt::format("{}: {}", name, *why), v);
        }
    }
    if (f.limit > events::max_api_page) {
        return http::error_response(400, "bad_query", fmt::format("limit: at most {}", events::max_api_page), v);
    }
    // One row more than asked tells whether a next page exists without a count.
    const std::size_t wanted = f.limit;
    f.limit = wanted + 1;
    store::db_result<std::vector<store::event_summary>> rows{boost::system::in_place_error, std::string()};
    {
        std::lock_guard lock(db_mutex);
        rows = db->list(f);
    }
    if (!rows) {
        log::warn("admin: query failed", {{"error", rows.error()}});
        return http::error_response(503, "storage_unavailable", {}, v);
    }
    const bool more = rows->size() > wanted;
    if (more) {
        rows->resize(wanted);
    }
    std::string body = "{\"events\":[";
    for (std::size_t i = 0; i < rows->size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::summary_json((*rows)[i]);
    }
    body += "],\"next_cursor\":";
    if (more && !rows->empty()) {
        body += json::quote(events::format_cursor({rows->back().received_at_us, rows->back().id}));
    } else {
        body += "null";
    }
    body += '}';
    return http::json_response(200, std::move(body), v);
}

http::response admin_api::impl::event_one(const http::request& req, std::string_view rest)
{
    const unsigned v = req.msg.version();
    bool raw = false;
    if (rest.ends_with("/raw")) {
        raw = true;
        rest.remove_suffix(4);
    }
    const auto id = parse_id(rest);
    if (!id) {
        return http::error_response(404, "not_found", {}, v);
    }
    store::db_result<std::optional<store::stored_event>> ev{boost::system::in_place_error, std::string()};
    {
        std::lock_guard lock(db_mutex);
        ev = db->get(*id, !raw);
    }
    if (!ev) {
        log::warn("admin: query failed", {{"error", ev.error()}});
        return http::error_response(503, "storage_unavailable", {}, v);
    }
    if (!*ev) {
        return http::error_response(404, "not_found", fmt::format("no event {}", *id), v);
    }
    if (!raw) {
        return http::json_response(200, events::detail_json(**ev), v);
    }
    http::response res{bhttp::status::ok, v};
    const auto& rec = (*ev)->record;
    res.set(bhttp::field::content_type, rec.content_type.empty() ? "application/octet-stream" : rec.content_type);
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = rec.body;
    res.prepare_payload();
    return res;
}

http::response admin_api::impl::replay_start(const http::request& req)
{
    const unsigned v = req.msg.version();
    auto parsed = json::parse_replay_request(req.msg.body());
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        return http::error_response(400, "bad_request", err->detail, v);
    }
    auto& r = std::get<json::replay_request>(parsed);
    if (r.ids.empty() == !r.has_filter) {
        return http::error_response(400, "bad_request", "give either ids or filter", v);
    }
    events::replay_options opt;
    opt.to = r.to;
    opt.rate = r.rate.value_or(0);
    opt.concurrency = static_cast<std::size_t>(std::clamp<std::int64_t>(r.concurrency.value_or(1), 0,
                                                                        max_replay_concurrency));
    opt.stop_on_error = r.stop_on_error;
    if (auto checked = events::replay_request_for(opt); !checked) {
        return http::error_response(400, "bad_request", "to: " + checked.error(), v);
    }
    std::vector<std::int64_t> ids = std::move(r.ids);
    if (r.has_filter) {
        store::event_filter f;
        f.limit = 0;
        const auto now = now_us();
        for (const auto& [name, value] : r.filter) {
            if (name == "cursor") {
                return http::error_response(400, "bad_request", "filter.cursor: not a replay filter", v);
            }
            if (auto why = events::set_filter(f, name, value, now)) {
                return http::error_response(400, "bad_request", fmt::format("filter.{}: {}", name, *why), v);
            }
        }
        store::db_result<std::vector<std::int64_t>> found{boost::system::in_place_error, std::string()};
        {
            std::lock_guard lock(db_mutex);
            found = db->ids(f);
        }
        if (!found) {
            log::warn("admin: query failed", {{"error", found.error()}});
            return http::error_response(503, "storage_unavailable", {}, v);
        }
        ids = std::move(*found);
    }

    auto job = std::make_shared<replay_job>();
    job->id = crypto::random_hex(8);
    job->to = opt.to;
    job->summary.total = ids.size();
    opt.job = job->id;
    {
        std::lock_guard lock(jobs_mutex);
        jobs.emplace(job->id, job);
        job_order.push_back(job->id);
        // Bounded: the oldest finished jobs go first.
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
    replays_started.inc();
    const std::size_t total = ids.size();
    log::info("admin: replay job started", {{"job", job->id}, {"events", total}, {"to", opt.to}});

    events::replay_hooks hooks;
    hooks.load = [this](std::int64_t id) -> std::optional<store::stored_event> {
        std::lock_guard lock(db_mutex);
        auto e = db->get(id, false);
        return e ? std::move(*e) : std::nullopt;
    };
    hooks.record = [this](const store::replay_attempt& a) {
        std::lock_guard lock(db_mutex);
        if (auto r = db->record_replay(a); !r) {
            log::warn("admin: cannot record replay attempt", {{"error", r.error()}});
        }
    };
    hooks.progress = [job](const events::replay_summary& s) {
        std::lock_guard lock(job->mutex);
        job->summary = s;
        if (s.done) {
            log::info("admin: replay job finished", {{"job", job->id}, {"result", events::describe(s)}});
        }
    };
    auto strand = net::make_strand(ioc);
    events::start_replay(strand, client, std::move(ids), std::move(opt), std::move(hooks));
    return http::json_response(202, fmt::format(R"({{"job":"{}","total":{}}})", job->id, total), v);
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

http::response admin_api::impl::rejections(const http::request& req)
{
    const unsigned v = req.msg.version();
    const auto path = req.path();
    constexpr std::string_view base = "/api/rejections";
    if (path.size() > base.size()) {
        const auto id = parse_id(path.substr(base.size() + 1));
        if (!id) {
            return http::error_response(404, "not_found", {}, v);
        }
        store::db_result<std::optional<store::stored_rejection>> r{boost::system::in_place_error, std::string()};
        {
            std::lock_guard lock(db_mutex);
            r = db->rejection(*id);
        }
        if (!r) {
            return http::error_response(503, "storage_unavailable", {}, v);
        }
        if (!*r) {
            return http::error_response(404, "not_found", fmt::format("no rejection {}", *id), v);
        }
        return http::json_response(200, events::rejection_json(**r), v);
    }
    auto params = query_params(req.query());
    if (!params) {
        return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    store::rejection_filter f;
    const auto now = now_us();
    for (const auto& [name, value] : *params) {
        store::event_filter scratch;
        if (name == "reason") {
            f.reason = value;
        } else if (name == "since" || name == "until" || name == "limit") {
            if (auto why = events::set_filter(scratch, name, value, now)) {
                return http::error_response(400, "bad_query", fmt::format("{}: {}", name, *why), v);
            }
            if (name == "since") {
                f.since_us = scratch.since_us;
            } else if (name == "until") {
                f.until_us = scratch.until_us;
            } else if (scratch.limit > events::max_api_page) {
                return http::error_response(400, "bad_query", fmt::format("limit: at most {}", events::max_api_page),
                                            v);
            } else {
                f.limit = scratch.limit;
            }
        } else if (name == "before") {
            const auto id = parse_id(value);
            if (!id) {
                return http::error_response(400, "bad_query", "before: expected an id", v);
            }
            f.before_id = *id;
        } else {
            return http::error_response(400, "bad_query", fmt::format("{}: unknown parameter", name), v);
        }
    }
    const std::size_t wanted = f.limit;
    f.limit = wanted + 1;
    store::db_result<std::vector<store::stored_rejection>> rows{boost::system::in_place_error, std::string()};
    {
        std::lock_guard lock(db_mutex);
        rows = db->rejections(f);
    }
    if (!rows) {
        return http::error_response(503, "storage_unavailable", {}, v);
    }
    const bool more = rows->size() > wanted;
    if (more) {
        rows->resize(wanted);
    }
    std::string body = "{\"rejections\":[";
    for (std::size_t i = 0; i < rows->size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::rejection_json((*rows)[i]);
    }
    body += "],\"next_before\":";
    body += more && !rows->empty() ? std::to_string(rows->back().id) : std::string("null");
    body += '}';
    return http::json_response(200, std::move(body), v);
}

boost::system::result<std::unique_ptr<admin_api>, std::string>
admin_api::create(const admin_settings& s, const std::string& db_path, net::io_context& ioc,
                  client::https_client& client, metrics::registry& metrics)
{
    using out = boost::system::result<std::unique_ptr<admin_api>, std::string>;
    if (!s.listen.empty() && !is_loopback_listen(s.listen) && s.token.empty()) {
        return out(boost::system::in_place_error,
                   fmt::format("admin.listen: \"{}\" is not a loopback address: set admin.token_file (a bearer "
                               "token is required off loopback)",
                               s.listen));
    }
    auto p = std::make_unique<impl>(s, ioc, client, metrics);
    if (!s.token.empty()) {
        p->token_digest = crypto::sha256(s.token);
    }
    auto db = store::event_db::open(db_path, store::db_access::read_write);
    if (!db) {
        return out(boost::system::in_place_error, "admin: " + db.error());
    }
    p->db = std::move(*db);
    return std::unique_ptr<admin_api>(new admin_api(std::move(p)));
}

admin_api::admin_api(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
admin_api::~admin_api() = default;

http::handler admin_api::guarded(http::handler h)
{
    auto owned = std::make_shared<http::handler>(std::move(h));
    impl* p = impl_.get();
    return [p, owned](http::request& req) { return run_guarded(p, owned.get(), req); };
}

void admin_api::add_routes(http::router& r)
{
    impl* p = impl_.get();
    r.add(bhttp::verb::get, "/api/events", guarded(sync_handler([p](http::request& req) {
              const auto path = req.path();
              constexpr std::string_view base = "/api/events";
              if (path.size() == base.size()) {
                  return p->events_list(req);
              }
              return p->event_one(req, path.substr(base.size() + 1));
          })),
          true);
    r.add(bhttp::verb::post, "/api/events/replay",
          guarded(sync_handler([p](http::request& req) { return p->replay_start(req); })));
    r.add(bhttp::verb::get, "/api/replays",
          guarded(sync_handler([p](http::request& req) { return p->replay_status(req); })), true);
    r.add(bhttp::verb::get, "/api/rejections",
          guarded(sync_handler([p](http::request& req) { return p->rejections(req); })), true);
}

} // namespace cwhook::callback
