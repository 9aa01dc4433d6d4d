// Design: a mutex-guarded deque and a condition variable; each thread takes one job at a time
// and runs it on its own connection without the lock held, so submitters wait only for a push. Jobs are not batched
// into transactions (unlike event_store's writer): each is a read or a small write of its own,
// and a long one delays only the jobs behind it, never a callback.
#include "store/db_worker.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace cwhook::store {

struct db_worker::impl {
    std::vector<std::unique_ptr<event_db>> dbs;
    std::size_t queue_limit = 0;
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<job> queue;  // guarded by mutex
    bool stopping = false;  // guarded by mutex
    std::vector<std::thread> threads;

    void run(event_db& db)
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
            j(db);
        }
    }
};

db_worker::db_worker(std::unique_ptr<event_db> db, const std::string& thread_name, std::size_t queue_limit)
    : db_worker(make_pool(std::move(db)), thread_name, queue_limit)
{
}

db_worker::db_worker(std::vector<std::unique_ptr<event_db>> dbs, const std::string& thread_name,
                     std::size_t queue_limit)
    : impl_(std::make_unique<impl>())
{
    CWHOOK_CHECK(!dbs.empty());
    impl_->dbs = std::move(dbs);
    impl_->queue_limit = std::max<std::size_t>(queue_limit, 1);
    auto* p = impl_.get();
    for (auto& db : impl_->dbs) {
        event_db* conn = db.get();
        auto& t = impl_->threads.emplace_back([p, conn] { p->run(*conn); });
        // Named here rather than by the thread itself, so the name is there when the
        // constructor returns (tools and tests that look for the thread see it at once).
        pthread_setname_np(t.native_handle(), thread_name.substr(0, 15).c_str());
    }
}

std::vector<std::unique_ptr<event_db>> db_worker::make_pool(std::unique_ptr<event_db> db)
{
    std::vector<std::unique_ptr<event_db>> pool;
    pool.push_back(std::move(db));
    return pool;
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
    for (auto& t : impl_->threads) {
        t.join();
    }
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
