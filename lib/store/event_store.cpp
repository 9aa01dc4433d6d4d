// Design: the ingest queue, the same for every backend. One writer thread owns the backend's
// write connection (detail/writer.hpp); nothing else touches it after open(). Submitters only
// append a job to a bounded queue under a mutex, so a submitting thread never waits for disk
// or network; rejection rows have a bounded queue of their own, so that junk requests cannot
// take the room of deliveries. The writer takes both queues whole (rejections first), cuts
// them into batches of max_batch and runs each batch in one transaction (group commit: one
// fsync, one round trip's wait for many requests, which is what makes thousands of durable
// inserts per second possible). Only after COMMIT succeeds are the batch's callbacks invoked,
// so a completion means "durable". If anything in the batch fails, the whole transaction is
// rolled back and every job in it is completed with the mapped error (busy, full,
// unavailable, other). Nothing is retried here: the caller decides what to answer, an
// unacknowledged callback is redelivered by Manage, and the next batch simply tries again,
// which is how the store recovers by itself once a lock is released, space returns or the
// server is back. Failures are logged once per burst, never with a body. Reads (due pending
// rows, the readiness probe) run in the same loop, between write transactions, in queue
// order. stop() drains the queue and closes; callbacks of accepted jobs always run exactly
// once.
#include "store/event_store.hpp"

#include "core/log.hpp"
#include "core/time.hpp"
#include "store/catch_up.hpp"
#include "store/detail/backends.hpp"
#include "store/detail/catch_up.hpp"
#include "store/detail/outbox.hpp"
#include "store/outbox.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <pthread.h>
#include <span>
#include <thread>
#include <utility>

namespace cwhook::store {

std::string_view to_string(event_status s)
{
    switch (s) {
    case event_status::verified: return "verified";
    case event_status::pending: return "pending";
    case event_status::failed: return "failed";
    case event_status::unverified: return "unverified";
    case event_status::synthesized: return "synthesized";
    }
    return "unverified";
}

std::optional<event_status> parse_event_status(std::string_view s)
{
    if (s == "verified") {
        return event_status::verified;
    }
    if (s == "pending") {
        return event_status::pending;
    }
    if (s == "failed") {
        return event_status::failed;
    }
    if (s == "unverified") {
        return event_status::unverified;
    }
    if (s == "synthesized") {
        return event_status::synthesized;
    }
    return std::nullopt;
}

std::string_view to_string(event_source s)
{
    switch (s) {
    case event_source::callback: return "callback";
    case event_source::catch_up: return "catch_up";
    }
    return "callback";
}

std::optional<event_source> parse_event_source(std::string_view s)
{
    if (s == "callback") {
        return event_source::callback;
    }
    if (s == "catch_up") {
        return event_source::catch_up;
    }
    return std::nullopt;
}

bool detail::is_read(const job& j) noexcept
{
    if (const auto* o = std::get_if<outbox_job>(&j)) {
        return o->read_only;
    }
    return std::holds_alternative<pending_job>(j) || std::holds_alternative<probe_job>(j) ||
           std::holds_alternative<counts_job>(j);
}

std::string describe(const settings& s)
{
    if (s.backend == backend::postgres) {
        return fmt::format("postgres: {}", redact_url(s.url));
    }
    return fmt::format("sqlite: {}", s.path);
}

using namespace detail;  // NOLINT(google-build-using-namespace): the job types of this file

struct event_store::impl {
    explicit impl(const settings& s) : settings_(s)
    {
        settings_.max_batch = std::max<std::size_t>(settings_.max_batch, 1);
    }

    template <class Job, class... Args>
    bool enqueue(Args&&... args);
    bool enqueue_rejection(rejection_record r);

    void run();
    void run_batch(std::span<job> batch);
    void run_writes(std::span<job> jobs);
    void run_read(pending_job& j);
    void run_read(probe_job& j);
    void run_read(counts_job& j);
    void run_read(outbox_job& j);
    void note_failure(const failure& e);
    void note_success();
    void stop();

    settings settings_;
    std::unique_ptr<writer> writer_;  // the writer thread's only
    unsettled_counts unsettled_at_open_{};
    bool failing_ = false;  // writer thread only: a failure was logged, recovery not yet

    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<job> queue_;   // guarded by mutex_
    std::size_t waiting_ = 0;  // guarded by mutex_: accepted jobs not yet started
    // Rejection rows wait apart, under their own bound: they come from whoever sends junk,
    // and must never use up the room that queue_limit keeps for genuine deliveries.
    std::vector<job> rejections_;  // guarded by mutex_
    bool stopping_ = false;    // guarded by mutex_
    std::atomic<std::size_t> depth_{0};

