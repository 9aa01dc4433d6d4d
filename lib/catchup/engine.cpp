#include "catchup/engine.hpp"

#include "catchup/sources.hpp"
#include "core/await.hpp"
#include "core/json_string.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "manage/conditions.hpp"
#include "json/rest_records.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace cwhook::catchup {

namespace net = boost::asio;

namespace {

// A throttled answer is waited for and asked again this many times before the run gives up
// (keeping its place: the watermark is where the last committed batch left it).
constexpr int max_throttle_waits = 8;
constexpr std::chrono::seconds default_throttle_wait{5};
constexpr std::chrono::seconds max_throttle_wait{300};

std::string labels(std::string_view type)
{
    return fmt::format("type=\"{}\"", type);
}

} // namespace

std::string synthesized_body(std::string_view company, std::string_view type, std::string_view action, std::int64_t id,
                             std::optional<std::string_view> entity)
{
    std::string out = R"({"MessageId":null,"FromUrl":null,"CompanyId":)";
    append_json_string(out, company);
    out += R"(,"MemberId":null,"Action":)";
    append_json_string(out, action);
    out += R"(,"Type":)";
    append_json_string(out, type);
    out += fmt::format(R"(,"ID":{},"ProductInstanceId":null,"PartnerId":null,"Entity":)", id);
    if (entity) {
        append_json_string(out, *entity);
    } else {
        out += "null";
    }
    out += R"(,"Metadata":{"key_url":"","source":"catch_up"}})";
    return out;
}

struct engine::state {
    state(net::any_io_executor ex, store::event_store& st, manage::api& a, settings s, std::string c, std::string i,
          metrics::registry& m, timing t)
        : executor(std::move(ex)), store(st), api(a), cfg(std::move(s)), company(std::move(c)), instance(std::move(i)),
          registry(m), time(std::move(t))
    {
        if (!time.now_us) {
            time.now_us = [] { return cwhook::now_us(); };
        }
        cfg.batch = std::clamp<std::size_t>(cfg.batch, 1, 200);
    }

    net::awaitable<void> sleep(std::chrono::milliseconds d)
    {
        if (time.sleep) {
            co_await time.sleep(d);
            co_return;
        }
        net::steady_timer timer(executor, d);
        co_await timer.async_wait(net::use_awaitable);
    }

    // At most cfg.rate calls per second: each call starts no sooner than 1/rate after the last.
    net::awaitable<void> pace()
    {
        if (cfg.rate <= 0) {
            co_return;
        }
        const auto spacing = std::chrono::microseconds(static_cast<std::int64_t>(1e6 / cfg.rate));
        const auto now = std::chrono::steady_clock::now();
        if (next_call > now) {
            co_await sleep(std::chrono::ceil<std::chrono::milliseconds>(next_call - now));
        }
        next_call = std::max(next_call, now) + spacing;
    }

    // One REST call, paced, with throttling waited out.
    template <class T, class Call> net::awaitable<manage::outcome<T>> polite(std::string_view type, Call call)
    {
        for (int waits = 0;; ++waits) {
            co_await pace();
            auto r = co_await call();
            if (r) {
                co_return r;
            }
            registry.get_counter("cwhook_catch_up_rest_errors_total", labels(type)).inc();
            if (r.error().status != 429 || waits >= max_throttle_waits) {
                co_return r;
            }
            const auto wait =
                r.error().retry_after_s > 0
                    ? std::min<std::chrono::seconds>(std::chrono::seconds(r.error().retry_after_s), max_throttle_wait)
                    : default_throttle_wait;
            log::info("catch-up: Manage is throttling; waiting before asking again",
                      {{"type", type}, {"wait_s", static_cast<std::int64_t>(wait.count())}});
            co_await sleep(wait);
        }
    }

    net::awaitable<std::optional<std::int64_t>> watermark_of(const std::string& type)
    {
        auto rows = co_await await_completion<result<std::vector<store::watermark>>>(
            [&](auto done) { return store.read_watermarks(std::move(done)); });
        if (!rows || !*rows) {
            co_return std::nullopt;
        }
        for (const auto& w : **rows) {
            if (w.company == company && w.type == type) {
                co_return w.last_updated_us;
            }
        }
        co_return std::int64_t{0};
    }

