#include "events/render.hpp"

#include "core/json_string.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "events/deliveries_render.hpp"
#include "events/detail/object_writer.hpp"
#include "json/pretty.hpp"
#include "json/records.hpp"
#include "json/utf8.hpp"
#include "store/event_fields.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

namespace cwhook::events {

namespace {

using detail::object_writer;

std::string shown_time(std::int64_t us) { return format_time(us, time_precision::millis); }

std::string or_dash(const std::optional<std::string>& v) { return v ? *v : "-"; }
std::string or_dash(std::optional<std::int64_t> v) { return v ? std::to_string(*v) : "-"; }

std::vector<std::pair<std::string_view, std::string_view>> header_pairs(std::string_view lines)
{
    std::vector<std::pair<std::string_view, std::string_view>> out;
    while (!lines.empty()) {
        const auto nl = lines.find('\n');
        const auto line = lines.substr(0, nl);
        lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
        if (line.empty()) {
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            out.emplace_back(line, std::string_view());
            continue;
        }
        auto value = line.substr(colon + 1);
        if (value.starts_with(' ')) {
            value.remove_prefix(1);
        }
        out.emplace_back(line.substr(0, colon), value);
    }
    return out;
}

std::string replay_line(const store::replay_attempt& a)
{
    std::string result = a.http_status != 0 ? std::to_string(a.http_status) : "failed: " + a.error;
    return fmt::format("  {}  {}  {}{}\n", shown_time(a.at_us), a.target, result,
                       a.job.empty() ? "" : "  (job " + a.job + ")");
}

} // namespace

std::string table(std::span<const store::event_summary> rows)
{
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"ID", "RECEIVED", "TYPE", "ACTION", "ENTITY", "COMPANY", "STATUS", "DELIVERIES", "SOURCE"});
    for (const auto& e : rows) {
        // A twin names the synthesized event consumers got instead.
        std::string source(store::to_string(e.source));
        if (e.twin_of) {
            source += fmt::format(" (twin of {})", *e.twin_of);
        }
        cells.push_back({std::to_string(e.id), shown_time(e.received_at_us), e.type, e.action, or_dash(e.entity_id),
                         or_dash(e.company_id), std::string(store::to_string(e.status)), std::to_string(e.deliveries),
                         std::move(source)});
    }
    return aligned(cells);
}

std::string summary_json(const store::event_summary& e)
{
    std::string out;
    object_writer w(out);
    w.number("id", e.id)
        .text("received_at", format_time(e.received_at_us))
        .number("received_at_us", e.received_at_us)
        .text("type", e.type)
        .text("action", e.action)
        .number("entity_id", e.entity_id)
        .text("company_id", e.company_id)
        .text("status", store::to_string(e.status))
        .number("deliveries", e.deliveries)
        .text("source", store::to_string(e.source))
        .number("twin_of", e.twin_of);
    w.close();
    return out;
}

std::string detail_text(const store::stored_event& e)
{
    const auto& r = e.record;
    std::vector<std::vector<std::string>> meta = {
        {"id", std::to_string(e.id)},
        {"received", format_time(r.received_at_us)},
        {"deliveries", fmt::format("{} (last {})", e.deliveries, format_time(e.last_delivery_at_us))},
        {"status", r.verify_reason.empty() ? std::string(store::to_string(r.status))
                                           : fmt::format("{} ({})", store::to_string(r.status), r.verify_reason)},
        {"source", std::string(store::to_string(r.source))},
        {"twin of", or_dash(r.twin_of)},
        {"entity updated", r.entity_updated_at_us ? format_time(*r.entity_updated_at_us) : "-"},
        {"type", r.type},
        {"action", r.action},
        {"entity id", or_dash(r.entity_id)},
        {"company", or_dash(r.company_id)},
        {"member", or_dash(r.member_id)},
        {"message id", or_dash(r.message_id)},
        {"callback id", or_dash(r.callback_id)},
        {"from url", or_dash(r.from_url)},
        {"product instance", or_dash(r.product_instance_id)},
        {"partner", or_dash(r.partner_id)},
        {"key url", r.key_url},
        {"request",
         fmt::format("{} {}{}{} from {}", r.method, r.path, r.query.empty() ? "" : "?", r.query, r.client_addr)},
        {"body", fmt::format("{} bytes, sha256 {}", r.body.size(), r.body_sha256)},
    };
    if (r.status == store::event_status::pending) {
        meta.push_back({"verify attempts", fmt::format("{}, next {}", e.verify_attempts, format_time(r.next_verify_at_us))});
    }
    std::string out = aligned(meta);
    out += "\nheaders:\n";
    for (const auto& [name, value] : header_pairs(r.headers)) {
        out += fmt::format("  {}: {}\n", name, value);
    }
    if (const auto pretty = json::reformat_payload(r.body, 2)) {
        out += "\nbody (Entity decoded):\n";
        out += *pretty;
        out += '\n';
    } else {
        out += "\nbody (not JSON, shown as text; --raw prints the exact bytes):\n";
        out += json::valid_utf8(r.body);
        out += '\n';
    }
    out += "\nreplays:";
    if (e.replays.empty()) {
        out += " none\n";
    } else {
        out += '\n';
        for (const auto& a : e.replays) {
            out += replay_line(a);
        }
    }
    return out;
}

