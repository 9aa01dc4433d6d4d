// Design: a long-poll is a loop of short looks. Each look is one job on the admin db worker
// (read_feed: the positions after the cursor and their events); between looks the request
// holds no thread, only a timer of at most feed_poll_interval and a place in the notifier's
// list, so a slow consumer costs a connection, not a database thread. The store calls
// notify() after each commit of this process that made events forwardable: it completes every
// parked wait at once. A commit that lands between a look and the wait that follows it is not
// lost: the wait compares the notifier's generation with the one read before the look and
// returns at once when they differ. Other instances (PostgreSQL) and other writers (the
// command line's reverify) do not notify; the next look, at most feed_poll_interval later,
// sees their commits. Positions follow commit order (store/outbox.hpp), so a look never shows
// a later position before an earlier one commits and resuming after the last cursor seen never
// skips an event.
#include "callback/detail/admin_feed.hpp"

#include "core/await.hpp"
#include "core/duration.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "events/feed.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/field.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

namespace cwhook::callback::detail {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::size_t default_feed_page = 100;
constexpr std::string_view queue_full = "the admin database queue is full";

// One parked request: completes once, woken (true) or after its timer (false).
struct waiter {
    std::mutex mutex;
    std::function<void(bool)> done; // guarded by mutex; taken by whoever completes first
    net::steady_timer timer;

    explicit waiter(net::io_context& ioc) : timer(ioc) {}

    void finish(bool woken)
    {
        std::function<void(bool)> d;
        {
            std::lock_guard lock(mutex);
            d = std::move(done);
            done = nullptr;
        }
        if (d) {
            d(woken);
        }
    }
};

struct feed_query {
    std::int64_t after = 0;
    bool latest = false;
    std::size_t limit = default_feed_page;
    std::chrono::milliseconds wait{0};
};

// The query, or what is wrong with it ("limit: \"0\": expected an integer from 1 to 1000").
std::variant<feed_query, std::string> read_query(std::string_view text)
{
    auto params = parse_query(text);
    if (!params) {
        return std::string("malformed percent-encoding");
    }
    feed_query q;
    for (const auto& [name, value] : *params) {
        if (name == "after") {
            if (value == "latest") {
                q.latest = true;
                continue;
            }
            const auto c = events::parse_feed_cursor(value);
            if (!c) {
                return fmt::format("after: \"{}\": expected a cursor of this feed, or latest", value);
            }
            q.after = *c;
            q.latest = false;
        } else if (name == "limit") {
            const auto n = parse_integer<std::int64_t>(value);
            if (!n || *n < 1 || *n > static_cast<std::int64_t>(events::max_feed_page)) {
                return fmt::format("limit: \"{}\": expected an integer from 1 to {}", value, events::max_feed_page);
            }
            q.limit = static_cast<std::size_t>(*n);
        } else if (name == "wait") {
            const auto d = parse_duration(value);
            if (!d || d->count() < 0 || *d > max_feed_wait) {
                return fmt::format("wait: \"{}\": expected a duration from 0 to {} (500ms, 30s)", value,
                                   format_duration(max_feed_wait));
            }
            q.wait = *d;
        } else {
            return fmt::format("{}: unknown parameter (after, limit, wait)", name);
        }
    }
    return q;
}

http::response answer(const events::feed_page& page, unsigned v)
{
    std::string body = "{\"events\":[";
    for (std::size_t i = 0; i < page.events.size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        body += events::feed_json(page.events[i]);
    }
    body += "],\"cursor\":\"";
    body += events::format_feed_cursor(page.last);
    body += "\"}";
    auto res = http::json_response(200, std::move(body), v);
    res.set(bhttp::field::cache_control, "no-store");
    return res;
}

// Runs fn(event_db&) on the worker; nullopt when its queue is full. fn captures scalars only
// (GCC 12: docs/STYLE.md).
template <class T, class F> net::awaitable<std::optional<T>> on_db(store::db_worker& worker, F fn)
{
    static_assert(std::is_trivially_destructible_v<F>, "capture references and scalars only");
    return await_completion<T>(
        [&worker, fn](auto done) { return worker.submit([fn, done](store::event_db& db) mutable { done(fn(db)); }); });
}

} // namespace

// The notifications waiting requests share; held by them through their timers, so it outlives
// an admin_feed destroyed while timers are still queued.
struct admin_feed::notifier {
    std::mutex mutex;
    std::uint64_t generation = 0;                // guarded by mutex: notifications so far
    bool stopped = false;                        // guarded by mutex
    std::vector<std::shared_ptr<waiter>> parked; // guarded by mutex

    std::uint64_t current()
    {
        std::lock_guard lock(mutex);
        return generation;
    }

    bool is_stopped()
    {
        std::lock_guard lock(mutex);
        return stopped;
    }

