// The records behind the REST collections: what a trigger does to them, and the public members
// that read and change them. A trigger changes its record whether or not anything is delivered,
// as Manage saves a record whether or not a callback reaches anyone; that is what lets a
// catch-up find, over REST, the changes an outage swallowed.
#include "emulator/callback_table.hpp"
#include "emulator/detail/impl.hpp"
#include "emulator/record_table.hpp"

#include "core/text.hpp"

#include <chrono>

namespace cwhook::emulator {

std::string emulator::impl::apply_trigger_locked(const trigger_request& t)
{
    const auto type = lower_ascii(t.type);
    const auto action = lower_ascii(t.action);
    const bool added = action == "added";
    if (collection_of(type).empty() || !(added || action == "updated" || action == "deleted")) {
        return t.entity;
    }
    auto& table = records[type];
    if (action == "deleted") {
        table.erase(t.id);
        return {};
    }
    const auto at = now();
    const auto stamp = utc_text(at);
    auto it = table.find(t.id);
    json::value rec;
    if (added || it == table.end()) {
        // An update of a record the emulator never saw: it existed before, so it was entered earlier.
        const auto entered = added ? stamp : utc_text(at - std::chrono::hours(24));
        rec = new_record(type, t.id, entered, stamp, cfg.member_id);
    } else {
        rec = it->second;
    }
    bool verbatim = false;
    if (!t.entity.empty()) {
        auto parsed = json::parse_value(t.entity);
        auto* given = std::get_if<json::value>(&parsed);
        if (given != nullptr && given->as_object() != nullptr) {
            rec = merge_record(rec, *given);
        } else {
            verbatim = true; // a test's odd Entity goes out as it is
        }
    }
    rec = stamp_record(rec, stamp, cfg.member_id);
    auto text = json::serialize(rec);
    table[t.id] = std::move(rec);
    return verbatim ? t.entity : text;
}

namespace {

record to_record(const json::value& v)
{
    return record{record_id(v), record_date_entered(v), record_last_updated(v), json::serialize(v)};
}

} // namespace

std::vector<delivery_result> emulator::touch_records(std::string_view type, std::int64_t first_id, std::size_t count,
                                                     std::string_view action, bool callback)
{
    trigger_request t;
    t.type = std::string(type);
    t.action = std::string(action);
    t.callback = callback;
    std::vector<delivery_result> out;
    if (!callback) {
        std::lock_guard lock(impl_->mutex);
        for (std::size_t i = 0; i < count; ++i) {
            t.id = first_id + static_cast<std::int64_t>(i);
            impl_->apply_trigger_locked(t);
        }
        return out;
    }
    for (std::size_t i = 0; i < count; ++i) {
        t.id = first_id + static_cast<std::int64_t>(i);
        auto r = trigger(t);
        out.insert(out.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
    }
    return out;
}

bool emulator::set_record(std::string_view type, std::string_view json)
{
    const auto t = lower_ascii(type);
    if (collection_of(t).empty()) {
        return false;
    }
    auto parsed = json::parse_value(json);
    auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || v->as_object() == nullptr || record_id(*v) <= 0) {
        return false;
    }
    std::lock_guard lock(impl_->mutex);
    impl_->records[t][record_id(*v)] = std::move(*v);
    return true;
}

std::vector<record> emulator::records(std::string_view type) const
{
    std::vector<record> out;
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->records.find(lower_ascii(type));
    if (it == impl_->records.end()) {
        return out;
    }
    out.reserve(it->second.size());
    for (const auto& [id, v] : it->second) {
        out.push_back(to_record(v));
    }
    return out;
}

std::optional<record> emulator::find_record(std::string_view type, std::int64_t id) const
{
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->records.find(lower_ascii(type));
    if (it == impl_->records.end()) {
        return std::nullopt;
    }
    const auto r = it->second.find(id);
    if (r == it->second.end()) {
        return std::nullopt;
    }
    return to_record(r->second);
}

void emulator::clear_records()
{
    std::lock_guard lock(impl_->mutex);
    impl_->records.clear();
}

} // namespace cwhook::emulator