std::string replay_json(const store::replay_attempt& a)
{
    std::string out;
    object_writer w(out);
    w.number("event_id", a.event_id).text("at", format_time(a.at_us)).text("target", a.target);
    if (a.http_status != 0) {
        w.number("http_status", a.http_status);
    } else {
        w.null("http_status");
    }
    w.text("error", a.error).text("job", a.job);
    w.close();
    return out;
}

namespace {

// forwarding: nullptr leaves the member out (the callers from before forwarding).
std::string detail_json(const store::stored_event& e, const std::span<const store::delivery_row>* forwarding,
                        int indent)
{
    const auto& r = e.record;
    std::string out;
    object_writer w(out);
    w.number("id", e.id)
        .text("received_at", format_time(r.received_at_us))
        .number("received_at_us", r.received_at_us)
        .text("last_delivery_at", format_time(e.last_delivery_at_us))
        .number("deliveries", e.deliveries)
        .text("status", store::to_string(r.status))
        .text("verify_reason", r.verify_reason)
        .number("verify_attempts", e.verify_attempts)
        .text("source", store::to_string(r.source))
        .number("twin_of", r.twin_of)
        .number("entity_updated_at_us", r.entity_updated_at_us)
        .text("type", r.type)
        .text("action", r.action)
        .number("entity_id", r.entity_id)
        .text("company_id", r.company_id)
        .text("member_id", r.member_id)
        .text("message_id", r.message_id)
        .number("callback_id", r.callback_id)
        .text("from_url", r.from_url)
        .text("product_instance_id", r.product_instance_id)
        .text("partner_id", r.partner_id)
        .text("key_url", r.key_url)
        .text("method", r.method)
        .text("path", r.path)
        .text("query", r.query)
        .text("client_addr", r.client_addr)
        .text("content_type", r.content_type)
        .text("signature", r.signature)
        .text("body_sha256", r.body_sha256)
        .number("body_size", static_cast<std::int64_t>(r.body.size()));
    std::string headers = "[";
    for (const auto& [name, value] : header_pairs(r.headers)) {
        if (headers.size() > 1) {
            headers += ',';
        }
        headers += '[';
        append_json_string(headers, json::valid_utf8(name));
        headers += ',';
        append_json_string(headers, json::valid_utf8(value));
        headers += ']';
    }
    headers += ']';
    w.raw("headers", headers);
    // Compact here: the whole document is re-indented below when asked.
    if (const auto payload = json::reformat_payload(r.body, 0)) {
        w.raw("payload", *payload);
    } else {
        w.null("payload");
    }
    std::string replays = "[";
    for (const auto& a : e.replays) {
        if (replays.size() > 1) {
            replays += ',';
        }
        replays += replay_json(a);
    }
    replays += ']';
    w.raw("replays", replays);
    if (forwarding != nullptr) {
        w.raw("forwarding", forwarding_json(*forwarding));
    }
    w.close();
    if (indent > 0) {
        if (auto pretty = json::reformat(out, indent)) {
            return std::move(*pretty);
        }
    }
    return out;
}

} // namespace

std::string detail_json(const store::stored_event& e, int indent)
{
    return detail_json(e, nullptr, indent);
}

std::string detail_json(const store::stored_event& e, std::span<const store::delivery_row> forwarding, int indent)
{
    return detail_json(e, &forwarding, indent);
}

std::string detail_text(const store::stored_event& e, std::span<const store::delivery_row> forwarding)
{
    return detail_text(e) + "\n" + forwarding_text(forwarding);
}