    std::mutex join_mutex_;
    std::thread thread_;
    commit_observer observer_;  // set before the writer starts
    std::atomic<bool> forward_unverified_{false};
    std::mutex listener_mutex_;
    std::function<void()> on_forwardable_; // guarded by listener_mutex_
    std::thread::id writer_id_;  // set once before the store is handed out
};

bool event_store::impl::enqueue_rejection(rejection_record r)
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || rejections_.size() >= settings_.rejection_queue_limit) {
            return false;
        }
        rejections_.emplace_back(std::in_place_type<rejection_job>, rejection_job{std::move(r)});
    }
    wake_.notify_one();
    return true;
}

template <class Job, class... Args>
bool event_store::impl::enqueue(Args&&... args)
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || waiting_ >= settings_.queue_limit) {
            return false;
        }
        // Braces, not parentheses: clang before 16 cannot aggregate-initialise from (args...).
        queue_.emplace_back(std::in_place_type<Job>, Job{std::forward<Args>(args)...});
        ++waiting_;
        depth_.store(waiting_, std::memory_order_relaxed);
    }
    wake_.notify_one();
    return true;
}

void event_store::impl::run()
{
    std::vector<job> work;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return !queue_.empty() || !rejections_.empty() || stopping_; });
            if (queue_.empty() && rejections_.empty()) {
                break;  // stopping, and everything accepted has been completed
            }
            // Rejection rows go first, into the same transactions as the other jobs: every job
            // queued after a rejection still runs after it (a probe or a read sees it). Both
            // queues keep their capacity, so a steady load allocates nothing per batch.
            std::move(rejections_.begin(), rejections_.end(), std::back_inserter(work));
            std::move(queue_.begin(), queue_.end(), std::back_inserter(work));
            rejections_.clear();
            queue_.clear();
        }
        for (std::size_t first = 0; first < work.size(); first += settings_.max_batch) {
            const std::size_t n = std::min(settings_.max_batch, work.size() - first);
            const auto batch = std::span<job>(work).subspan(first, n);
            const auto rejections = static_cast<std::size_t>(std::count_if(
                batch.begin(), batch.end(), [](const job& j) { return std::holds_alternative<rejection_job>(j); }));
            {
                std::lock_guard lock(mutex_);
                waiting_ -= n - rejections;
                depth_.store(waiting_, std::memory_order_relaxed);
            }
            run_batch(batch);
        }
        work.clear();
    }
    writer_->close();
}

void event_store::impl::run_batch(std::span<job> batch)
{
    // Reads keep their place in the queue: writes before them are committed first, so a
    // load after a status update sees the update, and the probe never runs inside a batch.
    std::size_t first_write = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!is_read(batch[i])) {
            continue;
        }
        if (i > first_write) {
            run_writes(batch.subspan(first_write, i - first_write));
        }
        if (auto* load = std::get_if<pending_job>(&batch[i])) {
            run_read(*load);
        } else if (auto* counts = std::get_if<counts_job>(&batch[i])) {
            run_read(*counts);
        } else if (auto* o = std::get_if<outbox_job>(&batch[i])) {
            run_read(*o);
        } else {
            run_read(std::get<probe_job>(batch[i]));
        }
        first_write = i + 1;
    }
    if (first_write < batch.size()) {
        run_writes(batch.subspan(first_write));
    }
}

void event_store::impl::run_writes(std::span<job> jobs)
{
    const auto started = std::chrono::steady_clock::now();
    auto r = writer_->write(jobs);
    boost::system::error_code ec;
    if (!r) {
        note_failure(r.error());
        ec = make_error_code(r.error().code);
    } else {
        note_success();
        if (observer_) {
            observer_(jobs.size(), std::chrono::steady_clock::now() - started);
        }
        if (*r > 0) {
            std::lock_guard lock(listener_mutex_);
            if (on_forwardable_) {
                on_forwardable_();
            }
        }
    }
    for (job& j : jobs) {
        if (auto* e = std::get_if<event_job>(&j); e != nullptr && e->done) {
            e->done(ec ? result<insert_outcome>(ec) : result<insert_outcome>(e->outcome));
        } else if (auto* u = std::get_if<status_job>(&j); u != nullptr && u->done) {
            u->done(ec ? result<void>(ec) : result<void>());
        } else if (auto* p = std::get_if<prune_job>(&j); p != nullptr && p->done) {
            p->done(ec ? result<prune_outcome>(ec) : result<prune_outcome>(p->outcome));
        } else if (auto* o = std::get_if<outbox_job>(&j); o != nullptr && o->done) {
            o->done(ec ? result<void>(ec) : result<void>());
        }
    }
}

