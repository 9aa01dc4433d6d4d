// Untrusted JSON documents of the operators' tools: one line of an event export (a flat object
// of strings, integers and nulls), the admin API's replay request and its delivery retry. Never throws; invalid
// UTF-8 inside strings is read leniently ('?'). Thread-safe (one parser per thread).
#pragma once

#include "json/payload.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace cwhook::json {

using scalar = std::variant<std::monostate, std::int64_t, std::string>;  // monostate: null

struct flat_object {
    std::vector<std::pair<std::string, scalar>> fields;  // in document order
    const scalar* find(std::string_view key) const;
};

// A JSON object whose members are strings, integers or null (other members: an error naming them).
std::variant<flat_object, parse_error> parse_flat_object(std::string_view text);

struct replay_request {
    std::vector<std::int64_t> ids;
    bool has_filter = false;
    std::vector<std::pair<std::string, std::string>> filter;  // integers given as their decimal text
    std::string to;
    std::optional<double> rate;
    std::optional<std::int64_t> concurrency;
    bool stop_on_error = false;
};

// {"ids":[...]|"filter":{...},"to":"...","rate":N,"concurrency":N,"stop_on_error":bool}
std::variant<replay_request, parse_error> parse_replay_request(std::string_view body);

struct delivery_retry_request {
    std::vector<std::int64_t> ids;
    // destination, state and event, in document order; an event id given as an integer is
    // here as its decimal text.
    std::vector<std::pair<std::string, std::string>> filter;
    bool all = false;
    bool dry_run = false;
};

// {"ids":[...]} or {"destination":"..","state":"..","event":N} or {"all":true}, each with an
// optional "dry_run":bool. Whether the combination makes sense is the caller's to judge.
std::variant<delivery_retry_request, parse_error> parse_delivery_retry_request(std::string_view body);

} // namespace cwhook::json
