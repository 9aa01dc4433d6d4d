// Design: a fixed set of worker coroutines on one strand pull the next id from a shared
// index, so at most `concurrency` requests are in flight and no lock is needed. The rate
// limit hands out send slots 1/rate apart from one shared clock: whichever worker takes the
// next id also takes the next slot and waits for it, so the rate holds across workers and a
// slow answer never lets a burst through afterwards. Events are loaded one at a time when a
// worker gets to them, so replaying a million events holds a million ids, not bodies; with an
// id source it holds one page of ids. A worker that finds the page used up fetches the next
// one while the others wait on a timer it cancels when the page is in: one fetch at a time,
// and the ids still go out in the source's order.
#include "events/replay.hpp"

#include "core/log.hpp"
#include "core/time.hpp"
#include "crypto/signature.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <exception>

namespace cwhook::events {

namespace net = boost::asio;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::size_t replay_summary::finished() const
{
    return sent + failed;
}

bool replay_summary::all_ok() const
{
    return failed == 0 && non_2xx.empty() && !stopped;
}

std::string describe(const replay_summary& s)
{
    std::size_t non_2xx = 0;
    std::string by_status;
    for (const auto& [status, n] : s.non_2xx) {
        non_2xx += n;
        by_status += fmt::format("{}{} x{}", by_status.empty() ? "" : ", ", status, n);
    }
    auto out = fmt::format("sent {}, 2xx {}, non-2xx {}", s.sent, s.ok, non_2xx);
    if (!by_status.empty()) {
        out += fmt::format(" ({})", by_status);
    }
    out += fmt::format(", failed {}", s.failed);
    if (!s.error.empty()) {
        out += fmt::format(", stopped: {}", s.error);
    } else if (s.stopped) {
        out += fmt::format(", stopped after the first error ({} of {} not sent)", s.total - s.finished(), s.total);
    }
    return out;
}

boost::system::result<client::request, std::string> replay_request_for(const replay_options& o)
{
    auto r = client::request_for_url(o.to);
    if (!r) {
        return r;
    }
    if (o.concurrency == 0) {
        return {boost::system::in_place_error, std::string("concurrency must be at least 1")};
    }
    if (o.rate < 0) {
        return {boost::system::in_place_error, std::string("rate must not be negative")};
    }
    r->method = "POST";
    return r;
}

namespace {

struct replay_state {
    replay_state(const net::any_io_executor& ex, client::https_client& c) : strand(ex), client(c), page_ready(ex)
    {
    }

    net::any_io_executor strand;
    client::https_client& client;
    std::vector<std::int64_t> ids;  // the current page (all ids without a source)
    id_source source;               // empty: ids is the whole selection
    bool exhausted = false;         // the source has no more
    bool fetching = false;          // a worker is reading the next page
    net::steady_timer page_ready;   // the other workers wait on it; cancelled when the page is in
    std::size_t taken = 0;          // ids handed to workers so far
    replay_options opt;
    replay_hooks hooks;
    client::request base;
    replay_summary summary;
    std::size_t next = 0;
    std::size_t active = 0;
    std::chrono::steady_clock::time_point next_slot{};
    bool stop = false;

