// Log facade: one line per call, text or JSON, to stderr (or a sink set by tests).
// Thread-safe: each line is written with one write(2); configuration is atomic.
// Never pass signing keys, signatures, Authorization headers or API keys here.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace cwhook::log {

enum class level : int { error = 0, warn = 1, info = 2, debug = 3 };
enum class format { text, json };

struct field {
    std::string_view key;
    std::string value;

    field(std::string_view k, std::string_view v) : key(k), value(v) {}
    field(std::string_view k, const std::string& v) : key(k), value(v) {}
    field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
    template <class I>
        requires std::is_integral_v<I>
    field(std::string_view k, I v) : key(k), value(fmt::format("{}", v))
    {
    }
    field(std::string_view k, double v) : key(k), value(fmt::format("{:.3f}", v)) {}
};

// syslog_prefix: text lines start with "<N>" (journald's priority) and carry no timestamp.
void configure(level lvl, format fmt, bool syslog_prefix = false);
bool enabled(level lvl) noexcept;
void write(level lvl, std::string_view msg, std::span<const field> fields);
inline void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {})
{
    write(lvl, msg, std::span<const field>(fields.begin(), fields.size()));
}

// Tests capture output here; nullptr restores stderr.
void set_sink(std::function<void(std::string_view)> sink);

std::optional<level> parse_level(std::string_view s);
std::optional<format> parse_format(std::string_view s);
std::string_view to_string(level lvl);
std::string_view to_string(format f);

inline void error(std::string_view msg, std::initializer_list<field> f = {}) { write(level::error, msg, f); }
inline void warn(std::string_view msg, std::initializer_list<field> f = {}) { write(level::warn, msg, f); }
inline void info(std::string_view msg, std::initializer_list<field> f = {}) { write(level::info, msg, f); }
inline void debug(std::string_view msg, std::initializer_list<field> f = {}) { write(level::debug, msg, f); }

} // namespace cwhook::log
