// Design: the table is keyed by the SHA-256 of the session id, so a lookup's timing depends on
// a hash of the cookie, never on how much of a real id a guess matched. Expired sessions and
// stale failure counts are purged on each call (the table is small and bounded). The login
// limit counts failures only: a correct token is never slowed, a guesser gets
// failures_per_client tries per window and everyone together failures_in_all, after which
// tokens are not even compared until the window ends.
#include "callback/admin_sessions.hpp"

#include "crypto/digest.hpp"

#include <algorithm>

namespace cwhook::callback {

namespace {

constexpr std::size_t id_bytes = 32;
constexpr std::size_t max_tracked_clients = 10'000;

std::string key_of(std::string_view id)
{
    return crypto::hex(crypto::sha256(id));
}

} // namespace

admin_sessions::admin_sessions(session_settings s, clock_fn clock) : s_(s), clock_(std::move(clock))
{
    if (!clock_) {
        clock_ = [] { return std::chrono::steady_clock::now(); };
    }
}

void admin_sessions::purge(std::chrono::steady_clock::time_point now)
{
    std::erase_if(sessions_, [now](const auto& kv) { return kv.second.expires <= now; });
    std::erase_if(client_failures_,
                  [this, now](const auto& kv) { return now - kv.second.window_start >= s_.failure_window; });
    if (now - all_failures_.window_start >= s_.failure_window) {
        all_failures_ = {};
    }
}

admin_sessions::created admin_sessions::create()
{
    created out{crypto::random_hex(id_bytes), crypto::random_hex(id_bytes)};
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    purge(now);
    while (!sessions_.empty() && sessions_.size() >= s_.max_sessions) {
        const auto first = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
            return a.second.expires < b.second.expires;
        });
        sessions_.erase(first);
    }
    sessions_.emplace(key_of(out.id), entry{out.csrf, now + s_.ttl});
    return out;
}

std::optional<admin_sessions::session> admin_sessions::find(std::string_view id)
{
    if (id.size() != id_bytes * 2) {
        return std::nullopt;
    }
    const auto key = key_of(id);
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    purge(now);
    const auto it = sessions_.find(key);
    if (it == sessions_.end()) {
        return std::nullopt;
    }
    return session{it->second.csrf, std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now)};
}

void admin_sessions::erase(std::string_view id)
{
    const auto key = key_of(id);
    std::lock_guard lock(mutex_);
    sessions_.erase(key);
}

std::size_t admin_sessions::size()
{
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    purge(now);
    return sessions_.size();
}

std::chrono::seconds admin_sessions::login_wait(std::string_view client)
{
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    purge(now);
    const auto left = [this, now](const failures& f) {
        return std::max(std::chrono::seconds(1),
                        std::chrono::duration_cast<std::chrono::seconds>(f.window_start + s_.failure_window - now));
    };
    if (all_failures_.count >= s_.failures_in_all) {
        return left(all_failures_);
    }
    const auto it = client_failures_.find(client);
    if (it != client_failures_.end() && it->second.count >= s_.failures_per_client) {
        return left(it->second);
    }
    return std::chrono::seconds(0);
}

void admin_sessions::login_failed(std::string_view client)
{
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    purge(now);
    if (all_failures_.count == 0) {
        all_failures_.window_start = now;
    }
    ++all_failures_.count;
    auto it = client_failures_.find(client);
    if (it == client_failures_.end()) {
        if (client_failures_.size() >= max_tracked_clients) {
            return; // the limit in all still holds
        }
        it = client_failures_.emplace(std::string(client), failures{0, now}).first;
    }
    ++it->second.count;
}

} // namespace cwhook::callback
