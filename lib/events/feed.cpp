#include "events/feed.hpp"

#include "core/json_string.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "json/pretty.hpp"
#include "json/utf8.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace cwhook::events {

store::db_result<feed_page> read_feed(store::event_db& db, std::int64_t after, std::size_t limit)
{
    using out = store::db_result<feed_page>;
    auto positions = db.feed(after, std::clamp<std::size_t>(limit, 1, max_feed_page));
    if (!positions) {
        return out(boost::system::in_place_error, positions.error());
    }
    feed_page page;
    page.last = after;
    page.positions = positions->size();
    page.events.reserve(positions->size());
    for (const auto& p : *positions) {
        auto e = db.get(p.event_id, false);
        if (!e) {
            return out(boost::system::in_place_error, e.error());
        }
        page.last = p.seq;
        if (*e) {
            page.events.push_back(feed_event{p.seq, std::move(**e)});
        }
    }
    return page;
}

std::string format_feed_cursor(std::int64_t seq)
{
    return fmt::format("{}", seq);
}

std::optional<std::int64_t> parse_feed_cursor(std::string_view text)
{
    const auto n = parse_integer<std::int64_t>(text);
    if (!n || *n < 0) {
        return std::nullopt;
    }
    return n;
}

namespace {

void member(std::string& out, std::string_view name)
{
    if (out.size() > 1) {
        out.push_back(',');
    }
    append_json_string(out, name);
    out.push_back(':');
}

void text_member(std::string& out, std::string_view name, std::string_view value)
{
    member(out, name);
    append_json_string(out, json::valid_utf8(value));
}

} // namespace

std::string feed_json(const feed_event& e)
{
    const auto& r = e.event.record;
    // Copied token by token (json::reformat_payload): a parse into a tree and back would
    // rewrite Manage's numbers.
    auto payload = json::reformat_payload(r.body, 0);
    std::string out;
    out.reserve(r.body.size() + r.body.size() / 4 + 256);
    out.push_back('{');
    text_member(out, "cursor", format_feed_cursor(e.seq));
    member(out, "id");
    out += fmt::format("{}", e.event.id);
    text_member(out, "type", r.type);
    text_member(out, "action", r.action);
    member(out, "entity_id");
    out += r.entity_id ? fmt::format("{}", *r.entity_id) : "null";
    if (r.company_id) {
        text_member(out, "company_id", *r.company_id);
    } else {
        member(out, "company_id");
        out += "null";
    }
    text_member(out, "status", store::to_string(r.status));
    text_member(out, "source", store::to_string(r.source));
    text_member(out, "received_at", format_time(r.received_at_us, time_precision::micros));
    member(out, "payload");
    out += payload ? *payload : "null";
    out.push_back('}');
    return out;
}

store::event_summary summary_of(const store::stored_event& e)
{
    store::event_summary s;
    s.id = e.id;
    s.received_at_us = e.record.received_at_us;
    s.type = e.record.type;
    s.action = e.record.action;
    s.entity_id = e.record.entity_id;
    s.company_id = e.record.company_id;
    s.status = e.record.status;
    s.deliveries = e.deliveries;
    s.source = e.record.source;
    s.twin_of = e.record.twin_of;
    return s;
}

std::string summary_line(const store::event_summary& e)
{
    const auto dash = [](const auto& v) { return v ? fmt::format("{}", *v) : std::string("-"); };
    // Widths fit the usual values (Manage's type and action names, entity ids below 10^8); a
    // longer value only shifts the rest of its line.
    return fmt::format("{:<8}  {}  {:<16}  {:<7}  {:<8}  {:<12}  {:<11}  {:<10}  {}\n", e.id,
                       format_time(e.received_at_us, time_precision::millis), json::valid_utf8(e.type),
                       json::valid_utf8(e.action), dash(e.entity_id), json::valid_utf8(dash(e.company_id)),
                       store::to_string(e.status), e.deliveries, store::to_string(e.source));
}

} // namespace cwhook::events