    void wake_all(bool stop)
    {
        std::vector<std::shared_ptr<waiter>> woken;
        {
            std::lock_guard lock(mutex);
            ++generation;
            stopped = stopped || stop;
            woken.swap(parked);
        }
        for (const auto& w : woken) {
            w->finish(true);
        }
    }

    void forget(const waiter* w)
    {
        std::lock_guard lock(mutex);
        std::erase_if(parked, [w](const auto& p) { return p.get() == w; });
    }
};

namespace {

// Completes true when a notification came after `seen` (at once when one already has), false
// after `d`. sig is the caller's member (GCC 12: docs/STYLE.md).
net::awaitable<std::optional<bool>> wait_for_commit(net::io_context& ioc,
                                                    const std::shared_ptr<admin_feed::notifier>& sig,
                                                    std::uint64_t seen, std::chrono::milliseconds d)
{
    // A named callable, not a temporary inside co_await (GCC 12: docs/STYLE.md).
    const auto park = [&ioc, &sig, seen, d](auto done) {
        auto w = std::make_shared<waiter>(ioc);
        w->done = std::move(done);
        bool now = false;
        {
            std::lock_guard lock(sig->mutex);
            now = sig->stopped || sig->generation != seen;
            if (!now) {
                sig->parked.push_back(w);
            }
        }
        if (now) {
            w->finish(true);
            return true;
        }
        // The timer is touched on this thread only; notify() completes the waiter, not the
        // timer, which then runs out (at most feed_poll_interval) holding nothing but w.
        w->timer.expires_after(d);
        w->timer.async_wait([keep = sig, w](const boost::system::error_code&) {
            keep->forget(w.get());
            w->finish(false);
        });
        return true;
    };
    co_return co_await await_completion<bool>(park);
}

// Counts a request in cwhook_admin_feed_waiting_requests from its first wait until it answers.
class parked_count {
public:
    explicit parked_count(metrics::gauge& g) : gauge_(g) {}
    ~parked_count()
    {
        if (on_) {
            gauge_.add(-1);
        }
    }
    parked_count(const parked_count&) = delete;
    parked_count& operator=(const parked_count&) = delete;

    void set()
    {
        if (!on_) {
            on_ = true;
            gauge_.add(1);
        }
    }

private:
    metrics::gauge& gauge_;
    bool on_ = false;
};

} // namespace

admin_feed::admin_feed(store::db_worker& db, net::io_context& ioc, metrics::registry& metrics)
    : db_(db), ioc_(ioc), waiting_(metrics.get_gauge("cwhook_admin_feed_waiting_requests")),
      notifier_(std::make_shared<notifier>())
{
}

admin_feed::~admin_feed() = default;

void admin_feed::notify()
{
    notifier_->wake_all(false);
}

void admin_feed::stop()
{
    notifier_->wake_all(true);
}

net::awaitable<http::response> admin_feed::serve(http::request& req)
{
    const unsigned v = req.msg.version();
    auto parsed = read_query(req.query());
    if (auto* why = std::get_if<std::string>(&parsed)) {
        co_return http::error_response(400, "bad_query", *why, v);
    }
    const feed_query q = std::get<feed_query>(parsed);
    std::int64_t after = q.after;
    if (q.latest) {
        using end_t = store::db_result<std::int64_t>;
        const auto end_of = [](store::event_db& db) { return db.feed_end(); };
        auto end = co_await on_db<end_t>(db_, end_of);
        if (!end) {
            co_return http::error_response(503, "storage_unavailable", queue_full, v);
        }
        if (!*end) {
            log::warn("admin: feed query failed", {{"error", end->error()}});
            co_return http::error_response(503, "storage_unavailable", {}, v);
        }
        after = **end;
    }
    const auto deadline = std::chrono::steady_clock::now() + q.wait;
    const std::size_t limit = q.limit;
    parked_count parked{waiting_};
    for (;;) {
        // Read before the look: a commit from here on ends the wait that follows.
        const auto seen = notifier_->current();
        using page_t = store::db_result<events::feed_page>;
        const auto look = [after, limit](store::event_db& db) { return events::read_feed(db, after, limit); };
        auto page = co_await on_db<page_t>(db_, look);
        if (!page) {
            co_return http::error_response(503, "storage_unavailable", queue_full, v);
        }
        if (!*page) {
            log::warn("admin: feed query failed", {{"error", page->error()}});
            co_return http::error_response(503, "storage_unavailable", {}, v);
        }
        const auto now = std::chrono::steady_clock::now();
        if ((*page)->positions > 0 || now >= deadline || notifier_->is_stopped()) {
            co_return answer(**page, v);
        }
        parked.set();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        const auto nap = std::min(feed_poll_interval, std::max(left, std::chrono::milliseconds(1)));
        co_await wait_for_commit(ioc_, notifier_, seen, nap);
    }
}

} // namespace cwhook::callback::detail
