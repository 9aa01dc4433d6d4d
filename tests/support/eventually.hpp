// Waiting on a condition that another thread or process makes true: tests wait for an event,
// never for a guessed time. The deadline is generous and only bounds a test that fails.
#pragma once

#include <chrono>
#include <thread>

namespace cwhook::test {

// Polls `pred` until it holds (true) or `timeout` passes (false).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(60))
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

} // namespace cwhook::test
