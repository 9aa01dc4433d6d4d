// Design: the console is a page of the admin listener's own origin, so the gate's Host and
// Origin checks keep working for it unchanged, and its data requests are the API's requests.
// What a browser adds on its own - the cookie - is the one new way in, and it is fenced three
// times: SameSite=Strict (no other site's page makes the browser send it), the Origin check
// (a cross-site request is refused before authentication), and a per-session CSRF token
// every state-changing request must repeat in a header, which a page of another origin can
// neither read nor set without a CORS preflight that this listener never grants. The files
// are served from memory with a Content-Security-Policy that allows this origin's scripts and
// styles only: even a stored body that slipped into markup could run nothing.
#include "callback/admin_ui.hpp"

#include "callback/admin_policy.hpp"
#include "callback/detail/ui_assets.hpp"
#include "core/json_string.hpp"
#include "core/log.hpp"
#include "json/records.hpp"

#include <boost/beast/http/field.hpp>

#include <fmt/format.h>

namespace cwhook::callback {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view ui_prefix = "/ui/";
constexpr std::string_view api_prefix = "/ui/api/";
constexpr std::string_view csrf_header = "X-CSRF-Token";

std::string_view content_type_of(std::string_view path)
{
    const auto dot = path.rfind('.');
    const auto ext = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    if (ext == "html") {
        return "text/html; charset=utf-8";
    }
    if (ext == "js") {
        return "text/javascript; charset=utf-8";
    }
    if (ext == "css") {
        return "text/css; charset=utf-8";
    }
    if (ext == "svg") {
        return "image/svg+xml";
    }
    if (ext == "png") {
        return "image/png";
    }
    if (ext == "json") {
        return "application/json";
    }
    return "text/plain; charset=utf-8"; // LICENSE and other text
}

const detail::ui_asset* find_asset(std::string_view rel)
{
    for (const auto& a : detail::ui_assets()) {
        if (a.path == rel) {
            return &a;
        }
    }
    return nullptr;
}

bool changes_state(bhttp::verb v)
{
    return v == bhttp::verb::post || v == bhttp::verb::put || v == bhttp::verb::patch || v == bhttp::verb::delete_;
}

http::response ui_json(unsigned status, std::string body, unsigned v)
{
    auto res = http::json_response(status, std::move(body), v);
    res.set(bhttp::field::cache_control, "no-store");
    add_ui_headers(res);
    return res;
}

http::response ui_error(unsigned status, std::string_view code, std::string_view detail, unsigned v)
{
    auto res = http::error_response(status, code, detail, v);
    res.set(bhttp::field::cache_control, "no-store");
    add_ui_headers(res);
    return res;
}

std::string cookie_header(std::string_view value, std::chrono::seconds max_age, bool secure)
{
    return fmt::format("{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}", session_cookie_name, value,
                       max_age.count(), secure ? "; Secure" : "");
}

} // namespace

bool is_ui_path(std::string_view path) noexcept
{
    return path == "/ui" || path.starts_with(ui_prefix);
}

void add_ui_headers(http::response& res)
{
    res.set("Content-Security-Policy", ui_content_security_policy);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "DENY");
    res.set("Cross-Origin-Opener-Policy", "same-origin");
}

std::string_view cookie_value(std::string_view header, std::string_view name) noexcept
{
    while (!header.empty()) {
        const auto semi = header.find(';');
        auto pair = header.substr(0, semi);
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        while (!pair.empty() && pair.front() == ' ') {
            pair.remove_prefix(1);
        }
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
            auto value = pair.substr(eq + 1);
            while (!value.empty() && value.back() == ' ') {
                value.remove_suffix(1);
            }
            return value;
        }
    }
    return {};
}

admin_ui::admin_ui(const crypto::digest256& token_digest, const admin_settings& admin, session_settings s,
                   metrics::registry& m)
    : token_digest_(token_digest), replay_targets_(admin.replay_targets), sessions_(s),
      login_ok_(m.get_counter("cwhook_admin_logins_total", "result=\"ok\"")),
      login_failed_(m.get_counter("cwhook_admin_logins_total", "result=\"bad_token\"")),
      login_throttled_(m.get_counter("cwhook_admin_logins_total", "result=\"throttled\"")),
      csrf_refused_(m.get_counter("cwhook_admin_refused_total", "reason=\"csrf\""))
{
}

bool admin_ui::is_public(const http::request& req)
{
    const auto path = req.path();
    if (req.msg.method() == bhttp::verb::get || req.msg.method() == bhttp::verb::head) {
        return is_ui_path(path) && !path.starts_with(api_prefix);
    }
    return req.msg.method() == bhttp::verb::post && path == "/ui/api/login";
}

admin_ui::session_check admin_ui::check(const http::request& req)
{
    const auto id = cookie_value(req.msg[bhttp::field::cookie], session_cookie_name);
    const auto s = id.empty() ? std::nullopt : sessions_.find(id);
    if (!s) {
        return session_check::none;
    }
    if (!changes_state(req.msg.method())) {
        return session_check::ok;
    }
    const std::string_view given = req.msg[csrf_header];
    if (given.empty()) {
        csrf_refused_.inc();
        return session_check::csrf_missing;
    }
    // Digests: equal lengths whatever was sent, compared in constant time.
    if (!crypto::constant_time_equal(crypto::sha256(given), crypto::sha256(s->csrf))) {
        csrf_refused_.inc();
        return session_check::csrf_mismatch;
    }
    return session_check::ok;
}