void event_store::impl::run_read(pending_job& j)
{
    const auto lease = std::chrono::duration_cast<std::chrono::microseconds>(settings_.claim_lease).count();
    auto rows = writer_->claim_due_pending(j.now_us, j.limit, lease);
    if (!rows) {
        note_failure(rows.error());
        if (j.done) {
            j.done(make_error_code(rows.error().code));
        }
        return;
    }
    note_success();
    if (j.done) {
        j.done(std::move(*rows));
    }
}

void event_store::impl::run_read(probe_job& j)
{
    auto r = writer_->probe();
    if (!r) {
        note_failure(r.error());
    } else {
        note_success();
    }
    if (j.done) {
        j.done(r ? result<void>() : result<void>(make_error_code(r.error().code)));
    }
}

void event_store::impl::run_read(counts_job& j)
{
    auto r = writer_->count_unsettled();
    if (!r) {
        note_failure(r.error());
    } else {
        note_success();
    }
    if (j.done) {
        j.done(r ? result<unsettled_counts>(*r) : result<unsettled_counts>(make_error_code(r.error().code)));
    }
}

void event_store::impl::run_read(outbox_job& j)
{
    auto r = writer_->read_outbox(j);
    if (!r) {
        note_failure(r.error());
    } else {
        note_success();
    }
    if (j.done) {
        j.done(r ? result<void>() : result<void>(make_error_code(r.error().code)));
    }
}

void event_store::impl::note_failure(const failure& e)
{
    // Once per burst: a locked, full or unreachable database fails every batch until it recovers.
    if (failing_) {
        return;
    }
    failing_ = true;
    log::warn("store: database operation failed; requests fail until it recovers",
              {{"store", writer_->name()}, {"code", make_error_code(e.code).message()}, {"error", e.message}});
}

void event_store::impl::note_success()
{
    if (!failing_) {
        return;
    }
    failing_ = false;
    log::info("store: database recovered", {{"store", writer_->name()}});
}

void event_store::impl::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (std::this_thread::get_id() == writer_id_) {
        return;  // called from a callback: the writer drains and exits by itself
    }
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) {
        thread_.join();
    }
}

// ---- event_store ------------------------------------------------------------------------

event_store::event_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

event_store::~event_store()
{
    stop();
}

boost::system::result<std::unique_ptr<event_store>, std::string> event_store::open(const settings& s,
                                                                                   commit_observer observer)
{
    auto p = std::make_unique<impl>(s);
    p->observer_ = std::move(observer);
    if (s.backend == backend::sqlite) {
        if (s.path.empty()) {
            return std::string("store: database path is empty");
        }
        auto w = open_sqlite_writer(s);
        if (!w) {
            return fmt::format("{}: {}", s.path, w.error());
        }
        p->writer_ = std::move(*w);
    } else {
        auto w = open_postgres_writer(s);
        if (!w) {
            return fmt::format("{}: {}", redact_url(s.url), w.error());
        }
        p->writer_ = std::move(*w);
    }
    auto counts = p->writer_->count_unsettled();
    if (!counts) {
        return fmt::format("{}: {}", p->writer_->name(), counts.error().message);
    }
    p->unsettled_at_open_ = *counts;

    p->queue_.reserve(std::min(s.queue_limit, p->settings_.max_batch));
    p->rejections_.reserve(std::min<std::size_t>(s.rejection_queue_limit, 256));
    impl* raw = p.get();
    raw->thread_ = std::thread([raw] {
        pthread_setname_np(pthread_self(), "cwhook-store");  // shown by top -H, perf, gdb
        raw->run();
    });
    raw->writer_id_ = raw->thread_.get_id();
    return std::unique_ptr<event_store>(new event_store(std::move(p)));
}

bool event_store::submit_event(event_record ev, insert_callback done)
{
    const bool unverified = impl_->forward_unverified_.load(std::memory_order_relaxed);
    return impl_->enqueue<event_job>(std::move(ev), std::move(done), unverified);
}

void event_store::set_forward_unverified(bool on) noexcept
{
    impl_->forward_unverified_.store(on, std::memory_order_relaxed);
}

