// Design: a mutex-guarded deque and a condition variable; the thread takes one job at a time
// and runs it without the lock held, so submitters wait only for a push. Jobs are not batched
// into transactions (unlike event_store's writer): each is a read or a small write of its own,
// and a long one delays only the jobs behind it, never a callback.
#include "store/db_worker.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <thread>

namespace cwhook::store {

struct db_worker::impl {
    std::unique_ptr<event_db> db;
    std::size_t queue_limit = 0;
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<job> queue;  // guarded by mutex
    bool stopping = false;  // guarded by mutex
    std::thread thread;

    void run()
    {
        for (;;) {
            job j;
            {
                std::unique_lock lock(mutex);
                cv.wait(lock, [this] { return stopping || !queue.empty(); });
                if (stopping) {
                    return;
                }
                j = std::move(queue.front());
                queue.pop_front();
            }
            j(*db);
        }
    }
};

db_worker::db_worker(std::unique_ptr<event_db> db, const std::string& thread_name, std::size_t queue_limit)
    : impl_(std::make_unique<impl>())
{
    impl_->db = std::move(db);
    impl_->queue_limit = std::max<std::size_t>(queue_limit, 1);
    auto* p = impl_.get();
    impl_->thread = std::thread([p] { p->run(); });
    // Named here rather than by the thread itself, so the name is there when the constructor
    // returns (tools and tests that look for the thread see it at once).
    pthread_setname_np(impl_->thread.native_handle(), thread_name.substr(0, 15).c_str());
}

db_worker::~db_worker()
{
    std::deque<job> dropped;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        dropped.swap(impl_->queue);
    }
    impl_->cv.notify_all();
    impl_->thread.join();
    // Destroyed here, outside the lock: a job's captures may own completion handlers.
    dropped.clear();
}

bool db_worker::submit(job j)
{
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping || impl_->queue.size() >= impl_->queue_limit) {
            return false;
        }
        impl_->queue.push_back(std::move(j));
    }
    impl_->cv.notify_one();
    return true;
}

std::size_t db_worker::queue_depth() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->queue.size();
}

} // namespace cwhook::store
