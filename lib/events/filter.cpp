#include "events/filter.hpp"

#include "core/text.hpp"
#include "core/time.hpp"

#include <fmt/format.h>

#include <charconv>

namespace cwhook::events {

namespace {

// Accepts both spellings: the command line's entity-id and the query string's entity_id.
bool is(std::string_view name, std::string_view dashed)
{
    if (name.size() != dashed.size()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char a = name[i] == '_' ? '-' : name[i];
        if (a != dashed[i]) {
            return false;
        }
    }
    return true;
}

} // namespace

std::optional<std::string> set_filter(store::event_filter& f, std::string_view name, std::string_view value,
                                      std::int64_t now_us)
{
    if (is(name, "type")) {
        f.type = std::string(value);
    } else if (is(name, "action")) {
        f.action = std::string(value);
    } else if (is(name, "company")) {
        f.company_id = std::string(value);
    } else if (is(name, "entity-id") || is(name, "callback-id")) {
        const auto n = parse_integer<std::int64_t>(value);
        if (!n) {
            return "expected an integer";
        }
        (is(name, "entity-id") ? f.entity_id : f.callback_id) = *n;
    } else if (is(name, "status")) {
        const auto s = store::parse_event_status(value);
        if (!s) {
            return "expected verified, pending, failed, unverified or synthesized";
        }
        f.status = *s;
    } else if (is(name, "source")) {
        const auto s = store::parse_event_source(value);
        if (!s) {
            return "expected callback or catch_up";
        }
        f.source = *s;
    } else if (is(name, "since") || is(name, "until")) {
        const auto t = parse_time(value, now_us);
        if (!t) {
            return "expected an RFC 3339 time (2026-11-28T10:00:00Z, 2026-11-28) or a duration back from now (2h, 7d)";
        }
        (is(name, "since") ? f.since_us : f.until_us) = *t;
    } else if (is(name, "limit")) {
        const auto n = parse_integer<std::int64_t>(value);
        if (!n || *n < 1 || *n > max_limit) {
            return fmt::format("expected an integer from 1 to {}", max_limit);
        }
        f.limit = static_cast<std::size_t>(*n);
    } else if (is(name, "cursor")) {
        const auto c = parse_cursor(value);
        if (!c) {
            return "not a cursor of this API";
        }
        f.after = *c;
    } else {
        return "unknown filter";
    }
    return std::nullopt;
}

std::optional<std::string> set_delivery_filter(store::delivery_filter& f, std::string_view name, std::string_view value)
{
    if (name == "destination") {
        if (value.empty()) {
            return "expected a destination name";
        }
        f.destination = std::string(value);
    } else if (name == "state") {
        const auto s = store::parse_delivery_state(value);
        if (!s) {
            return "expected pending, failing, done, dead or cancelled";
        }
        f.state = *s;
    } else if (name == "event" || name == "before") {
        const auto id = parse_id(value);
        if (!id) {
            return name == "event" ? "expected an event id" : "expected a delivery id";
        }
        (name == "event" ? f.event_id : f.before_id) = *id;
    } else if (name == "limit") {
        const auto n = parse_integer<std::int64_t>(value);
        if (!n || *n < 1 || *n > max_limit) {
            return fmt::format("expected an integer from 1 to {}", max_limit);
        }
        f.limit = static_cast<std::size_t>(*n);
    } else {
        return "unknown filter";
    }
    return std::nullopt;
}

bool matches(const store::event_filter& f, const store::stored_event& e)
{
    const auto& r = e.record;
    const auto same = [](const auto& want, const auto& have) { return !want || want == have; };
    return same(f.type, r.type) && same(f.action, r.action) && same(f.entity_id, r.entity_id) &&
           same(f.company_id, r.company_id) && same(f.status, r.status) && same(f.source, r.source) &&
           same(f.callback_id, r.callback_id) && (!f.since_us || r.received_at_us >= *f.since_us) &&
           (!f.until_us || r.received_at_us < *f.until_us);
}

std::string format_cursor(const store::event_cursor& c)
{
    return fmt::format("{}.{}", c.received_at_us, c.id);
}

std::optional<store::event_cursor> parse_cursor(std::string_view text)
{
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) {
        return std::nullopt;
    }
    const auto t = parse_integer<std::int64_t>(text.substr(0, dot));
    const auto id = parse_integer<std::int64_t>(text.substr(dot + 1));
    if (!t || !id) {
        return std::nullopt;
    }
    return store::event_cursor{*t, *id};
}

} // namespace cwhook::events