// Every stored field (store/event_fields.hpp) under its column name; the body as base64.
std::string export_line(const store::stored_event& e)
{
    const auto& r = e.record;
    std::string out;
    out.reserve(r.body.size() * 4 / 3 + r.headers.size() + 1024);
    object_writer w(out);
    w.number("id", e.id)
        .text("received_at", format_time(r.received_at_us))
        .number("deliveries", e.deliveries)
        .number("last_delivery_at_us", e.last_delivery_at_us)
        .number("verify_attempts", e.verify_attempts);
    store::for_each_field(r, [&w](const store::field_info& f, const auto& v) {
        using T = std::remove_cvref_t<decltype(v)>;
        if constexpr (std::is_same_v<T, store::event_status> || std::is_same_v<T, store::event_source>) {
            w.text(f.name, store::to_string(v));
        } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::optional<std::int64_t>>) {
            w.number(f.name, v);
        } else if constexpr (std::is_same_v<T, std::string>) {
            if (f.use == store::field_use::blob) {
                const auto* bytes = reinterpret_cast<const std::uint8_t*>(v.data());
                w.text(std::string(f.name) + "_base64",
                       crypto::base64_encode(std::span<const std::uint8_t>(bytes, v.size())));
            } else {
                w.text(f.name, v);
            }
        } else {
            w.text(f.name, v);
        }
    });
    w.close();
    return out;
}

namespace {

class field_source {
public:
    explicit field_source(const json::flat_object& o) : o_(o) {}

    std::optional<std::string> text(std::string_view key, bool required = false)
    {
        return get<std::string>(key, required, "a string");
    }

    std::optional<std::int64_t> number(std::string_view key, bool required = false)
    {
        return get<std::int64_t>(key, required, "an integer");
    }

    void problem(std::string why)
    {
        if (!error) {
            error = std::move(why);
        }
    }

    std::optional<std::string> error;

private:
    template <class T>
    std::optional<T> get(std::string_view key, bool required, std::string_view kind)
    {
        const auto* v = o_.find(key);
        if (v == nullptr || std::holds_alternative<std::monostate>(*v)) {
            if (required) {
                problem("missing field " + std::string(key));
            }
            return std::nullopt;
        }
        if (const auto* x = std::get_if<T>(v)) {
            return *x;
        }
        problem("field " + std::string(key) + " is not " + std::string(kind));
        return std::nullopt;
    }

    const json::flat_object& o_;
};

} // namespace

namespace {

// One stored field from an export line; a problem is remembered by the source.
template <class T>
void import_field(field_source& f, const store::field_info& fi, T& v)
{
    if constexpr (std::is_same_v<T, store::event_status>) {
        if (const auto text = f.text(fi.name, fi.required)) {
            if (const auto s = store::parse_event_status(*text)) {
                v = *s;
            } else {
                f.problem("field " + std::string(fi.name) +
                          ": expected verified, pending, failed, unverified or synthesized");
            }
        }
    } else if constexpr (std::is_same_v<T, store::event_source>) {
        // Lines exported before catch-up existed have none: they were callbacks.
        if (const auto text = f.text(fi.name, fi.required)) {
            if (const auto s = store::parse_event_source(*text)) {
                v = *s;
            } else {
                f.problem("field " + std::string(fi.name) + ": expected callback or catch_up");
            }
        }
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
        if (const auto n = f.number(fi.name, fi.required)) {
            v = *n;
        }
    } else if constexpr (std::is_same_v<T, std::optional<std::int64_t>>) {
        v = f.number(fi.name, fi.required);
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
        v = f.text(fi.name, fi.required);
    } else if (fi.use == store::field_use::blob) {
        const std::string key = std::string(fi.name) + "_base64";
        if (const auto text = f.text(key, fi.required)) {
            if (auto bytes = crypto::base64_decode(*text)) {
                v = std::move(*bytes);
            } else {
                f.problem("field " + key + " is not base64");
            }
        }
    } else if (auto text = f.text(fi.name, fi.required)) {
        v = std::move(*text);
    }
}

} // namespace

