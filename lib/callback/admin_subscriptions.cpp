// Design: the console shows exactly the plan `cwhook subscriptions sync` would carry out
// (manage/sync.hpp, the same pure planner and report), and an apply names the digest of the
// plan it was shown. The plan is made again from a fresh list before anything changes, so a
// subscription changed in Manage (or a prune box ticked elsewhere) between looking and
// confirming makes the apply fail with 409 instead of doing what nobody saw. The token buys no
// new reach: only the configuration's subscriptions can be created, and only entries pointing
// at this receiver can be deleted (make_plan's rule). Looking is cheap for Manage: the view
// reuses a listing for 2 s, while an apply always lists afresh.
#include "callback/detail/admin_subscriptions.hpp"

#include "core/json_string.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "manage/sync.hpp"
#include "json/value.hpp"

#include <fmt/format.h>

namespace cwhook::callback::detail {

namespace net = boost::asio;
using json::value;

namespace {

// "true"/"1" or "false"/"0"/absent; nullopt for anything else.
std::optional<bool> flag(std::string_view text)
{
    if (text.empty() || text == "false" || text == "0") {
        return false;
    }
    if (text == "true" || text == "1") {
        return true;
    }
    return std::nullopt;
}

value plan_answer(const manage::plan& p, bool prune, std::size_t declared, std::size_t listed)
{
    const std::vector<manage::applied> none;
    const auto rows = manage::report_rows(p, none);
    const auto report = manage::report_json(rows, true, prune);
    std::size_t ours = 0;
    for (const auto& i : p.items) {
        ours += i.actual ? 1 : 0;
    }
    const auto count = [&p](manage::action a) { return value::make_int(static_cast<std::int64_t>(p.count(a))); };
    return value::make_object({
        {"configured", value::make_bool(true)},
        {"declared", value::make_int(static_cast<std::int64_t>(declared))},
        {"prune", value::make_bool(prune)},
        {"plan_id", value::make_string(manage::plan_digest(p))},
        {"changes", value::make_bool(p.has_changes())},
        {"summary", value::make_object({{"missing", count(manage::action::create)},
                                        {"inactive", count(manage::action::reenable)},
                                        {"description_differs", count(manage::action::update)},
                                        {"extra", count(manage::action::remove)},
                                        {"in_sync", count(manage::action::unchanged)}})},
        // Entries of other integrations (their url is not this receiver's): never shown or touched.
        {"others", value::make_int(static_cast<std::int64_t>(listed - ours))},
        {"plan", *report.find("plan")},
    });
}

} // namespace

admin_subscriptions::admin_subscriptions(manage::api* api, std::vector<manage::subscription> desired,
                                         std::string why_not, gauges g)
    : api_(api), desired_(std::move(desired)), why_not_(std::move(why_not)), gauges_(g)
{
}

void admin_subscriptions::record(const manage::plan& p, const std::vector<manage::applied>& results)
{
    // What is still missing or inactive: the plan's creates and re-enables, less those applied.
    auto missing = static_cast<std::int64_t>(p.count(manage::action::create));
    auto inactive = static_cast<std::int64_t>(p.count(manage::action::reenable));
    for (const auto& r : results) {
        missing -= r.ok && r.item->what == manage::action::create ? 1 : 0;
        inactive -= r.ok && r.item->what == manage::action::reenable ? 1 : 0;
    }
    gauges_.missing.set(missing);
    gauges_.inactive.set(inactive);
}

net::awaitable<manage::outcome<std::vector<manage::callback>>> admin_subscriptions::list_for_view()
{
    {
        std::lock_guard lock(listing_mutex_);
        if (listing_ && std::chrono::steady_clock::now() - listing_->at < listing_reuse) {
            co_return listing_->entries;
        }
    }
    const manage::conditions everything;
    auto fresh = co_await api_->list_callbacks(everything);
    if (fresh) {
        remember(*fresh);
    }
    co_return fresh;
}

void admin_subscriptions::remember(const std::vector<manage::callback>& entries)
{
    std::lock_guard lock(listing_mutex_);
    listing_ = listing{std::chrono::steady_clock::now(), entries};
}

void admin_subscriptions::forget()
{
    std::lock_guard lock(listing_mutex_);
    listing_.reset();
}

net::awaitable<http::response> admin_subscriptions::show(http::request& req)
{
    const unsigned v = req.msg.version();
    bool prune = false;
    const auto params = parse_query(req.query());
    if (!params) {
        co_return http::error_response(400, "bad_request", "the query string is not valid percent-encoding", v);
    }
    for (const auto& [name, text] : *params) {
        const auto b = flag(text);
        if (name != "prune") {
            co_return http::error_response(400, "bad_request", fmt::format("unknown parameter {}", json_quoted(name)),
                                           v);
        }
        if (!b) {
            co_return http::error_response(400, "bad_request",
                                           fmt::format("prune: {} is not true or false", json_quoted(text)), v);
        }
        prune = *b;
    }
    if (api_ == nullptr) {
        const auto answer =
            value::make_object({{"configured", value::make_bool(false)},
                                {"detail", value::make_string(why_not_)},
                                {"declared", value::make_int(static_cast<std::int64_t>(desired_.size()))},
                                {"plan", value::make_array({})}});
        co_return http::json_response(200, json::serialize(answer), v);
    }
    auto actual = co_await list_for_view();
    if (!actual) {
        co_return http::error_response(502, "manage_unavailable", actual.error().message, v);
    }
    const auto p = manage::make_plan(desired_, *actual, prune);
    record(p, {});
    co_return http::json_response(200, json::serialize(plan_answer(p, prune, desired_.size(), actual->size())), v);
}

net::awaitable<http::response> admin_subscriptions::sync(http::request& req)
{
    const unsigned v = req.msg.version();
    auto parsed = json::parse_value(req.msg.body());
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        co_return http::error_response(400, "bad_request", err->detail, v);
    }
    const auto& body = std::get<value>(parsed);
    if (body.as_object() == nullptr) {
        co_return http::error_response(400, "bad_request", "the body is not a JSON object", v);
    }
    std::string shown;
    bool prune = false;
    for (const auto& m : *body.as_object()) {
        if (m.key == "plan_id" && m.val.as_string()) {
            shown = std::string(*m.val.as_string());
        } else if (m.key == "prune" && m.val.as_bool()) {
            prune = *m.val.as_bool();
        } else if (m.key == "plan_id" || m.key == "prune") {
            co_return http::error_response(
                400, "bad_request", fmt::format("{} is not a {}", m.key, m.key == "prune" ? "boolean" : "string"), v);
        } else {
            co_return http::error_response(400, "bad_request", fmt::format("unknown field {}", json_quoted(m.key)), v);
        }
    }
    if (shown.empty()) {
        co_return http::error_response(
            400, "bad_request", "plan_id: the plan_id of the plan you saw (GET /api/subscriptions) is required", v);
    }
    if (api_ == nullptr) {
        co_return http::error_response(409, "manage_not_configured", why_not_, v);
    }
    if (desired_.empty()) {
        co_return http::error_response(409, "nothing_declared", "no [[subscriptions]] in the configuration", v);
    }
    if (applying_.exchange(true)) {
        co_return http::error_response(409, "sync_in_progress", "another sync is being applied", v);
    }
    struct release {
        std::atomic<bool>& flag;
        ~release() { flag = false; }
    } done{applying_};

