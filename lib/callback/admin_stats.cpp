// Design: the buckets are counted by the database (event_db::counts_in_window, one GROUP BY
// per chart over the indexed received-time range) on the admin database worker, so a busy
// window costs three small result sets, not its rows. At most max_series names per chart are
// shown, the rest summed under "other" (types and reasons come from untrusted requests).
#include "callback/detail/admin_stats.hpp"

#include "callback/detail/admin_db.hpp"
#include "core/json_string.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "store/event_db.hpp"

#include <boost/beast/http/field.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace cwhook::callback::detail {

namespace {

constexpr std::size_t max_series = 8;

using series = std::map<std::string, std::vector<std::int64_t>, std::less<>>;

struct window_spec {
    std::int64_t window_s;
    std::int64_t bucket_s;
};

struct stats_result {
    series by_type;
    series by_status;
    series by_reason;
    std::int64_t events = 0;
    std::int64_t rejections = 0;
    std::int64_t pending = 0;
    std::int64_t failed = 0;
};

struct stats_query {
    std::int64_t start_us = 0;
    std::int64_t end_us = 0;
    std::int64_t bucket_us = 0;
    std::size_t buckets = 0;
};

// Adds one database row (bucket index, name, count). The query's range makes every index fall
// inside the window; the clamp only keeps a bad row from writing out of bounds.
void add(series& s, const store::bucket_count& row, std::size_t buckets)
{
    const std::string_view name = row.key.empty() ? std::string_view("(none)") : std::string_view(row.key);
    auto it = s.find(name);
    if (it == s.end()) {
        it = s.emplace(std::string(name), std::vector<std::int64_t>(buckets, 0)).first;
    }
    const auto b = std::clamp<std::int64_t>(row.bucket, 0, static_cast<std::int64_t>(buckets) - 1);
    it->second[static_cast<std::size_t>(b)] += row.count;
}

store::db_result<stats_result> count_window(store::event_db& db, const stats_query& q)
{
    stats_result out;
    auto counts = db.counts_in_window(q.start_us, q.end_us, q.bucket_us);
    if (!counts) {
        return counts.error();
    }
    for (const auto& row : counts->by_type) {
        add(out.by_type, row, q.buckets);
    }
    for (const auto& row : counts->by_status) {
        add(out.by_status, row, q.buckets);
        out.events += row.count;
    }
    for (const auto& row : counts->by_reason) {
        add(out.by_reason, row, q.buckets);
        out.rejections += row.count;
    }
    for (const auto st : {store::event_status::pending, store::event_status::failed}) {
        store::event_filter one;
        one.status = st;
        one.limit = 0;
        auto n = db.count(one);
        if (!n) {
            return n.error();
        }
        (st == store::event_status::pending ? out.pending : out.failed) = *n;
    }
    return out;
}

// The max_series largest by total; the others summed as "other".
void append_series(std::string& out, series& s)
{
    std::vector<std::pair<std::int64_t, const series::value_type*>> order;
    for (const auto& kv : s) {
        std::int64_t total = 0;
        for (const auto n : kv.second) {
            total += n;
        }
        order.emplace_back(total, &kv);
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<std::int64_t> other;
    out += '{';
    for (std::size_t i = 0; i < order.size(); ++i) {
        const auto& [name, counts] = *order[i].second;
        if (i >= max_series) {
            other.resize(counts.size(), 0);
            for (std::size_t b = 0; b < counts.size(); ++b) {
                other[b] += counts[b];
            }
            continue;
        }
        out += i > 0 ? "," : "";
        append_json_string(out, name);
        out += ":[" + fmt::format("{}", fmt::join(counts, ",")) + "]";
    }
    if (!other.empty()) {
        out += ",\"other\":[" + fmt::format("{}", fmt::join(other, ",")) + "]";
    }
    out += '}';
}

} // namespace

boost::asio::awaitable<http::response> serve_stats(store::db_worker* db, http::request& req)
{
    const unsigned v = req.msg.version();
    const auto params = parse_query(req.query());
    if (!params) {
        co_return http::error_response(400, "bad_query", "malformed percent-encoding", v);
    }
    window_spec w{3600, 60};
    for (const auto& [name, value] : *params) {
        if (name != "window") {
            co_return http::error_response(400, "bad_query", fmt::format("{}: unknown parameter", name), v);
        }
        if (value == "1h") {
            w = {3600, 60};
        } else if (value == "6h") {
            w = {6 * 3600, 300};
        } else if (value == "24h") {
            w = {24 * 3600, 900};
        } else {
            co_return http::error_response(400, "bad_query", "window: expected 1h, 6h or 24h", v);
        }
    }
    // Buckets end with the current one, aligned to the bucket size.
    const std::int64_t bucket_us = w.bucket_s * 1'000'000;
    stats_query q;
    q.bucket_us = bucket_us;
    q.buckets = static_cast<std::size_t>(w.window_s / w.bucket_s);
    q.end_us = (now_us() / bucket_us + 1) * bucket_us;
    q.start_us = q.end_us - w.window_s * 1'000'000;
    const stats_query* query = &q;
    const auto run = [query](store::event_db& d) { return count_window(d, *query); };
    auto r = co_await on_db<store::db_result<stats_result>>(*db, run);
    if (!r) {
        co_return http::error_response(503, "storage_unavailable", "the admin database queue is full", v);
    }
    if (!*r) {
        log::warn("admin: stats query failed", {{"error", r->error()}});
        co_return http::error_response(503, "storage_unavailable", {}, v);
    }
    auto& s = **r;
    std::string body = fmt::format(R"({{"window_s":{},"bucket_s":{},"start_s":{},"buckets":{},)", w.window_s,
                                   w.bucket_s, q.start_us / 1'000'000, q.buckets);
    body += fmt::format(R"("events":{{"total":{},"by_type":)", s.events);
    append_series(body, s.by_type);
    body += ",\"by_status\":";
    append_series(body, s.by_status);
    body += fmt::format(R"(}},"rejections":{{"total":{},"by_reason":)", s.rejections);
    append_series(body, s.by_reason);
    body += fmt::format(R"(}},"pending":{},"failed":{}}})", s.pending, s.failed);
    co_return http::json_response(200, std::move(body), v);
}

} // namespace cwhook::callback::detail