    net::awaitable<bool> claim(const std::string& type)
    {
        const auto now = time.now_us();
        const auto until = now + std::chrono::duration_cast<std::chrono::microseconds>(cfg.lease).count();
        auto r = co_await await_completion<result<bool>>(
            [&](auto done) { return store.claim_catch_up(company, type, instance, now, until, std::move(done)); });
        co_return r&&* r&&** r;
    }

    net::awaitable<void> release(const std::string& type)
    {
        co_await await_completion<result<void>>(
            [&](auto done) { return store.release_catch_up(company, type, instance, std::move(done)); });
    }

    net::awaitable<std::int64_t> record(store::catch_up_run run)
    {
        auto r = co_await await_completion<result<std::int64_t>>(
            [&](auto done) { return store.record_run(std::move(run), std::move(done)); });
        co_return r&&* r ? **r : 0;
    }

    // Whether the newest stored event of the record's (type, id) is as new as the record.
    static bool seen(const store::newest_event& e, std::int64_t last_updated_us)
    {
        if (e.entity_updated_at_us) {
            return *e.entity_updated_at_us >= last_updated_us;
        }
        if (auto lu = json::entity_last_updated(e.body)) {
            return *lu >= last_updated_us;
        }
        return e.received_at_us >= last_updated_us;
    }

    net::awaitable<void> run_type(const source& src, const run_options& o, type_report& rep);
    net::awaitable<void> reconcile_type(const source& src, const run_options& o, type_report& rep);
    net::awaitable<std::vector<type_report>> each_type(const run_options& o, bool deletions);

    net::any_io_executor executor;
    store::event_store& store;
    manage::api& api;
    settings cfg;
    std::string company;
    std::string instance;
    metrics::registry& registry;
    timing time;
    std::chrono::steady_clock::time_point next_call{};
};

net::awaitable<void> engine::state::run_type(const source& src, const run_options& o, type_report& rep)
{
    const std::string type(src.type);
    const std::int64_t started = time.now_us();
    auto mark = co_await watermark_of(type);
    if (!mark) {
        rep.error = "cannot read the watermark from the database";
        co_return;
    }
    rep.watermark_before_us = rep.watermark_after_us = *mark;
    const auto overlap = std::chrono::duration_cast<std::chrono::microseconds>(cfg.overlap).count();
    const auto initial = std::chrono::duration_cast<std::chrono::microseconds>(cfg.initial_window).count();
    const std::int64_t from = o.since_us ? *o.since_us : (*mark > 0 ? *mark - overlap : started - initial);

    manage::conditions where;
    where.where("lastUpdated", manage::op::gt,
                manage::date_time{std::chrono::sys_seconds(std::chrono::seconds(from / 1'000'000))});
    auto listed = co_await polite<std::vector<json::rest_record>>(
        type, [&] { return api.list_records(src.collection, where, "id,_info", "lastUpdated asc"); });
    if (!listed) {
        rep.error = listed.error().message;
        co_return;
    }
    auto& records = *listed;
    // Records without a lastUpdated cannot be placed against the watermark: counted, skipped.
    std::erase_if(records, [&](const json::rest_record& r) {
        if (!r.last_updated_us) {
            ++rep.examined;
            return true;
        }
        return false;
    });
    std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
        return std::pair(*a.last_updated_us, a.id) < std::pair(*b.last_updated_us, b.id);
    });
    registry.get_counter("cwhook_catch_up_records_examined_total", labels(type)).inc(records.size());

    for (std::size_t at = 0; at < records.size(); at += cfg.batch) {
        const auto end = std::min(records.size(), at + cfg.batch);
        std::vector<std::int64_t> ids;
        for (std::size_t i = at; i < end; ++i) {
            ids.push_back(records[i].id);
        }
        auto newest = co_await await_completion<result<std::vector<store::newest_event>>>(
            [&](auto done) { return store.newest_events(type, ids, std::move(done)); });
        if (!newest || !*newest) {
            rep.error = "cannot read stored events from the database";
            co_return;
        }
        std::unordered_map<std::int64_t, const store::newest_event*> by_id;
        for (const auto& e : **newest) {
            by_id[e.entity_id] = &e;
        }
        std::vector<const json::rest_record*> unseen;
        for (std::size_t i = at; i < end; ++i) {
            ++rep.examined;
            const auto it = by_id.find(records[i].id);
            if (it != by_id.end() && seen(*it->second, *records[i].last_updated_us)) {
                ++rep.seen;
            } else {
                unseen.push_back(&records[i]);
            }
        }
        const std::int64_t batch_mark = *records[end - 1].last_updated_us;
        if (o.dry_run) {
            rep.synthesized += static_cast<std::int64_t>(unseen.size());
            continue;
        }
        // The full records of the unseen ones, in one request.
        std::map<std::int64_t, json::rest_record> full;
        if (!unseen.empty()) {
            std::vector<manage::condition_value> wanted;
            for (const auto* r : unseen) {
                wanted.emplace_back(r->id);
            }
            manage::conditions by_ids;
            by_ids.where_in("id", wanted);
            auto got = co_await polite<std::vector<json::rest_record>>(
                type, [&] { return api.list_records(src.collection, by_ids, "", ""); });
            if (!got) {
                rep.error = got.error().message;
                co_return;
            }
            for (auto& r : *got) {
                full.emplace(r.id, std::move(r));
            }
        }
        std::vector<store::synthesized_event> events;
        for (const auto* r : unseen) {
            const auto f = full.find(r->id);
            if (f == full.end()) {
                // Gone between the list and the fetch (deleted since): reconciliation's to find.
                ++rep.seen;
                continue;
            }
            const auto& rec = f->second;
            // The full record may be newer than the listing: it is what is stored, under its own time.
            const std::int64_t lu = rec.last_updated_us.value_or(*r->last_updated_us);
            const bool added = rec.date_entered_us && *rec.date_entered_us > from;
            store::synthesized_event e;
            e.company = company;
            e.type = type;
            e.action = added ? "added" : "updated";
            e.entity_id = r->id;
            e.last_updated_us = lu;
            e.body = synthesized_body(company, type, e.action, r->id, rec.json);
            e.body_sha256 = crypto::hex(crypto::sha256(e.body));
            const auto it = by_id.find(r->id);
            e.newest_seen_id = it == by_id.end() ? 0 : it->second->id;
            events.push_back(std::move(e));
        }
        store::watermark advance;
        advance.company = company;
        advance.type = type;
        advance.last_updated_us = batch_mark;
        advance.updated_at_us = time.now_us();
        auto outcomes = co_await await_completion<result<std::vector<store::synthesis_outcome>>>(
            [&](auto done) { return store.synthesize(std::move(events), advance, std::move(done)); });
        if (!outcomes || !*outcomes) {
            rep.error = "cannot store synthesized events";
            co_return;
        }
        for (const auto oc : **outcomes) {
            if (oc == store::synthesis_outcome::synthesized) {
                ++rep.synthesized;
            } else {
                ++rep.seen;
            }
        }
        rep.watermark_after_us = std::max(rep.watermark_after_us, batch_mark);
    }
}

