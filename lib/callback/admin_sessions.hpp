// The web console's logins: sessions held in memory (a restart logs everyone out), each with
// an expiry and a CSRF token of its own, and a limit on failed logins per client and in all.
// A session id is 32 random bytes; only its SHA-256 is kept, so the table holds nothing a
// memory dump could replay as a cookie. Thread-safe (one mutex; no call blocks).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace cwhook::callback {

struct session_settings {
    std::chrono::seconds ttl{std::chrono::hours(8)};
    std::size_t max_sessions = 1000; // beyond: the session expiring first is dropped
    // Failed logins allowed per client address within failure_window, and in all (every
    // client together, so that many addresses cannot guess faster).
    std::size_t failures_per_client = 5;
    std::size_t failures_in_all = 30;
    std::chrono::seconds failure_window{60};
};

class admin_sessions {
public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
    explicit admin_sessions(session_settings s = {}, clock_fn clock = {});

    struct created {
        std::string id;   // the cookie's value
        std::string csrf; // what state-changing requests send in X-CSRF-Token
    };
    created create();

    struct session {
        std::string csrf;
        std::chrono::seconds expires_in{0};
    };
    // The live session of a cookie value; nullopt when unknown or expired.
    std::optional<session> find(std::string_view id);
    void erase(std::string_view id);
    std::size_t size();

    // How long a login from `client` must wait before its token is even looked at; zero when
    // it may try now.
    std::chrono::seconds login_wait(std::string_view client);
    void login_failed(std::string_view client);

    const session_settings& settings() const noexcept { return s_; }

private:
    struct entry {
        std::string csrf;
        std::chrono::steady_clock::time_point expires;
    };
    struct failures {
        std::size_t count = 0;
        std::chrono::steady_clock::time_point window_start;
    };
    void purge(std::chrono::steady_clock::time_point now); // mutex_ held

    session_settings s_;
    clock_fn clock_;
    std::mutex mutex_;
    std::map<std::string, entry, std::less<>> sessions_;           // by hex SHA-256 of the id
    std::map<std::string, failures, std::less<>> client_failures_; // guarded by mutex_
    failures all_failures_;                                        // guarded by mutex_
};

} // namespace cwhook::callback
