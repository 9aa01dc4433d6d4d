#include "core/log.hpp"

#include "core/json_string.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace cwhook::log {
namespace {

std::atomic<int> g_level{static_cast<int>(level::info)};
std::atomic<format> g_format{format::text};
std::atomic<bool> g_syslog{false};
std::mutex g_sink_mutex;
std::function<void(std::string_view)> g_sink;  // guarded by g_sink_mutex
std::atomic<bool> g_has_sink{false};


// Text values are quoted only when they would be ambiguous; control bytes are escaped so
// that a hostile header can never forge a second log line.
void append_text_value(std::string& out, std::string_view s)
{
    bool plain = !s.empty();
    for (unsigned char c : s) {
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
            plain = false;
            break;
        }
    }
    if (plain) {
        out += s;
    } else {
        append_json_string(out, s);
    }
}

void append_timestamp(std::string& out)
{
    const auto now = std::chrono::system_clock::now();
    const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
    const std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int syslog_priority(level lvl)
{
    switch (lvl) {
    case level::error: return 3;
    case level::warn: return 4;
    case level::info: return 6;
    case level::debug: return 7;
    }
    return 6;
}

void emit(std::string_view line)
{
    if (g_has_sink.load(std::memory_order_acquire)) {
        std::lock_guard lock(g_sink_mutex);
        if (g_sink) {
            g_sink(line);
            return;
        }
    }
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) {
            return;  // nowhere left to complain to
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

} // namespace

void configure(level lvl, format fmt, bool syslog_prefix)
{
    g_level.store(static_cast<int>(lvl));
    g_format.store(fmt);
    g_syslog.store(syslog_prefix);
}

bool enabled(level lvl) noexcept { return static_cast<int>(lvl) <= g_level.load(std::memory_order_relaxed); }

void write(level lvl, std::string_view msg, std::span<const field> fields)
{
    if (!enabled(lvl)) {
        return;
    }
    std::string line;
    line.reserve(128 + msg.size());
    if (g_format.load(std::memory_order_relaxed) == format::json) {
        line += "{\"ts\":\"";
        append_timestamp(line);
        line += "\",\"level\":\"";
        line += to_string(lvl);
        line += "\",\"msg\":";
        append_json_string(line, msg);
        for (const auto& f : fields) {
            line.push_back(',');
            append_json_string(line, f.key);
            line.push_back(':');
            append_json_string(line, f.value);
        }
        line += "}\n";
    } else {
        if (g_syslog.load(std::memory_order_relaxed)) {
            fmt::format_to(std::back_inserter(line), "<{}>", syslog_priority(lvl));
        } else {
            append_timestamp(line);
            line.push_back(' ');
            line += to_string(lvl);
            line.push_back(' ');
        }
        line += msg;
        for (const auto& f : fields) {
            line.push_back(' ');
            line += f.key;
            line.push_back('=');
            append_text_value(line, f.value);
        }
        line.push_back('\n');
    }
    emit(line);
}

void set_sink(std::function<void(std::string_view)> sink)
{
    std::lock_guard lock(g_sink_mutex);
    g_sink = std::move(sink);
    g_has_sink.store(static_cast<bool>(g_sink), std::memory_order_release);
}

std::optional<level> parse_level(std::string_view s)
{
    if (s == "error") {
        return level::error;
    }
    if (s == "warn") {
        return level::warn;
    }
    if (s == "info") {
        return level::info;
    }
    if (s == "debug") {
        return level::debug;
    }
    return std::nullopt;
}

std::optional<format> parse_format(std::string_view s)
{
    if (s == "text") {
        return format::text;
    }
    if (s == "json") {
        return format::json;
    }
    return std::nullopt;
}

std::string_view to_string(level lvl)
{
    switch (lvl) {
    case level::error: return "error";
    case level::warn: return "warn";
    case level::info: return "info";
    case level::debug: return "debug";
    }
    return "info";
}

std::string_view to_string(format f) { return f == format::json ? "json" : "text"; }

} // namespace cwhook::log
