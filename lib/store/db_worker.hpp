// Threads that each own one event_db connection and run jobs on it, one at a time, taken in
// the order they were submitted (with one connection, jobs also finish in that order). Lets asynchronous code (the admin API's sessions) use the
// synchronous database without blocking the threads that serve requests: a job runs here
// and hands its result to a completion that posts back to the caller's executor.
// Thread-safe: submit() may be called from any thread; jobs run on the worker threads only.
#pragma once

#include "store/event_db.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cwhook::store {

class db_worker {
public:
    using job = std::function<void(event_db&)>;

    // Takes the connection; the thread (named `thread_name`, at most 15 characters, as
    // shown by top -H) starts at once. At most `queue_limit` jobs wait.
    db_worker(std::unique_ptr<event_db> db, const std::string& thread_name, std::size_t queue_limit = 1024);
    // A pool: one thread per connection (at least one), all taking from one queue.
    db_worker(std::vector<std::unique_ptr<event_db>> dbs, const std::string& thread_name,
              std::size_t queue_limit = 1024);
    // Finishes the job that is running, drops the queued ones (their completions never run)
    // and joins the thread.
    ~db_worker();
    db_worker(const db_worker&) = delete;
    db_worker& operator=(const db_worker&) = delete;

    // false when the queue is full or the worker is stopping: the job will not run.
    bool submit(job j);

    std::size_t queue_depth() const;

    struct impl;

private:
    static std::vector<std::unique_ptr<event_db>> make_pool(std::unique_ptr<event_db> db);
    std::unique_ptr<impl> impl_;
};

} // namespace cwhook::store
