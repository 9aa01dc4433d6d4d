#include "json/rest_records.hpp"

#include "core/time.hpp"
#include "json/detail/document.hpp"

#include <simdjson.h>

namespace cwhook::json {

namespace {

std::optional<std::int64_t> time_of(simdjson::dom::element e)
{
    std::string_view text;
    if (e.get_string().get(text) != simdjson::SUCCESS || text.empty()) {
        return std::nullopt;
    }
    // Only absolute times: a record's field never means "that long ago".
    if (text.find('T') == std::string_view::npos && text.find(' ') == std::string_view::npos) {
        return std::nullopt;
    }
    auto t = parse_time(text, 0);
    if (!t) {
        return std::nullopt;
    }
    return *t;
}

std::optional<std::int64_t> info_time(simdjson::dom::object o, std::string_view key)
{
    simdjson::dom::object info;
    if (o["_info"].get_object().get(info) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    simdjson::dom::element e;
    if (info[key].get(e) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return time_of(e);
}

// Fields of one record's text (its own parse: the DOM of the array is gone by then).
bool read_fields(rest_record& r)
{
    const auto doc = detail::parse_document(r.json, true);
    simdjson::dom::object o;
    if (doc.error != simdjson::SUCCESS || doc.root.get_object().get(o) != simdjson::SUCCESS) {
        return false;
    }
    if (o["id"].get_int64().get(r.id) != simdjson::SUCCESS) {
        return false;
    }
    r.last_updated_us = info_time(o, "lastUpdated");
    simdjson::dom::element entered;
    if (o["dateEntered"].get(entered) == simdjson::SUCCESS) {
        r.date_entered_us = time_of(entered);
    } else {
        r.date_entered_us = info_time(o, "dateEntered");
    }
    return true;
}

} // namespace

std::optional<std::vector<rest_record>> parse_rest_records(std::string_view text)
{
    // On-demand first, for each element's exact text (numbers keep their spelling); then each
    // record's fields from its own text.
    simdjson::ondemand::parser parser;
    const simdjson::padded_string padded(text);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    simdjson::ondemand::array array;
    if (doc.get_array().get(array) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::vector<rest_record> out;
    for (auto element : array) {
        simdjson::ondemand::object object;
        if (element.get_object().get(object) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        std::string_view raw;
        if (object.raw_json().get(raw) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        rest_record r;
        r.json = std::string(raw);
        out.push_back(std::move(r));
    }
    for (auto& r : out) {
        if (!read_fields(r)) {
            return std::nullopt;
        }
    }
    return out;
}

std::optional<std::int64_t> entity_last_updated(std::string_view payload_body)
{
    std::string entity;
    {
        const auto doc = detail::parse_document(payload_body, true);
        std::string_view text;
        if (doc.error != simdjson::SUCCESS || doc.root["Entity"].get_string().get(text) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        entity = std::string(text); // the next parse reuses the thread's parser
    }
    const auto doc = detail::parse_document(entity, true);
    simdjson::dom::object o;
    if (doc.error != simdjson::SUCCESS || doc.root.get_object().get(o) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return info_time(o, "lastUpdated");
}

} // namespace cwhook::json
