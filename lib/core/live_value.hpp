// A value that a configuration reload replaces as a whole while other threads read it.
// Readers take a snapshot (a shared_ptr to an immutable copy) and keep using it for as long
// as one piece of work should see one version; writers publish a new copy.
// Thread-safe: get() and set() may run concurrently from any threads.
#pragma once

#include <atomic>
#include <memory>
#include <utility>

namespace cwhook {

template <class T>
class live_value {
public:
    explicit live_value(T v) : current_(std::make_shared<const T>(std::move(v))) {}

    std::shared_ptr<const T> get() const { return current_.load(); }
    void set(T v) { current_.store(std::make_shared<const T>(std::move(v))); }

private:
    std::atomic<std::shared_ptr<const T>> current_;
};

} // namespace cwhook
