// The web console on the admin listener: its static files under /ui/ (compiled into the
// binary), the login that trades the admin token for a session cookie, and the session's
// part in the admin gate (a cookie is as good as the bearer token, but a state-changing
// request it authenticates must also carry the session's CSRF token). Every /ui/ answer
// carries a strict Content-Security-Policy: no inline script or style, nothing from another
// origin. Thread-safe: the sessions have their own lock; the rest is immutable once built.
#pragma once

#include "callback/admin_sessions.hpp"
#include "callback/settings.hpp"
#include "core/metrics.hpp"
#include "crypto/digest.hpp"
#include "http/router.hpp"

#include <optional>
#include <string_view>

namespace cwhook::callback {

// The Content-Security-Policy of every /ui/ answer.
inline constexpr std::string_view ui_content_security_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
inline constexpr std::string_view session_cookie_name = "cwhook_session";

// "/ui" and everything below it.
bool is_ui_path(std::string_view path) noexcept;
// The console's headers: CSP, nosniff, no referrer, no framing.
void add_ui_headers(http::response& res);

class admin_ui {
public:
    admin_ui(const crypto::digest256& token_digest, const admin_settings& admin, session_settings s,
             metrics::registry& m);

    // Needs neither token nor session: the static files (GET under /ui/ outside /ui/api/)
    // and POST /ui/api/login.
    static bool is_public(const http::request& req);

    enum class session_check { ok, none, csrf_missing, csrf_mismatch };
    // For a request without a valid bearer token: its session cookie, and for a
    // state-changing request the X-CSRF-Token header matching that session's.
    session_check check(const http::request& req);

    // GET /ui, /ui/... (files; the console's own paths get index.html), GET /ui/api/session,
    // POST /ui/api/login, POST /ui/api/logout.
    void add_routes(http::router& r);

    admin_sessions& sessions() noexcept { return sessions_; }

    // Handlers (public for the router's plain functions).
    http::response serve_file(const http::request& req) const;
    http::response session_info(const http::request& req);
    http::response login(http::request& req);
    http::response logout(const http::request& req);

private:
    crypto::digest256 token_digest_;
    std::vector<std::string> replay_targets_;
    admin_sessions sessions_;
    metrics::counter& login_ok_;
    metrics::counter& login_failed_;
    metrics::counter& login_throttled_;
    metrics::counter& csrf_refused_;
};

// The value of cookie `name` in a Cookie header ("" when absent).
std::string_view cookie_value(std::string_view header, std::string_view name) noexcept;

} // namespace cwhook::callback