std::variant<store::stored_event, std::string> parse_export_line(std::string_view line)
{
    auto parsed = json::parse_flat_object(line);
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        return err->detail;
    }
    field_source f(std::get<json::flat_object>(parsed));
    store::stored_event e;
    auto& r = e.record;
    r.method = "POST";  // lines written before the method was recorded
    store::for_each_field(r, [&f](const store::field_info& fi, auto& v) { import_field(f, fi, v); });
    e.id = f.number("id").value_or(0);
    e.deliveries = f.number("deliveries").value_or(1);
    e.last_delivery_at_us = f.number("last_delivery_at_us").value_or(r.received_at_us);
    e.verify_attempts = f.number("verify_attempts").value_or(0);
    if (f.error) {
        return *f.error;
    }
    if (r.dedupe_key.empty()) {
        return "field dedupe_key is empty";
    }
    const std::string sha = crypto::hex(crypto::sha256(r.body));
    if (!r.body_sha256.empty() && r.body_sha256 != sha) {
        return std::string("field body_sha256 does not match the body");
    }
    r.body_sha256 = sha;
    return e;
}

std::string stats_text(const store::event_stats& s)
{
    std::string out = fmt::format("events: {}\n", s.total);
    const std::array<std::pair<std::string_view, const std::vector<store::count_row>*>, 4> groups = {{
        {"by type", &s.by_type},
        {"by action", &s.by_action},
        {"by status", &s.by_status},
        {"by day (UTC)", &s.by_day},
    }};
    for (const auto& [title, rows] : groups) {
        out += fmt::format("\n{}:\n", title);
        std::vector<std::vector<std::string>> cells;
        for (const auto& r : *rows) {
            cells.push_back({"  " + r.key, std::to_string(r.count)});
        }
        out += aligned(cells);
    }
    return out;
}

std::string stats_json(const store::event_stats& s)
{
    const auto group = [](const std::vector<store::count_row>& rows) {
        std::string g = "{";
        for (const auto& r : rows) {
            if (g.size() > 1) {
                g += ',';
            }
            append_json_string(g, json::valid_utf8(r.key));
            g += fmt::format(":{}", r.count);
        }
        g += '}';
        return g;
    };
    std::string out;
    object_writer w(out);
    w.number("total", s.total)
        .raw("by_type", group(s.by_type))
        .raw("by_action", group(s.by_action))
        .raw("by_status", group(s.by_status))
        .raw("by_day", group(s.by_day));
    w.close();
    return out;
}

std::string rejections_table(std::span<const store::stored_rejection> rows)
{
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"ID", "RECEIVED", "STATUS", "REASON", "CLIENT", "SIZE", "DETAIL"});
    for (const auto& r : rows) {
        cells.push_back({std::to_string(r.id), shown_time(r.record.received_at_us),
                         std::to_string(r.record.http_status), r.record.reason, r.record.client_addr,
                         std::to_string(r.record.body_size), json::valid_utf8(r.record.detail)});
    }
    return aligned(cells);
}

std::string rejection_json(const store::stored_rejection& r)
{
    const auto& x = r.record;
    std::string out;
    object_writer w(out);
    w.number("id", r.id)
        .text("received_at", format_time(x.received_at_us))
        .number("received_at_us", x.received_at_us)
        .number("http_status", x.http_status)
        .text("reason", x.reason)
        .text("detail", x.detail)
        .text("client_addr", x.client_addr)
        .text("path", x.path)
        .text("key_url", x.key_url)
        .text("body_sha256", x.body_sha256)
        .number("body_size", x.body_size)
        .text("body_head", x.body_head);
    w.close();
    return out;
}

std::string rejection_text(const store::stored_rejection& r)
{
    const auto& x = r.record;
    std::vector<std::vector<std::string>> meta = {
        {"id", std::to_string(r.id)},
        {"received", format_time(x.received_at_us)},
        {"answer", fmt::format("{} {}", x.http_status, x.reason)},
        {"detail", json::valid_utf8(x.detail)},
        {"client", x.client_addr},
        {"path", json::valid_utf8(x.path)},
        {"key url", x.key_url.empty() ? "-" : json::valid_utf8(x.key_url)},
        {"body", fmt::format("{} bytes, sha256 {}", x.body_size, x.body_sha256)},
    };
    std::string out = aligned(meta);
    // The head may hold any byte: escaped like a JSON string so the terminal shows what came.
    out += "\nbody head (first " + std::to_string(x.body_head.size()) + " bytes):\n";
    std::string escaped;
    append_json_string(escaped, json::valid_utf8(x.body_head));
    out += escaped;
    out += '\n';
    return out;
}

} // namespace cwhook::events