void event_store::on_forwardable(std::function<void()> listener)
{
    std::lock_guard lock(impl_->listener_mutex_);
    impl_->on_forwardable_ = std::move(listener);
}

namespace {

// An outbox job whose work fills `*value` inside the batch, reported after COMMIT.
template <class T, class Work, class Done> outbox_job outbox_work(Work work, Done done)
{
    auto value = std::make_shared<T>();
    outbox_job j;
    j.run = [value, work = std::move(work)](sql_runner& db, std::vector<std::int64_t>&) -> outcome<void> {
        auto r = work(db);
        if (!r) {
            return r.error();
        }
        *value = std::move(*r);
        return {};
    };
    j.done = [value, done = std::move(done)](result<void> r) {
        if (!r) {
            done(result<T>(boost::system::in_place_error, r.error()));
        } else {
            done(result<T>(boost::system::in_place_value, std::move(*value)));
        }
    };
    return j;
}

} // namespace

bool event_store::sync_destinations(std::vector<destination_route> routes, std::int64_t now_us, sync_callback done)
{
    return impl_->enqueue<outbox_job>(outbox_work<sync_outcome>(
        [routes = std::move(routes), now_us](sql_runner& db) { return outbox::sync_destinations(db, routes, now_us); },
        std::move(done)));
}

bool event_store::claim_deliveries(std::string destination, bool entity_ordering, std::int64_t now_us,
                                   std::size_t limit, std::int64_t lease_until_us, claim_callback done)
{
    return impl_->enqueue<outbox_job>(outbox_work<std::vector<claimed_delivery>>(
        [destination = std::move(destination), entity_ordering, now_us, limit, lease_until_us](sql_runner& db) {
            return outbox::claim(db, destination, entity_ordering, now_us, limit, lease_until_us);
        },
        std::move(done)));
}

bool event_store::submit_delivery_results(std::vector<delivery_result> results, done_callback done)
{
    outbox_job j;
    j.run = [results = std::move(results)](sql_runner& db, std::vector<std::int64_t>&) {
        return outbox::apply_results(db, results);
    };
    j.done = std::move(done);
    return impl_->enqueue<outbox_job>(std::move(j));
}

bool event_store::pause_destination(std::string name, std::string reason, std::int64_t now_us, done_callback done)
{
    outbox_job j;
    j.run = [name = std::move(name), reason = std::move(reason), now_us](sql_runner& db,
                                                                         std::vector<std::int64_t>&) -> outcome<void> {
        auto r = outbox::set_paused(db, name, true, reason, now_us);
        if (!r) {
            return r.error();
        }
        return {};
    };
    j.done = std::move(done);
    return impl_->enqueue<outbox_job>(std::move(j));
}

bool event_store::read_destinations(destinations_callback done)
{
    auto j = outbox_work<std::vector<destination_status>>([](sql_runner& db) { return outbox::destinations(db); },
                                                          std::move(done));
    j.read_only = true;
    return impl_->enqueue<outbox_job>(std::move(j));
}

// ---- catch-up

namespace {

// A read between write transactions (no write lock).
template <class T, class Work, class Done> outbox_job read_work(Work work, Done done)
{
    auto j = outbox_work<T>(std::move(work), std::move(done));
    j.read_only = true;
    return j;
}

// A write in the batch whose outcome carries no value.
template <class Work> outbox_job write_work(Work work, event_store::done_callback done)
{
    outbox_job j;
    j.run = [work = std::move(work)](sql_runner& db, std::vector<std::int64_t>&) { return work(db); };
    j.done = std::move(done);
    return j;
}

} // namespace

void event_store::set_entity_updated_reader(entity_updated_reader f)
{
    // Under the queue's lock: the writer reads it only after taking jobs under the same lock.
    std::lock_guard lock(impl_->mutex_);
    impl_->writer_->entity_updated = std::move(f);
}

bool event_store::synthesize(std::vector<synthesized_event> events, std::optional<watermark> advance,
                             std::function<void(result<std::vector<synthesis_outcome>>)> done)
{
    auto value = std::make_shared<std::vector<synthesis_outcome>>();
    outbox_job j;
    j.run = [value, events = std::move(events),
             advance = std::move(advance)](sql_runner& db, std::vector<std::int64_t>& forwardable) -> outcome<void> {
        auto r = catch_up::synthesize(db, events, advance, now_us(), forwardable);
        if (!r) {
            return r.error();
        }
        *value = std::move(*r);
        return {};
    };
    j.done = [value, done = std::move(done)](result<void> r) {
        if (!done) {
            return;
        }
        if (!r) {
            done(r.error());
        } else {
            done(std::move(*value));
        }
    };
    return impl_->enqueue<outbox_job>(std::move(j));
}