    const manage::conditions everything;
    auto actual = co_await api_->list_callbacks(everything);
    if (!actual) {
        co_return http::error_response(502, "manage_unavailable", actual.error().message, v);
    }
    remember(*actual);
    const auto p = manage::make_plan(desired_, *actual, prune);
    record(p, {});
    if (manage::plan_digest(p) != shown) {
        co_return http::error_response(409, "plan_changed",
                                       "Manage's subscriptions or the options changed since that plan was made: look "
                                       "at the new plan",
                                       v);
    }
    const auto results = co_await manage::apply_plan(*api_, p);
    forget();
    record(p, results);
    const auto rows = manage::report_rows(p, results);
    const auto report = manage::report_json(rows, false, prune);
    const bool ok = report.find("ok")->as_bool().value_or(false);
    log::info("admin: subscriptions synced",
              {{"changes", static_cast<std::int64_t>(results.size())}, {"prune", prune}, {"ok", ok}});
    if (ok) {
        co_return http::json_response(200, json::serialize(report), v);
    }
    // Some change failed: 502 with the report, whose rows say which and why.
    std::vector<value::member> members{{"error", value::make_string("sync_incomplete")}};
    for (const auto& m : *report.as_object()) {
        members.push_back(m);
    }
    co_return http::json_response(502, json::serialize(value::make_object(std::move(members))), v);
}

} // namespace cwhook::callback::detail