net::awaitable<void> engine::state::reconcile_type(const source& src, const run_options& o, type_report& rep)
{
    const std::string type(src.type);
    const manage::conditions everything;
    auto listed = co_await polite<std::vector<json::rest_record>>(
        type, [&] { return api.list_records(src.collection, everything, "id", ""); });
    if (!listed) {
        rep.error = listed.error().message;
        co_return;
    }
    std::set<std::int64_t> present;
    for (const auto& r : *listed) {
        present.insert(r.id);
    }
    rep.examined = static_cast<std::int64_t>(present.size());
    auto known = co_await await_completion<result<std::vector<std::int64_t>>>(
        [&](auto done) { return store.known_entities(type, std::move(done)); });
    if (!known || !*known) {
        rep.error = "cannot read known entities from the database";
        co_return;
    }
    std::vector<std::int64_t> vanished;
    for (const auto id : **known) {
        if (present.count(id) == 0) {
            vanished.push_back(id);
        }
    }
    // The newest event of each: a callback stored since (the record came back, or Manage's
    // own "deleted" arrived) makes the store skip the synthesized deletion.
    std::unordered_map<std::int64_t, std::int64_t> newest_id;
    if (!vanished.empty()) {
        auto newest = co_await await_completion<result<std::vector<store::newest_event>>>(
            [&](auto done) { return store.newest_events(type, vanished, std::move(done)); });
        if (!newest || !*newest) {
            rep.error = "cannot read stored events from the database";
            co_return;
        }
        for (const auto& e : **newest) {
            newest_id[e.entity_id] = e.id;
        }
    }
    std::vector<store::synthesized_event> events;
    const std::int64_t now = time.now_us();
    for (const auto id : vanished) {
        store::synthesized_event e;
        e.company = company;
        e.type = type;
        e.action = "deleted";
        e.entity_id = id;
        e.last_updated_us = now;
        e.body = synthesized_body(company, type, e.action, id, std::nullopt);
        e.body_sha256 = crypto::hex(crypto::sha256(e.body));
        e.newest_seen_id = newest_id[id];
        events.push_back(std::move(e));
    }
    if (o.dry_run || events.empty()) {
        rep.deleted = o.dry_run ? static_cast<std::int64_t>(events.size()) : 0;
        co_return;
    }
    auto outcomes = co_await await_completion<result<std::vector<store::synthesis_outcome>>>(
        [&](auto done) { return store.synthesize(std::move(events), std::nullopt, std::move(done)); });
    if (!outcomes || !*outcomes) {
        rep.error = "cannot store synthesized deletions";
        co_return;
    }
    for (const auto oc : **outcomes) {
        if (oc == store::synthesis_outcome::synthesized) {
            ++rep.deleted;
        }
    }
}

