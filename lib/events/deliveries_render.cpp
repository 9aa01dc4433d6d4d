#include "events/deliveries_render.hpp"

#include "core/duration.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "events/detail/object_writer.hpp"
#include "json/utf8.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace cwhook::events {

namespace {

using detail::object_writer;

// Errors in a table cell: longer ones are cut to this many characters.
constexpr std::size_t short_error_chars = 40;

std::string shown_time(std::int64_t us)
{
    return format_time(us, time_precision::millis);
}

bool undelivered(store::delivery_state s)
{
    return s == store::delivery_state::pending || s == store::delivery_state::failing;
}

// One line of valid UTF-8: an error text comes from the network (a TLS library, a server's
// reason) and may hold any byte; control characters would break the table's lines.
std::string one_line(std::string_view text)
{
    std::string out = json::valid_utf8(text);
    std::replace_if(
        out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }, ' ');
    return out;
}

// At most `chars` characters (not bytes: never a cut inside a UTF-8 sequence), "..." ending a cut.
std::string shortened(std::string_view text, std::size_t chars)
{
    std::string line = one_line(text);
    std::size_t seen = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) {
            continue; // a continuation byte
        }
        if (seen == chars) {
            line.resize(i);
            line += "...";
            break;
        }
        ++seen;
    }
    return line;
}

std::string status_text(int status)
{
    return status != 0 ? std::to_string(status) : "-";
}

std::string latency_text(std::int64_t us)
{
    return fmt::format("{:.1f} ms", static_cast<double>(us) / 1000.0);
}

// When the row is next tried (undelivered) or was finished; "-" when neither is known.
std::string when_text(const store::delivery_row& d)
{
    if (undelivered(d.state)) {
        return d.next_attempt_at_us == 0 ? "now" : shown_time(d.next_attempt_at_us);
    }
    return d.done_at_us != 0 ? shown_time(d.done_at_us) : "-";
}

std::string state_text(const store::delivery_row& d)
{
    const auto state = store::to_string(d.state);
    if (undelivered(d.state)) {
        return fmt::format("{} (next attempt {})", state, when_text(d));
    }
    if (d.done_at_us != 0) {
        return fmt::format("{} ({})", state, when_text(d));
    }
    return std::string(state);
}

std::string attempts_text(std::int64_t n)
{
    return fmt::format("{} attempt{}", n, n == 1 ? "" : "s");
}

// Attempts as aligned lines, each starting with `indent`.
std::string attempt_lines(const std::vector<store::delivery_attempt>& attempts, std::string_view indent)
{
    std::vector<std::vector<std::string>> cells;
    for (const auto& a : attempts) {
        cells.push_back({std::string(indent) + shown_time(a.at_us), status_text(a.http_status),
                         latency_text(a.latency_us), one_line(a.error)});
    }
    return aligned(cells);
}

// Whole seconds: an age is read at a glance, and sub-second digits would only churn.
std::string age_text(std::int64_t created_us, std::int64_t now_us)
{
    const std::int64_t seconds = std::max<std::int64_t>(now_us - created_us, 0) / 1'000'000;
    return format_duration(millis(seconds * 1000));
}

} // namespace

std::string deliveries_table(std::span<const store::delivery_row> rows)
{
    std::vector<std::vector<std::string>> cells;
    cells.push_back(
        {"ID", "EVENT", "DESTINATION", "STATE", "ATTEMPTS", "LAST STATUS", "LAST ERROR", "NEXT ATTEMPT / DONE"});
    for (const auto& d : rows) {
        cells.push_back({std::to_string(d.id), std::to_string(d.event_id), one_line(d.destination),
                         std::string(store::to_string(d.state)), std::to_string(d.attempts), status_text(d.last_status),
                         d.last_error.empty() ? "-" : shortened(d.last_error, short_error_chars), when_text(d)});
    }
    return aligned(cells);
}

std::string attempt_json(const store::delivery_attempt& a)
{
    std::string out;
    object_writer w(out);
    w.text("at", format_time(a.at_us)).number("at_us", a.at_us);
    if (a.http_status != 0) {
        w.number("http_status", a.http_status);
    } else {
        w.null("http_status");
    }
    // Microseconds as milliseconds with three decimals: exact, and the unit people read.
    const std::int64_t us = std::max<std::int64_t>(a.latency_us, 0);
    w.raw("latency_ms", fmt::format("{}.{:03}", us / 1000, us % 1000)).text("error", a.error);
    w.close();
    return out;
}

