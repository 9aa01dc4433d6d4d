// Blocking calls on an event_store for tests: each submits one job and waits for its
// completion (a second completion would throw on the writer thread and abort the test binary,
// which is what "called exactly once" deserves). A job the store refuses to queue comes back
// as storage_queue_full. Also the filter builders the store tests share.
#pragma once

#include "store/catch_up.hpp"
#include "store/event_db.hpp"
#include "store/event_store.hpp"
#include "store/outbox.hpp"

#include <functional>
#include <future>
#include <memory>
#include <vector>

namespace cwhook::store::test_calls {

// One completion, awaited with a future.
template <class T> class awaiter {
public:
    std::function<void(T)> callback()
    {
        return [p = promise_](T r) { p->set_value(std::move(r)); };
    }
    T get() { return future_.get(); }

private:
    std::shared_ptr<std::promise<T>> promise_ = std::make_shared<std::promise<T>>();
    std::future<T> future_ = promise_->get_future();
};

// Submits with `submit(store, callback)` and waits.
template <class T, class Submit> T call(Submit submit)
{
    awaiter<T> done;
    if (!submit(done.callback())) {
        return T(errc::storage_queue_full);
    }
    return done.get();
}

inline result<insert_outcome> insert(event_store& store, event_record ev)
{
    return call<result<insert_outcome>>([&](auto cb) { return store.submit_event(std::move(ev), std::move(cb)); });
}

inline result<void> probe(event_store& store)
{
    return call<result<void>>([&](auto cb) { return store.probe(std::move(cb)); });
}

inline result<void> update_status(event_store& store, std::vector<status_update> updates)
{
    return call<result<void>>([&](auto cb) { return store.submit_status_updates(std::move(updates), std::move(cb)); });
}

inline result<std::vector<pending_event>> claim_due(event_store& store, std::int64_t now_us, std::size_t limit)
{
    return call<result<std::vector<pending_event>>>(
        [&](auto cb) { return store.claim_due_pending(now_us, limit, std::move(cb)); });
}

inline result<prune_outcome> prune(event_store& store, std::int64_t cutoff_us, std::size_t limit)
{
    return call<result<prune_outcome>>([&](auto cb) { return store.submit_prune(cutoff_us, limit, std::move(cb)); });
}

inline result<unsettled_counts> count_unsettled(event_store& store)
{
    return call<result<unsettled_counts>>([&](auto cb) { return store.count_unsettled(std::move(cb)); });
}

inline result<sync_outcome> sync_destinations(event_store& store, std::vector<destination_route> routes,
                                              std::int64_t now_us = 0)
{
    return call<result<sync_outcome>>(
        [&](auto cb) { return store.sync_destinations(std::move(routes), now_us, std::move(cb)); });
}

inline result<std::vector<claimed_delivery>> claim_deliveries(event_store& store, const std::string& destination,
                                                              std::int64_t now_us, std::int64_t lease_until_us,
                                                              bool entity_ordering = false, std::size_t limit = 100)
{
    return call<result<std::vector<claimed_delivery>>>([&](auto cb) {
        return store.claim_deliveries(destination, entity_ordering, now_us, limit, lease_until_us, std::move(cb));
    });
}

inline result<void> deliver_results(event_store& store, std::vector<delivery_result> results)
{
    return call<result<void>>(
        [&](auto cb) { return store.submit_delivery_results(std::move(results), std::move(cb)); });
}

inline result<std::vector<synthesis_outcome>> synthesize(event_store& store, std::vector<synthesized_event> events,
                                                         std::optional<watermark> advance = std::nullopt)
{
    return call<result<std::vector<synthesis_outcome>>>(
        [&](auto cb) { return store.synthesize(std::move(events), std::move(advance), std::move(cb)); });
}

inline result<std::vector<newest_event>> newest_events(event_store& store, std::string type,
                                                       std::vector<std::int64_t> ids)
{
    return call<result<std::vector<newest_event>>>(
        [&](auto cb) { return store.newest_events(std::move(type), std::move(ids), std::move(cb)); });
}

inline result<std::vector<std::int64_t>> known_entities(event_store& store, std::string type)
{
    return call<result<std::vector<std::int64_t>>>(
        [&](auto cb) { return store.known_entities(std::move(type), std::move(cb)); });
}

inline result<std::vector<watermark>> read_watermarks(event_store& store)
{
    return call<result<std::vector<watermark>>>([&](auto cb) { return store.read_watermarks(std::move(cb)); });
}

inline result<bool> claim_catch_up(event_store& store, std::string company, std::string type, std::string holder,
                                   std::int64_t now_us, std::int64_t lease_until_us)
{
    return call<result<bool>>([&](auto cb) {
        return store.claim_catch_up(std::move(company), std::move(type), std::move(holder), now_us, lease_until_us,
                                    std::move(cb));
    });
}

inline result<void> release_catch_up(event_store& store, std::string company, std::string type, std::string holder)
{
    return call<result<void>>([&](auto cb) {
        return store.release_catch_up(std::move(company), std::move(type), std::move(holder), std::move(cb));
    });
}

inline result<std::int64_t> record_run(event_store& store, catch_up_run run)
{
    return call<result<std::int64_t>>([&](auto cb) { return store.record_run(std::move(run), std::move(cb)); });
}

inline result<void> beat(event_store& store, std::string instance, std::int64_t now_us, bool clean_stop = false)
{
    return call<result<void>>(
        [&](auto cb) { return store.beat(std::move(instance), now_us, clean_stop, std::move(cb)); });
}

inline result<std::vector<heartbeat>> read_heartbeats(event_store& store)
{
    return call<result<std::vector<heartbeat>>>([&](auto cb) { return store.read_heartbeats(std::move(cb)); });
}

inline destination_route route(std::string name, std::vector<std::string> types = {},
                               std::vector<std::string> actions = {})
{
    destination_route r;
    r.name = std::move(name);
    r.types = std::move(types);
    r.actions = std::move(actions);
    return r;
}

// A filter (event_filter or rejection_filter) with the members `set` sets, the others at
// their defaults.
template <class Filter = event_filter, class Set> Filter filter_of(Set set)
{
    Filter f;
    set(f);
    return f;
}

// Every row: no filter, no limit.
inline event_filter all_rows()
{
    event_filter f;
    f.limit = 0;
    return f;
}

} // namespace cwhook::store::test_calls