http::response admin_ui::serve_file(const http::request& req) const
{
    const unsigned v = req.msg.version();
    const auto path = req.path();
    if (path == "/ui") {
        http::response res{bhttp::status::permanent_redirect, v};
        res.set(bhttp::field::location, "/ui/");
        add_ui_headers(res);
        res.prepare_payload();
        return res;
    }
    if (path.starts_with(api_prefix)) {
        return ui_error(404, "not_found", {}, v);
    }
    const auto rel = path.substr(ui_prefix.size());
    const auto* asset = find_asset(rel);
    // The console's own pages (/ui/, /ui/events, /ui/events/12, ...) are one document that
    // routes in the browser, so that every view has a link of its own.
    if (asset == nullptr && rel.substr(rel.rfind('/') + 1).find('.') == std::string_view::npos) {
        asset = find_asset("index.html");
    }
    if (asset == nullptr) {
        return ui_error(404, "not_found", {}, v);
    }
    http::response res{bhttp::status::ok, v};
    res.set(bhttp::field::content_type, content_type_of(asset->path));
    // Revalidated on every load: a new binary serves new files at the same paths.
    res.set(bhttp::field::cache_control, "no-cache");
    add_ui_headers(res);
    if (req.msg.method() != bhttp::verb::head) {
        res.body().assign(reinterpret_cast<const char*>(asset->data), asset->size);
    }
    res.prepare_payload();
    if (req.msg.method() == bhttp::verb::head) {
        res.content_length(asset->size);
    }
    return res;
}

http::response admin_ui::session_info(const http::request& req)
{
    const unsigned v = req.msg.version();
    const auto id = cookie_value(req.msg[bhttp::field::cookie], session_cookie_name);
    const auto s = id.empty() ? std::nullopt : sessions_.find(id);
    std::string body = "{\"auth\":";
    if (s) {
        body += fmt::format("\"cookie\",\"csrf_token\":\"{}\",\"expires_in_s\":{}", s->csrf, s->expires_in.count());
    } else {
        // The gate let it through: the bearer token, which needs no CSRF token.
        body += "\"bearer\",\"csrf_token\":null,\"expires_in_s\":null";
    }
    body += ",\"replay_targets\":[";
    for (std::size_t i = 0; i < replay_targets_.size(); ++i) {
        body += i > 0 ? "," : "";
        append_json_string(body, replay_targets_[i]);
    }
    body += "]}";
    return ui_json(200, std::move(body), v);
}

http::response admin_ui::login(http::request& req)
{
    const unsigned v = req.msg.version();
    if (const auto wait = sessions_.login_wait(req.client_addr); wait.count() > 0) {
        login_throttled_.inc();
        req.log_fields.emplace_back("reason", "login_throttled");
        auto res = ui_error(429, "too_many_failed_logins", fmt::format("try again in {} s", wait.count()), v);
        res.set(bhttp::field::retry_after, std::to_string(wait.count()));
        return res;
    }
    auto parsed = json::parse_flat_object(req.msg.body());
    if (auto* err = std::get_if<json::parse_error>(&parsed)) {
        return ui_error(400, "bad_request", err->detail, v);
    }
    const auto* field = std::get<json::flat_object>(parsed).find("token");
    const auto* token = field == nullptr ? nullptr : std::get_if<std::string>(field);
    if (token == nullptr) {
        return ui_error(400, "bad_request", "expected {\"token\":\"...\"}", v);
    }
    // As the bearer check: digests of equal length compared in constant time.
    const bool same = crypto::constant_time_equal(crypto::sha256(*token), token_digest_);
    if (!same || token->empty()) {
        sessions_.login_failed(req.client_addr);
        login_failed_.inc();
        req.log_fields.emplace_back("reason", "bad_token");
        return ui_error(401, "bad_token", "that is not the admin token", v);
    }
    const auto s = sessions_.create();
    const auto ttl = sessions_.settings().ttl;
    login_ok_.inc();
    log::info("admin: console login", {{"client", req.client_addr}});
    auto res = ui_json(200, fmt::format(R"({{"csrf_token":"{}","expires_in_s":{}}})", s.csrf, ttl.count()), v);
    res.set(bhttp::field::set_cookie, cookie_header(s.id, ttl, req.tls));
    return res;
}

http::response admin_ui::logout(const http::request& req)
{
    const unsigned v = req.msg.version();
    const auto id = cookie_value(req.msg[bhttp::field::cookie], session_cookie_name);
    if (!id.empty()) {
        sessions_.erase(id);
    }
    auto res = ui_json(200, R"({"logged_out":true})", v);
    res.set(bhttp::field::set_cookie, cookie_header("", std::chrono::seconds(0), req.tls));
    return res;
}

namespace {

boost::asio::awaitable<http::response> serve_get(admin_ui* ui, http::request& req)
{
    if (req.path() == "/ui/api/session") {
        co_return ui->session_info(req);
    }
    co_return ui->serve_file(req);
}

boost::asio::awaitable<http::response> serve_login(admin_ui* ui, http::request& req)
{
    co_return ui->login(req);
}

boost::asio::awaitable<http::response> serve_logout(admin_ui* ui, http::request& req)
{
    co_return ui->logout(req);
}

} // namespace

void admin_ui::add_routes(http::router& r)
{
    admin_ui* ui = this;
    r.add(
        bhttp::verb::get, "/ui", [ui](http::request& req) { return serve_get(ui, req); }, true);
    r.add(
        bhttp::verb::head, "/ui", [ui](http::request& req) { return serve_get(ui, req); }, true);
    r.add(bhttp::verb::post, "/ui/api/login", [ui](http::request& req) { return serve_login(ui, req); });
    r.add(bhttp::verb::post, "/ui/api/logout", [ui](http::request& req) { return serve_logout(ui, req); });
}

} // namespace cwhook::callback