bool event_store::newest_events(std::string type, std::vector<std::int64_t> entity_ids,
                                std::function<void(result<std::vector<newest_event>>)> done)
{
    return impl_->enqueue<outbox_job>(
        read_work<std::vector<newest_event>>([type = std::move(type), ids = std::move(entity_ids)](
                                                 sql_runner& db) { return catch_up::newest_events(db, type, ids); },
                                             std::move(done)));
}

bool event_store::known_entities(std::string type, std::function<void(result<std::vector<std::int64_t>>)> done)
{
    return impl_->enqueue<outbox_job>(read_work<std::vector<std::int64_t>>(
        [type = std::move(type)](sql_runner& db) { return catch_up::known_entities(db, type); }, std::move(done)));
}

bool event_store::read_watermarks(std::function<void(result<std::vector<watermark>>)> done)
{
    return impl_->enqueue<outbox_job>(
        read_work<std::vector<watermark>>([](sql_runner& db) { return catch_up::watermarks(db); }, std::move(done)));
}

bool event_store::claim_catch_up(std::string company, std::string type, std::string holder, std::int64_t now_us,
                                 std::int64_t lease_until_us, std::function<void(result<bool>)> done)
{
    return impl_->enqueue<outbox_job>(outbox_work<bool>(
        [company = std::move(company), type = std::move(type), holder = std::move(holder), now_us,
         lease_until_us](sql_runner& db) { return catch_up::claim(db, company, type, holder, now_us, lease_until_us); },
        std::move(done)));
}

bool event_store::release_catch_up(std::string company, std::string type, std::string holder, done_callback done)
{
    return impl_->enqueue<outbox_job>(
        write_work([company = std::move(company), type = std::move(type), holder = std::move(holder)](
                       sql_runner& db) { return catch_up::release(db, company, type, holder); },
                   std::move(done)));
}

bool event_store::record_run(catch_up_run run, std::function<void(result<std::int64_t>)> done)
{
    return impl_->enqueue<outbox_job>(outbox_work<std::int64_t>(
        [run = std::move(run)](sql_runner& db) { return catch_up::record_run(db, run); }, std::move(done)));
}

bool event_store::beat(std::string instance, std::int64_t now_us, bool clean_stop, done_callback done)
{
    return impl_->enqueue<outbox_job>(
        write_work([instance = std::move(instance), now_us,
                    clean_stop](sql_runner& db) { return catch_up::beat(db, instance, now_us, clean_stop); },
                   std::move(done)));
}

bool event_store::read_heartbeats(std::function<void(result<std::vector<heartbeat>>)> done)
{
    return impl_->enqueue<outbox_job>(
        read_work<std::vector<heartbeat>>([](sql_runner& db) { return catch_up::heartbeats(db); }, std::move(done)));
}

bool event_store::submit_rejection(rejection_record rej)
{
    return impl_->enqueue_rejection(std::move(rej));
}

bool event_store::submit_status_updates(std::vector<status_update> updates, done_callback done)
{
    return impl_->enqueue<status_job>(std::move(updates), std::move(done));
}

bool event_store::claim_due_pending(std::int64_t now_us, std::size_t limit, pending_callback done)
{
    return impl_->enqueue<pending_job>(now_us, limit, std::move(done));
}

bool event_store::submit_prune(std::int64_t cutoff_us, std::size_t limit, prune_callback done)
{
    return impl_->enqueue<prune_job>(cutoff_us, limit, std::move(done));
}

bool event_store::count_unsettled(counts_callback done)
{
    return impl_->enqueue<counts_job>(std::move(done));
}

bool event_store::probe(done_callback done)
{
    return impl_->enqueue<probe_job>(std::move(done));
}

bool event_store::shared() const noexcept
{
    return impl_->settings_.backend == backend::postgres;
}

unsettled_counts event_store::unsettled_at_open() const noexcept
{
    return impl_->unsettled_at_open_;
}

std::size_t event_store::queue_depth() const noexcept
{
    return impl_->depth_.load(std::memory_order_relaxed);
}

void event_store::stop()
{
    impl_->stop();
}

} // namespace cwhook::store