net::awaitable<std::vector<type_report>> engine::state::each_type(const run_options& o, bool deletions)
{
    const auto& wanted = o.types.empty() ? (deletions ? cfg.reconcile_deletes : cfg.types) : o.types;
    std::vector<type_report> out;
    for (const auto& type : wanted) {
        type_report rep;
        rep.type = type;
        const auto src = find_source(type);
        if (!src) {
            rep.error = fmt::format("no REST collection is known for type \"{}\"", type);
            out.push_back(std::move(rep));
            continue;
        }
        if (!co_await claim(type)) {
            rep.busy = true;
            rep.error = "another run holds this type";
            out.push_back(std::move(rep));
            continue;
        }
        store::catch_up_run run;
        run.company = company;
        run.type = type;
        run.trigger = o.trigger;
        run.started_at_us = time.now_us();
        run.dry_run = o.dry_run;
        run.id = co_await record(run);
        if (deletions) {
            co_await reconcile_type(*src, o, rep);
        } else {
            co_await run_type(*src, o, rep);
        }
        run.finished_at_us = time.now_us();
        run.examined = rep.examined;
        run.synthesized = rep.synthesized;
        run.seen = rep.seen;
        run.deleted = rep.deleted;
        run.watermark_before_us = rep.watermark_before_us;
        run.watermark_after_us = rep.watermark_after_us;
        run.error = rep.error;
        if (run.id != 0) {
            co_await record(run);
        }
        co_await release(type);

        const auto l = labels(type);
        registry
            .get_counter("cwhook_catch_up_runs_total",
                         fmt::format("{},result=\"{}\"", l, rep.error.empty() ? "ok" : "error"))
            .inc();
        if (!o.dry_run) {
            registry.get_counter("cwhook_catch_up_events_synthesized_total", l).inc(rep.synthesized + rep.deleted);
            if (rep.watermark_after_us > 0) {
                registry.get_gauge("cwhook_catch_up_watermark_age_seconds", l)
                    .set(std::max<std::int64_t>(time.now_us() - rep.watermark_after_us, 0) / 1'000'000);
            }
        }
        if (!rep.error.empty()) {
            log::warn("catch-up run failed; the next run resumes from the watermark",
                      {{"type", type}, {"error", rep.error}});
        } else if (!o.dry_run && rep.synthesized + rep.deleted > 0) {
            log::warn(
                "catch-up found changes that callbacks missed",
                {{"type", type}, {"synthesized", rep.synthesized}, {"deleted", rep.deleted}, {"trigger", o.trigger}});
        } else {
            log::info("catch-up run", {{"type", type}, {"examined", rep.examined}, {"trigger", o.trigger}});
        }
        out.push_back(std::move(rep));
    }
    co_return out;
}

engine::engine(net::any_io_executor ex, store::event_store& store, manage::api& api, settings s, std::string company,
               std::string instance, metrics::registry& metrics, timing t)
    : s_(std::make_shared<state>(std::move(ex), store, api, std::move(s), std::move(company), std::move(instance),
                                 metrics, std::move(t)))
{
}

engine::~engine() = default;

const std::vector<std::string>& engine::types() const noexcept
{
    return s_->cfg.types;
}

net::awaitable<std::vector<type_report>> engine::run(run_options o)
{
    auto keep = s_;
    auto reports = co_await keep->each_type(o, false);
    co_return reports;
}

net::awaitable<std::vector<type_report>> engine::reconcile(run_options o)
{
    auto keep = s_;
    auto reports = co_await keep->each_type(o, true);
    co_return reports;
}

} // namespace cwhook::catchup
