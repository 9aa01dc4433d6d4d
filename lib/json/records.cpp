#include "json/records.hpp"

#include "json/detail/document.hpp"

#include <simdjson.h>

#include <utility>

namespace cwhook::json {

const scalar* flat_object::find(std::string_view key) const
{
    for (const auto& [k, v] : fields) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

namespace {

using detail::describe;
using detail::document;
using detail::parse_document;

// The top-level object of text (read leniently), valid until this thread's next parse.
std::variant<simdjson::dom::object, parse_error> parse_object(std::string_view text)
{
    const document doc = parse_document(text, true);
    if (doc.error != simdjson::SUCCESS) {
        return parse_error{describe(doc.error)};
    }
    simdjson::dom::object object;
    if (doc.root.get_object().get(object) != simdjson::SUCCESS) {
        return parse_error{"not a JSON object"};
    }
    return object;
}

} // namespace

std::variant<flat_object, parse_error> parse_flat_object(std::string_view text)
{
    auto parsed = parse_object(text);
    if (auto* err = std::get_if<parse_error>(&parsed)) {
        return *err;
    }
    const auto object = std::get<simdjson::dom::object>(parsed);
    flat_object out;
    for (const auto field : object) {
        scalar v;
        switch (field.value.type()) {
        case simdjson::dom::element_type::NULL_VALUE: break;
        case simdjson::dom::element_type::INT64: v = field.value.get_int64().value_unsafe(); break;
        case simdjson::dom::element_type::STRING: v = std::string(field.value.get_string().value_unsafe()); break;
        default: return parse_error{"field " + std::string(field.key) + " is not a string, integer or null"};
        }
        out.fields.emplace_back(std::string(field.key), std::move(v));
    }
    return out;
}

std::variant<replay_request, parse_error> parse_replay_request(std::string_view body)
{
    auto parsed = parse_object(body);
    if (auto* err = std::get_if<parse_error>(&parsed)) {
        return *err;
    }
    const auto object = std::get<simdjson::dom::object>(parsed);
    replay_request out;
    for (const auto field : object) {
        const std::string_view key = field.key;
        const auto& v = field.value;
        if (key == "ids") {
            simdjson::dom::array ids;
            if (v.get_array().get(ids) != simdjson::SUCCESS) {
                return parse_error{"field ids is not an array"};
            }
            for (const auto id : ids) {
                std::int64_t n = 0;
                if (id.get_int64().get(n) != simdjson::SUCCESS) {
                    return parse_error{"field ids holds a value that is not an integer"};
                }
                out.ids.push_back(n);
            }
        } else if (key == "filter") {
            simdjson::dom::object filter;
            if (v.get_object().get(filter) != simdjson::SUCCESS) {
                return parse_error{"field filter is not an object"};
            }
            out.has_filter = true;
            for (const auto f : filter) {
                std::string_view text;
                std::int64_t n = 0;
                if (f.value.get_string().get(text) == simdjson::SUCCESS) {
                    out.filter.emplace_back(std::string(f.key), std::string(text));
                } else if (f.value.get_int64().get(n) == simdjson::SUCCESS) {
                    out.filter.emplace_back(std::string(f.key), std::to_string(n));
                } else {
                    return parse_error{"field filter." + std::string(f.key) + " is not a string or integer"};
                }
            }
        } else if (key == "to") {
            std::string_view to;
            if (v.get_string().get(to) != simdjson::SUCCESS) {
                return parse_error{"field to is not a string"};
            }
            out.to = std::string(to);
        } else if (key == "rate") {
            double rate = 0;
            if (v.get_double().get(rate) != simdjson::SUCCESS) {
                return parse_error{"field rate is not a number"};
            }
            out.rate = rate;
        } else if (key == "concurrency") {
            std::int64_t n = 0;
            if (v.get_int64().get(n) != simdjson::SUCCESS) {
                return parse_error{"field concurrency is not an integer"};
            }
            out.concurrency = n;
        } else if (key == "stop_on_error") {
            bool b = false;
            if (v.get_bool().get(b) != simdjson::SUCCESS) {
                return parse_error{"field stop_on_error is not a boolean"};
            }
            out.stop_on_error = b;
        } else {
            return parse_error{"unknown field " + std::string(key)};
        }
    }
    return out;
}

std::variant<delivery_retry_request, parse_error> parse_delivery_retry_request(std::string_view body)
{
    auto parsed = parse_object(body);
    if (auto* err = std::get_if<parse_error>(&parsed)) {
        return *err;
    }
    const auto object = std::get<simdjson::dom::object>(parsed);
    delivery_retry_request out;
    for (const auto field : object) {
        const std::string_view key = field.key;
        const auto& v = field.value;
        if (key == "ids") {
            simdjson::dom::array ids;
            if (v.get_array().get(ids) != simdjson::SUCCESS) {
                return parse_error{"field ids is not an array"};
            }
            for (const auto id : ids) {
                std::int64_t n = 0;
                if (id.get_int64().get(n) != simdjson::SUCCESS) {
                    return parse_error{"field ids holds a value that is not an integer"};
                }
                out.ids.push_back(n);
            }
        } else if (key == "destination" || key == "state") {
            std::string_view text;
            if (v.get_string().get(text) != simdjson::SUCCESS) {
                return parse_error{"field " + std::string(key) + " is not a string"};
            }
            out.filter.emplace_back(std::string(key), std::string(text));
        } else if (key == "event") {
            std::string_view text;
            std::int64_t n = 0;
            if (v.get_int64().get(n) == simdjson::SUCCESS) {
                out.filter.emplace_back("event", std::to_string(n));
            } else if (v.get_string().get(text) == simdjson::SUCCESS) {
                out.filter.emplace_back("event", std::string(text));
            } else {
                return parse_error{"field event is not an integer"};
            }
        } else if (key == "all" || key == "dry_run") {
            bool b = false;
            if (v.get_bool().get(b) != simdjson::SUCCESS) {
                return parse_error{"field " + std::string(key) + " is not a boolean"};
            }
            (key == "all" ? out.all : out.dry_run) = b;
        } else {
            return parse_error{"unknown field " + std::string(key)};
        }
    }
    return out;
}

} // namespace cwhook::json
