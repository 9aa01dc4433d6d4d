// Design: planning is pure so that `sync --dry-run`, the daemon's periodic check and the
// tests all see exactly the plan that would be applied. Applying copes with the races an
// operator meets in practice: an entry created between our list and our create answers
// ObjectExists (then it is looked up and re-enabled when needed, and counts as done), and an
// entry deleted meanwhile answers 404 to our delete (also done).
#include "manage/sync.hpp"

#include "core/log.hpp"
#include "core/text.hpp"
#include "crypto/digest.hpp"
#include "manage/types.hpp"

#include <fmt/format.h>

namespace cwhook::manage {

namespace net = boost::asio;

namespace {

bool same_key(const subscription& d, const callback& c)
{
    return d.type == lower_ascii(c.type) && d.level == lower_ascii(c.level) && d.object_id == c.object_id && d.url == c.url;
}

std::string_view without_query(std::string_view url)
{
    return url.substr(0, url.find_first_of("?#"));
}

} // namespace

std::string_view to_string(action a)
{
    switch (a) {
    case action::create: return "create";
    case action::update: return "update";
    case action::reenable: return "re-enable";
    case action::remove: return "delete";
    case action::unchanged: return "unchanged";
    }
    return "unchanged";
}

std::size_t plan::count(action a, bool applied_only) const
{
    std::size_t n = 0;
    for (const auto& i : items) {
        n += i.what == a && (!applied_only || i.apply) ? 1 : 0;
    }
    return n;
}

bool plan::has_changes() const
{
    for (const auto& i : items) {
        if (i.what != action::unchanged && i.apply) {
            return true;
        }
    }
    return false;
}

plan make_plan(const std::vector<subscription>& desired, const std::vector<callback>& actual, bool prune)
{
    plan out;
    std::vector<bool> used(actual.size(), false);
    for (const auto& d : desired) {
        // Prefer an active match: with duplicates, the active one is the one Manage uses.
        std::optional<std::size_t> match;
        for (std::size_t i = 0; i < actual.size(); ++i) {
            if (!used[i] && same_key(d, actual[i]) && (!match || (actual[*match].inactive && !actual[i].inactive))) {
                match = i;
            }
        }
        plan_item item;
        item.desired = d;
        if (!match) {
            item.what = action::create;
            out.items.push_back(std::move(item));
            continue;
        }
        used[*match] = true;
        const auto& c = actual[*match];
        item.actual = c;
        if (c.description != d.description) {
            item.new_description = d.description;
        }
        if (c.inactive) {
            item.what = action::reenable;
        } else if (item.new_description) {
            item.what = action::update;
        } else {
            item.what = action::unchanged;
        }
        out.items.push_back(std::move(item));
    }
    for (std::size_t i = 0; i < actual.size(); ++i) {
        if (used[i]) {
            continue;
        }
        bool ours = false;
        for (const auto& d : desired) {
            ours = ours || without_query(d.url) == without_query(actual[i].url);
        }
        if (!ours) {
            continue;
        }
        plan_item item;
        item.what = action::remove;
        item.actual = actual[i];
        item.apply = prune;
        out.items.push_back(std::move(item));
    }
    return out;
}

net::awaitable<std::vector<applied>> apply_plan(api& manage, const plan& p)
{
    std::vector<applied> results;
    for (const auto& item : p.items) {
        if (item.what == action::unchanged || !item.apply) {
            continue;
        }
        applied a;
        a.item = &item;
        switch (item.what) {
        case action::create: {
            const subscription s = *item.desired;
            auto r = co_await manage.create_callback(s, false);
            if (r) {
                a.ok = true;
                a.id = r->id;
                a.message = fmt::format("created (id {})", r->id);
                break;
            }
            if (r.error().code == "ObjectExists" && r.error().existing_id != 0) {
                // Created meanwhile (or our earlier list missed it): make sure it is active.
                const auto id = r.error().existing_id;
                a.id = id;
                auto got = co_await manage.get_callback(id);
                if (got && got->inactive) {
                    const std::optional<bool> enable = false;
                    const std::optional<std::string> no_change;
                    auto en = co_await manage.patch_callback(id, enable, no_change);
                    a.ok = static_cast<bool>(en);
                    a.message = en ? fmt::format("exists already (id {}), re-enabled", id) : en.error().message;
                } else {
                    a.ok = true;
                    a.message = fmt::format("exists already (id {})", id);
                }
                break;
            }
            a.message = r.error().message;
            break;
        }
        case action::update:
        case action::reenable: {
            a.id = item.actual->id;
            const std::optional<bool> inactive =
                item.what == action::reenable ? std::optional<bool>(false) : std::optional<bool>();
            const std::optional<std::string> description = item.new_description;
            auto r = co_await manage.patch_callback(a.id, inactive, description);
            a.ok = static_cast<bool>(r);
            a.message = r ? std::string(item.what == action::reenable ? "re-enabled" : "updated") : r.error().message;
            break;
        }
        case action::remove: {
            a.id = item.actual->id;
            auto r = co_await manage.delete_callback(a.id);
            if (r) {
                a.ok = true;
                a.message = "deleted";
            } else if (r.error().status == 404) {
                a.ok = true;
                a.message = "already gone";
            } else {
                a.message = r.error().message;
            }
            break;
        }
        case action::unchanged: break;
        }
        if (a.ok) {
            log::info("subscription synced", {{"action", to_string(item.what)}, {"id", a.id}, {"result", a.message}});
        } else {
            log::warn("subscription sync failed",
                      {{"action", to_string(item.what)}, {"id", a.id}, {"error", a.message}});
        }
        results.push_back(std::move(a));
    }
    co_return results;
}

std::string_view state_of(const plan_item& i)
{
    switch (i.what) {
    case action::create: return "missing";
    case action::reenable: return "inactive";
    case action::update: return "description differs";
    case action::remove: return "extra";
    case action::unchanged: return "in sync";
    }
    return "in sync";
}

std::string label_of(const plan_item& i)
{
    if (i.what == action::remove && !i.apply) {
        return "delete-if-prune";
    }
    return std::string(to_string(i.what));
}

std::vector<report_row> report_rows(const plan& p, const std::vector<applied>& results)
{
    std::vector<report_row> rows;
    for (const auto& i : p.items) {
        report_row r;
        r.item = &i;
        for (const auto& a : results) {
            r.result = a.item == &i ? &a : r.result;
        }
        r.label = label_of(i);
        r.type = i.desired ? i.desired->type : i.actual->type;
        r.level = i.desired ? i.desired->level : i.actual->level;
        r.object_id = i.desired ? i.desired->object_id : i.actual->object_id;
        r.url = i.desired ? i.desired->url : i.actual->url;
        r.description = i.desired ? i.desired->description : i.actual->description;
        r.id = r.result != nullptr && r.result->id != 0 ? r.result->id : i.actual ? i.actual->id : 0;
        rows.push_back(std::move(r));
    }
    return rows;
}

json::value report_json(const std::vector<report_row>& rows, bool dry_run, bool prune)
{
    using json::value;
    bool ok = true;
    std::vector<value> items;
    for (const auto& r : rows) {
        ok = ok && (r.result == nullptr || r.result->ok);
        std::vector<value::member> m{
            {"action", value::make_string(r.label)},
            {"state", value::make_string(std::string(state_of(*r.item)))},
            {"id", r.id != 0 ? value::make_int(r.id) : value()},
            {"type", value::make_string(r.type)},
            {"level", value::make_string(r.level)},
            {"objectId", value::make_int(r.object_id)},
            {"url", value::make_string(r.url)},
            {"description", value::make_string(r.description)},
            {"applied", value::make_bool(r.result != nullptr && r.result->ok)},
        };
        if (r.result != nullptr) {
            m.push_back({"result", value::make_string(r.result->message)});
        }
        items.push_back(value::make_object(std::move(m)));
    }
    return value::make_object({{"dryRun", value::make_bool(dry_run)},
                               {"prune", value::make_bool(prune)},
                               {"ok", value::make_bool(ok)},
                               {"plan", value::make_array(std::move(items))}});
}

std::string plan_digest(const plan& p)
{
    // Fields joined by unit separators, items by record separators: the digest tells an
    // operator's plan from a changed one (it is no secret and no authorisation).
    std::string text;
    for (const auto& i : p.items) {
        if (i.what == action::unchanged || !i.apply) {
            continue;
        }
        const auto& type = i.desired ? i.desired->type : i.actual->type;
        const auto& level = i.desired ? i.desired->level : i.actual->level;
        const auto object_id = i.desired ? i.desired->object_id : i.actual->object_id;
        const auto& url = i.desired ? i.desired->url : i.actual->url;
        text += fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1e", to_string(i.what),
                            i.actual ? i.actual->id : 0, type, level, object_id, url, i.new_description.value_or(""));
    }
    return crypto::hex(crypto::sha256(text)).substr(0, 16);
}

} // namespace cwhook::manage