std::string delivery_json(const store::delivery_row& d, bool with_attempts)
{
    std::string out;
    object_writer w(out);
    w.number("id", d.id)
        .number("event_id", d.event_id)
        .text("destination", d.destination)
        .text("state", store::to_string(d.state))
        .text("created_at", format_time(d.created_at_us))
        .number("created_at_us", d.created_at_us);
    if (undelivered(d.state)) {
        if (d.next_attempt_at_us != 0) {
            w.text("next_attempt_at", format_time(d.next_attempt_at_us));
        } else {
            w.null("next_attempt_at");
        }
        w.number("next_attempt_at_us", d.next_attempt_at_us);
    } else {
        w.null("next_attempt_at").null("next_attempt_at_us");
    }
    w.number("attempt_count", d.attempts).number("tries", d.tries);
    if (d.last_status != 0) {
        w.number("last_status", d.last_status);
    } else {
        w.null("last_status");
    }
    w.text("last_error", d.last_error);
    if (!undelivered(d.state) && d.done_at_us != 0) {
        w.text("done_at", format_time(d.done_at_us)).number("done_at_us", d.done_at_us);
    } else {
        w.null("done_at").null("done_at_us");
    }
    if (with_attempts) {
        std::string list = "[";
        for (const auto& a : d.history) {
            if (list.size() > 1) {
                list += ',';
            }
            list += attempt_json(a);
        }
        list += ']';
        w.raw("attempts", list);
    }
    w.close();
    return out;
}

std::string delivery_text(const store::delivery_row& d)
{
    std::vector<std::vector<std::string>> meta = {
        {"id", std::to_string(d.id)},
        {"event", std::to_string(d.event_id)},
        {"destination", one_line(d.destination)},
        {"state", state_text(d)},
        {"created", shown_time(d.created_at_us)},
        {"attempts", fmt::format("{} ({} since the last retry)", d.attempts, d.tries)},
        {"last status", status_text(d.last_status)},
        {"last error", d.last_error.empty() ? "-" : one_line(d.last_error)},
    };
    std::string out = aligned(meta);
    out += "\nattempts:";
    if (d.history.empty()) {
        out += " none\n";
        return out;
    }
    out += '\n';
    out += attempt_lines(d.history, "  ");
    return out;
}

std::string forwarding_text(std::span<const store::delivery_row> rows)
{
    std::string out = "forwarding:";
    if (rows.empty()) {
        out += " none\n";
        return out;
    }
    out += '\n';
    for (const auto& d : rows) {
        out += fmt::format("  {}: {}, {} (delivery {})\n", one_line(d.destination), state_text(d),
                           attempts_text(d.attempts), d.id);
        out += attempt_lines(d.history, "    ");
    }
    return out;
}

std::string forwarding_json(std::span<const store::delivery_row> rows)
{
    std::string out = "[";
    for (const auto& d : rows) {
        if (out.size() > 1) {
            out += ',';
        }
        out += delivery_json(d, true);
    }
    out += ']';
    return out;
}

std::string destinations_table(std::span<const store::destination_status> rows, std::int64_t now_us)
{
    std::vector<std::vector<std::string>> cells;
    cells.push_back(
        {"NAME", "CONFIGURED", "PAUSED", "PENDING", "FAILING", "DEAD", "DONE", "CANCELLED", "OLDEST UNDELIVERED"});
    for (const auto& s : rows) {
        std::string paused = "no";
        if (s.paused) {
            paused = s.pause_reason.empty() ? "yes" : "yes: " + shortened(s.pause_reason, short_error_chars);
        }
        cells.push_back({one_line(s.name), s.configured ? "yes" : "no", paused, std::to_string(s.pending),
                         std::to_string(s.failing), std::to_string(s.dead), std::to_string(s.done),
                         std::to_string(s.cancelled),
                         s.oldest_due_created_at_us ? age_text(*s.oldest_due_created_at_us, now_us) : "-"});
    }
    return aligned(cells);
}

std::string destination_json(const store::destination_status& s, std::int64_t now_us)
{
    std::string out;
    object_writer w(out);
    w.text("name", s.name)
        .boolean("configured", s.configured)
        .boolean("paused", s.paused)
        .text("pause_reason", s.pause_reason)
        .text("changed_at", format_time(s.changed_at_us))
        .number("pending", s.pending)
        .number("failing", s.failing)
        .number("dead", s.dead)
        .number("done", s.done)
        .number("cancelled", s.cancelled);
    if (s.oldest_due_created_at_us) {
        w.text("oldest_undelivered_at", format_time(*s.oldest_due_created_at_us))
            .number("oldest_undelivered_age_s",
                    std::max<std::int64_t>(now_us - *s.oldest_due_created_at_us, 0) / 1'000'000);
    } else {
        w.null("oldest_undelivered_at").null("oldest_undelivered_age_s");
    }
    w.close();
    return out;
}

} // namespace cwhook::events
