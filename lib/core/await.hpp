// Bridges callback-style completions (store jobs, single-flight waiters), which may fire on
// any thread, back into a coroutine on its own executor.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>

namespace cwhook {

// submit(cb) hands `cb` (copyable, callable once with a T) to some producer and returns
// whether the producer accepted it. The result is nullopt when it did not.
template <class T, class Submit>
boost::asio::awaitable<std::optional<T>> await_completion(Submit submit)
{
    namespace net = boost::asio;
    // The handler's own executor, not `co_await this_coro::executor` (GCC 12: docs/STYLE.md).
    co_return co_await net::async_initiate<decltype(net::use_awaitable), void(std::optional<T>)>(
        [&submit](auto handler) {
            auto ex = net::get_associated_executor(handler);
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            const bool accepted = submit([h, ex](T value) {
                net::post(ex, [h, v = std::move(value)]() mutable { std::move (*h)(std::optional<T>(std::move(v))); });
            });
            if (!accepted) {
                net::post(ex, [h]() mutable { std::move (*h)(std::optional<T>{}); });
            }
        },
        net::use_awaitable);
}

} // namespace cwhook
