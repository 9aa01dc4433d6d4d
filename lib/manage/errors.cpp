#include "manage/errors.hpp"

#include "core/text.hpp"
#include "json/value.hpp"
#include "manage/types.hpp"

#include <fmt/format.h>

#include <charconv>

#include <optional>
#include <stdexcept>
#include <vector>

namespace cwhook::manage {

namespace {

struct error_item {
    std::string code;
    std::string message;
    std::string field;
};

struct error_body {
    std::string code;
    std::string message;
    std::vector<error_item> errors;
};

std::string text_of(const json::value* v)
{
    if (v == nullptr) {
        return {};
    }
    if (auto s = v->as_string()) {
        return one_line(*s);
    }
    return {};
}

std::optional<error_body> parse_error_body(std::string_view body)
{
    auto parsed = json::parse_value(body);
    const auto* root = std::get_if<json::value>(&parsed);
    if (root == nullptr || root->as_object() == nullptr) {
        return std::nullopt;
    }
    error_body out;
    out.code = text_of(root->find("code"));
    out.message = text_of(root->find("message"));
    if (const auto* errs = root->find("errors"); errs != nullptr && errs->as_array() != nullptr) {
        for (const auto& e : *errs->as_array()) {
            out.errors.push_back({text_of(e.find("code")), text_of(e.find("message")), text_of(e.find("field"))});
        }
    }
    if (out.code.empty() && out.message.empty() && out.errors.empty()) {
        return std::nullopt;
    }
    return out;
}

std::string lower_first(std::string s)
{
    // "A matching callback entry..." reads better after a colon as "a matching ...", but
    // "URL", "ID" and similar stay as they are.
    if (s.size() >= 2 && s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z')) {
        s[0] = static_cast<char>(s[0] - 'A' + 'a');
    }
    while (!s.empty() && s.back() == '.') {
        s.pop_back();
    }
    return s;
}

std::string_view reason_phrase(unsigned status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 429: return "TooManyRequests";
    case 500: return "ServerError";
    case 502: return "BadGateway";
    case 503: return "ServiceUnavailable";
    case 504: return "GatewayTimeout";
    default: return "Error";
    }
}

bool mentions_client_id(const error_body& b)
{
    const auto has = [](const std::string& s) { return lower_ascii(s).find("clientid") != std::string::npos; };
    if (has(b.code) || has(b.message)) {
        return true;
    }
    for (const auto& e : b.errors) {
        if (has(e.code) || has(e.message) || has(e.field)) {
            return true;
        }
    }
    return false;
}

} // namespace

void throw_exception_from_error(const failure& f, const boost::source_location&)
{
    throw std::runtime_error(f.message);
}

std::string one_line(std::string_view text, std::size_t max)
{
    std::string out;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            if (!out.empty() && out.back() != ' ') {
                out.push_back(' ');
            }
            continue;
        }
        out.push_back(c);
        if (out.size() >= max) {
            out += "...";
            break;
        }
    }
    return out;
}

failure describe_answer(unsigned status, std::string_view body, std::string_view retry_after)
{
    failure f;
    f.status = status;
    if (!retry_after.empty()) {
        std::int64_t seconds = 0;
        const auto [end, ec] = std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
        if (ec == std::errc() && end == retry_after.data() + retry_after.size() && seconds > 0) {
            f.retry_after_s = seconds;
        }
    }
    const auto parsed = parse_error_body(body);
    const error_body b = parsed ? *parsed : error_body{};
    f.code = b.code.empty() ? std::string(reason_phrase(status)) : b.code;
    const std::string manage_says =
        b.message.empty() ? std::string() : fmt::format(" (Manage: {})", lower_first(b.message));

    if (status == 401) {
        f.message = fmt::format("{} {}: check manage.company_id, manage.public_key and manage.private_key{}", status,
                                f.code, manage_says);
        return f;
    }
    if (mentions_client_id(b)) {
        f.message = fmt::format("{} {}: check manage.client_id (a clientId from developer.connectwise.com){}", status,
                                f.code, manage_says);
        return f;
    }
    if (status == 403) {
        f.message = fmt::format("{} {}: the API member's security role does not allow this (System > Table Setup "
                                "callbacks){}",
                                status, f.code, manage_says);
        return f;
    }
    if (status == 429) {
        const auto wait = retry_after.empty() ? std::string() : fmt::format(" (Retry-After {} s)", retry_after);
        f.message = fmt::format("{} {}: Manage is throttling requests{}; try again later", status, f.code, wait);
        return f;
    }
    if (b.errors.size() == 1) {
        // The specific error is the interesting one: "400 ObjectExists: a matching callback entry already exists".
        const auto& e = b.errors.front();
        if (!e.code.empty()) {
            f.code = e.code;
        }
        const bool name_field = !e.field.empty() && e.code != "ObjectExists";
        f.message = fmt::format("{} {}: {}{}", status, f.code, name_field ? e.field + ": " : std::string(),
                                lower_first(e.message.empty() ? b.message : e.message));
        return f;
    }
    if (b.errors.size() > 1) {
        std::string details;
        for (const auto& e : b.errors) {
            if (!details.empty()) {
                details += "; ";
            }
            details += e.field.empty() ? lower_first(e.message) : e.field + ": " + lower_first(e.message);
        }
        f.message = fmt::format("{} {}: {}: {}", status, f.code, lower_first(b.message), details);
        return f;
    }
    if (!b.message.empty()) {
        f.message = fmt::format("{} {}: {}", status, f.code, lower_first(b.message));
    } else if (!parsed && !body.empty()) {
        f.message = fmt::format("{} {}: unexpected answer (not a Manage error body)", status, f.code);
    } else {
        f.message = fmt::format("{} {}", status, f.code);
    }
    if (status >= 500) {
        f.message += "; Manage failed, try again later";
    }
    return f;
}

failure transport_failure(std::string_view where, std::string_view why)
{
    return failure{0, "transport", fmt::format("cannot reach {}: {}", where, one_line(why)), 0};
}

failure bad_answer(std::string_view what)
{
    return failure{0, "bad_answer", fmt::format("unexpected answer from Manage: {}", what), 0};
}

} // namespace cwhook::manage
