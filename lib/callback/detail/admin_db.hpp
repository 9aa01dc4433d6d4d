// Awaiting a job on the admin API's database worker (store/db_worker.hpp) from a handler.
// Header-only; used by the admin API's handlers.
#pragma once

#include "core/await.hpp"
#include "store/db_worker.hpp"
#include "store/event_db.hpp"

#include <optional>
#include <type_traits>

namespace cwhook::callback::detail {

// Runs fn(event_db&) on the worker and completes with its result; nullopt when the worker's
// queue is full. fn is copied into the job and, through await_completion, into a coroutine
// frame: it captures references and scalars only (GCC 12: docs/STYLE.md). Its references point into
// the awaiting frame, which outlives the job: the worker drops queued jobs before the
// io_context that owns the frames goes away.
template <class T, class F> boost::asio::awaitable<std::optional<T>> on_db(store::db_worker& worker, F fn)
{
    static_assert(std::is_trivially_destructible_v<F>, "capture references and scalars only");
    return await_completion<T>(
        [&worker, fn](auto done) { return worker.submit([fn, done](store::event_db& db) mutable { done(fn(db)); }); });
}

} // namespace cwhook::callback::detail