    void finish()
    {
        summary.done = true;
        if (hooks.progress) {
            hooks.progress(summary);
        }
    }
};

// By reference (GCC 12: docs/STYLE.md); the worker's shared_ptr keeps the state alive.
net::awaitable<void> replay_one(replay_state& state, std::int64_t id)
{
    replay_state* st = &state;
    store::replay_attempt attempt;
    attempt.event_id = id;
    attempt.target = st->opt.to;
    attempt.job = st->opt.job;

    std::optional<store::stored_event> ev;
    if (st->hooks.load) {
        ev = co_await st->hooks.load(id);
    }
    if (!ev) {
        attempt.at_us = now_us();
        attempt.error = "no such event";
        ++st->summary.failed;
    } else {
        client::request req = st->base;
        req.body = std::move(ev->record.body);
        const std::string content_type =
            ev->record.content_type.empty() ? std::string("application/json") : ev->record.content_type;
        req.headers.emplace_back("Content-Type", content_type);
        const std::string signature = st->opt.sign_key ? crypto::sign(*st->opt.sign_key, req.body) : ev->record.signature;
        if (!signature.empty()) {
            req.headers.emplace_back("x-content-signature", signature);
        }
        req.headers.emplace_back(std::string(replay_header), std::to_string(id));
        client::options opt;
        opt.timeout = st->opt.timeout;
        opt.max_response_bytes = std::size_t{64} * 1024;
        opt.allow_private = true;  // the operator named the target; local apps are the point
        attempt.at_us = now_us();
        auto res = co_await st->client.fetch(req, opt);
        if (res) {
            attempt.http_status = static_cast<int>(res->status);
            ++st->summary.sent;
            if (res->status >= 200 && res->status < 300) {
                ++st->summary.ok;
            } else {
                ++st->summary.non_2xx[res->status];
                st->stop = st->stop || st->opt.stop_on_error;
            }
        } else {
            attempt.error = res.error().detail;
            ++st->summary.failed;
            st->stop = st->stop || st->opt.stop_on_error;
        }
    }
    if (!ev) {
        st->stop = st->stop || st->opt.stop_on_error;
    }
    if (st->hooks.record) {
        co_await st->hooks.record(attempt);
    }
    if (st->hooks.progress) {
        st->hooks.progress(st->summary);
    }
    co_return;
}

// The next id to send, fetching a page when the current one is used up; nullopt at the end
// (or once the replay stops).
net::awaitable<std::optional<std::int64_t>> next_id(replay_state& state)
{
    replay_state* st = &state;
    for (;;) {
        if (st->stop) {
            co_return std::nullopt;
        }
        if (st->next < st->ids.size()) {
            ++st->taken;
            co_return st->ids[st->next++];
        }
        if (!st->source || st->exhausted) {
            co_return std::nullopt;
        }
        if (st->fetching) {
            auto [ec] = co_await st->page_ready.async_wait(use_tuple);
            (void)ec;  // cancelled: the page is in (or the fetch failed); look again
            continue;
        }
        st->fetching = true;
        st->page_ready.expires_at(std::chrono::steady_clock::time_point::max());
        id_page page = co_await st->source();
        st->fetching = false;
        st->page_ready.cancel();
        if (!page.error.empty()) {
            st->summary.error = std::move(page.error);
            st->summary.stopped = true;
            st->exhausted = true;
            st->stop = true;
            co_return std::nullopt;
        }
        if (page.ids.empty()) {
            st->exhausted = true;
            // The count given at the start may be off (events pruned or imported since).
            st->summary.total = st->taken;
            co_return std::nullopt;
        }
        st->ids = std::move(page.ids);
        st->next = 0;
    }
}

net::awaitable<void> worker(std::shared_ptr<replay_state> st)
{
    const auto interval = st->opt.rate > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                 std::chrono::duration<double>(1.0 / st->opt.rate))
                                           : std::chrono::steady_clock::duration::zero();
    net::steady_timer timer(st->strand);
    for (;;) {
        const auto next = co_await next_id(*st);
        if (!next) {
            break;
        }
        const std::int64_t id = *next;
        if (st->opt.rate > 0) {
            const auto now = std::chrono::steady_clock::now();
            const auto slot = std::max(now, st->next_slot);
            st->next_slot = slot + interval;
            if (slot > now) {
                timer.expires_at(slot);
                auto [ec] = co_await timer.async_wait(use_tuple);
                (void)ec;
            }
        }
        if (st->stop) {
            st->summary.stopped = true;  // this id is not sent
            break;
        }
        co_await replay_one(*st, id);
    }
    if (st->stop && (st->next < st->ids.size() || !st->exhausted)) {
        st->summary.stopped = true;
    }
    co_return;
}

void launch(const std::shared_ptr<replay_state>& st, std::size_t expected)
{
    auto base = replay_request_for(st->opt);
    if (!base) {
        // Callers validate first; an invalid target fails every event.
        st->summary.failed = expected;
        net::post(st->strand, [st] { st->finish(); });
        return;
    }
    st->base = std::move(*base);
    // A paged selection of unknown size still needs one worker to find out that it is empty.
    const std::size_t wanted = std::max<std::size_t>(st->opt.concurrency, 1);
    const std::size_t workers = st->source ? std::min(wanted, std::max<std::size_t>(expected, 1))
                                           : std::min(wanted, expected);
    if (workers == 0) {
        net::post(st->strand, [st] { st->finish(); });
        return;
    }
    st->active = workers;
    for (std::size_t i = 0; i < workers; ++i) {
        net::co_spawn(st->strand, worker(st), [st](const std::exception_ptr& e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log::error("replay worker failed", {{"error", ex.what()}});
                }
            }
            if (--st->active == 0) {
                st->finish();
            }
        });
    }
}

} // namespace

void start_replay(const net::any_io_executor& strand, client::https_client& client, std::vector<std::int64_t> ids,
                  replay_options options, replay_hooks hooks)
{
    auto st = std::make_shared<replay_state>(strand, client);
    st->ids = std::move(ids);
    st->exhausted = true;
    st->opt = std::move(options);
    st->hooks = std::move(hooks);
    st->summary.total = st->ids.size();
    launch(st, st->ids.size());
}

void start_replay(const net::any_io_executor& strand, client::https_client& client, id_source source,
                  std::size_t expected, replay_options options, replay_hooks hooks)
{
    auto st = std::make_shared<replay_state>(strand, client);
    st->source = std::move(source);
    st->opt = std::move(options);
    st->hooks = std::move(hooks);
    st->summary.total = expected;
    launch(st, expected);
}

} // namespace cwhook::events
