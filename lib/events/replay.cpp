// Design: a fixed set of worker coroutines on one strand pull the next id from a shared
// index, so at most `concurrency` requests are in flight and no lock is needed. The rate
// limit hands out send slots 1/rate apart from one shared clock: whichever worker takes the
// next id also takes the next slot and waits for it, so the rate holds across workers and a
// slow answer never lets a burst through afterwards. Events are loaded one at a time when a
// worker gets to them, so replaying a million events holds a million ids, not bodies.
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
    if (s.stopped) {
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
    replay_state(net::any_io_executor ex, client::https_client& c) : strand(std::move(ex)), client(c) {}

    net::any_io_executor strand;
    client::https_client& client;
    std::vector<std::int64_t> ids;
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

// By reference: GCC 12 destroys by-value class parameters of a coroutine awaited in place
// twice; the worker's shared_ptr keeps the state alive.
net::awaitable<void> replay_one(replay_state& state, std::int64_t id)
{
    replay_state* st = &state;
    store::replay_attempt attempt;
    attempt.event_id = id;
    attempt.target = st->opt.to;
    attempt.job = st->opt.job;

    auto ev = st->hooks.load ? st->hooks.load(id) : std::nullopt;
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
            attempt.error = client::https_client::last_error();
            if (attempt.error.empty()) {
                attempt.error = res.error().message();
            }
            ++st->summary.failed;
            st->stop = st->stop || st->opt.stop_on_error;
        }
    }
    if (!ev) {
        st->stop = st->stop || st->opt.stop_on_error;
    }
    if (st->hooks.record) {
        st->hooks.record(attempt);
    }
    if (st->hooks.progress) {
        st->hooks.progress(st->summary);
    }
    co_return;
}

net::awaitable<void> worker(std::shared_ptr<replay_state> st)
{
    const auto interval = st->opt.rate > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                 std::chrono::duration<double>(1.0 / st->opt.rate))
                                           : std::chrono::steady_clock::duration::zero();
    net::steady_timer timer(st->strand);
    while (!st->stop && st->next < st->ids.size()) {
        const std::int64_t id = st->ids[st->next++];
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
            break;
        }
        co_await replay_one(*st, id);
    }
    if (st->stop && st->next < st->ids.size()) {
        st->summary.stopped = true;
    }
    co_return;
}

} // namespace

void start_replay(const net::any_io_executor& strand, client::https_client& client, std::vector<std::int64_t> ids,
                  replay_options options, replay_hooks hooks)
{
    auto st = std::make_shared<replay_state>(strand, client);
    st->ids = std::move(ids);
    st->opt = std::move(options);
    st->hooks = std::move(hooks);
    st->summary.total = st->ids.size();
    auto base = replay_request_for(st->opt);
    if (!base) {
        // Callers validate first; an invalid target fails every event.
        st->summary.failed = st->ids.size();
        net::post(strand, [st] { st->finish(); });
        return;
    }
    st->base = std::move(*base);
    const std::size_t workers = std::min(std::max<std::size_t>(st->opt.concurrency, 1), st->ids.size());
    if (workers == 0) {
        net::post(strand, [st] { st->finish(); });
        return;
    }
    st->active = workers;
    for (std::size_t i = 0; i < workers; ++i) {
        net::co_spawn(strand, worker(st), [st](const std::exception_ptr& e) {
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

} // namespace cwhook::events
