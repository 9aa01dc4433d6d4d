// One JSON object built by hand, member by member, for the renderers of lib/events. Text is
// made valid UTF-8 first (stored headers and upstream errors may hold any byte). Appends to
// one string: not thread-safe.
#pragma once

#include "core/json_string.hpp"
#include "json/utf8.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::events::detail {

class object_writer {
public:
    explicit object_writer(std::string& out) : out_(out) { out_.push_back('{'); }

    object_writer& text(std::string_view key, std::string_view v)
    {
        name(key);
        append_json_string(out_, json::valid_utf8(v));
        return *this;
    }
    object_writer& text(std::string_view key, const std::string& v) { return text(key, std::string_view(v)); }
    object_writer& text(std::string_view key, const char* v) { return text(key, std::string_view(v)); }
    object_writer& text(std::string_view key, const std::optional<std::string>& v)
    {
        if (!v) {
            return null(key);
        }
        return text(key, std::string_view(*v));
    }
    object_writer& number(std::string_view key, std::int64_t v)
    {
        name(key);
        out_ += fmt::format("{}", v);
        return *this;
    }
    object_writer& number(std::string_view key, std::optional<std::int64_t> v)
    {
        if (!v) {
            return null(key);
        }
        return number(key, *v);
    }
    object_writer& boolean(std::string_view key, bool v)
    {
        name(key);
        out_ += v ? "true" : "false";
        return *this;
    }
    object_writer& null(std::string_view key)
    {
        name(key);
        out_ += "null";
        return *this;
    }
    // v is JSON text already.
    object_writer& raw(std::string_view key, std::string_view v)
    {
        name(key);
        out_ += v;
        return *this;
    }
    void close() { out_.push_back('}'); }

private:
    void name(std::string_view key)
    {
        if (!first_) {
            out_.push_back(',');
        }
        first_ = false;
        append_json_string(out_, key);
        out_.push_back(':');
    }

    std::string& out_;
    bool first_ = true;
};

} // namespace cwhook::events::detail
