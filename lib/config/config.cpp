// Design: every configuration key is one row of settings_keys() (section, name, kind, secret
// flag and a projection onto the settings member). That table alone drives reading the TOML
// file, the CWHOOK_<SECTION>_<KEY> environment overrides, unknown-key detection and render(),
// so adding a key is one line here plus its line in config/cwhook.toml. Each row also says what
// a reload does with a changed value: .live() when the application applies it at once (its
// reload takes the whole new settings and hands each part to the component that owns it),
// .needs_restart() when the value is built into something made once at start (listeners of
// other kinds, threads, the database, clients). plan_reload() reads only these marks. The defaults are the
// member initializers of the modules' settings structs: nothing here repeats them.
// Checks that need one value live in the table (shape, range, file exists); checks across
// keys run once the file and the environment are merged. This is the only file that
// includes toml++; the generic machinery is in detail/ so tests can drive it with a table of
// their own (secret keys, for instance, which the real table does not have yet).
#include "config/config.hpp"

#include "callback/admin_policy.hpp"
#include "callback/key_url.hpp"
#include "catchup/sources.hpp"
#include "client/https_client.hpp"
#include "config/detail/key_table.hpp"
#include "config/detail/resolve.hpp"
#include "core/duration.hpp"
#include "core/text.hpp"
#include "crypto/standard_webhooks.hpp"
#include "forward/settings.hpp"
#include "http/address.hpp"
#include "manage/site.hpp"
#include "manage/types.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

namespace cwhook::config {

namespace detail {

namespace {

std::optional<value> from_toml(const toml::node& node)
{
    if (const auto* s = node.as_string()) {
        return value{s->get()};
    }
    if (const auto* n = node.as_integer()) {
        return value{n->get()};
    }
    if (const auto* f = node.as_floating_point()) {
        return value{f->get()};
    }
    if (const auto* b = node.as_boolean()) {
        return value{b->get()};
    }
    if (const auto* a = node.as_array()) {
        std::vector<std::string> items;
        items.reserve(a->size());
        for (const auto& element : *a) {
            const auto* s = element.as_string();
            if (s == nullptr) {
                return std::nullopt;
            }
            items.push_back(s->get());
        }
        return value{std::move(items)};
    }
    return std::nullopt;
}

// Errors are one line (start-up failures go to the journal line by line).
std::string one_line(std::string_view text)
{
    std::string out(text);
    std::replace(out.begin(), out.end(), '\n', ' ');
    return out;
}

} // namespace

outcome<document> parse_toml(std::string_view text, std::string_view source)
{
    toml::table root;
    try {
        root = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        return {boost::system::in_place_error,
                fmt::format("{}:{}:{}: {}", source, where.line, where.column, one_line(e.description()))};
    }
    document doc;
    for (const auto& [name, node] : root) {
        document::section section;
        section.name = std::string(name.str());
        if (const auto* table = node.as_table()) {
            for (const auto& [key, item] : *table) {
                section.items.push_back({std::string(key.str()), from_toml(item)});
            }
        } else {
            section.is_table = false;
            const auto* array = node.as_array();
            if (array != nullptr && array->is_array_of_tables()) {
                section.is_table_array = true;
                for (const auto& element : *array) {
                    std::vector<document::item> items;
                    for (const auto& [key, item] : *element.as_table()) {
                        items.push_back({std::string(key.str()), from_toml(item)});
                    }
                    section.elements.push_back(std::move(items));
                }
            }
        }
        doc.sections.push_back(std::move(section));
    }
    return {boost::system::in_place_value, std::move(doc)};
}

outcome<std::vector<std::string>> parse_toml_array(std::string_view text)
{
    toml::table root;
    try {
        root = toml::parse(fmt::format("v = {}", text));
    } catch (const toml::parse_error& e) {
        return {boost::system::in_place_error, one_line(e.description())};
    }
    // One value only: a newline in the variable must not smuggle in more keys.
    const auto* node = root.get("v");
    const auto v = node != nullptr && root.size() == 1 ? from_toml(*node) : std::nullopt;
    if (!v || !std::holds_alternative<std::vector<std::string>>(*v)) {
        return {boost::system::in_place_error, "expected an array of strings"};
    }
    return {boost::system::in_place_value, std::get<std::vector<std::string>>(*v)};
}

} // namespace detail

namespace {

using make = detail::make_key<settings>;

std::optional<std::string> listen_problem(std::string_view text)
{
    if (!http::parse_listen(text)) {
        return "expected host:port";
    }
    return std::nullopt;
}

std::optional<std::string> optional_listen_problem(std::string_view text)
{
    if (text.empty()) {
        return std::nullopt;
    }
    return listen_problem(text);
}

std::optional<std::string> catch_up_type_problem(std::string_view text)
{
    if (catchup::find_source(text)) {
        return std::nullopt;
    }
    std::string known;
    for (const auto& src : catchup::sources()) {
        known += known.empty() ? "" : ", ";
        known += src.type;
    }
    return fmt::format("not a type catch-up knows (one of {})", known);
}

std::optional<std::string> host_port_problem(std::string_view text)
{
    if (!callback::parse_host_port(text)) {
        return "expected a host or host:port";
    }
    return std::nullopt;
}

std::optional<std::string> origin_problem(std::string_view text)
{
    if (!callback::normalize_origin(text)) {
        return "expected an origin like https://admin.example.com";
    }
    return std::nullopt;
}

std::optional<std::string> cidr_problem(std::string_view text)
{
    if (!http::parse_cidr(text)) {
        return "expected an address or CIDR like 10.0.0.0/8";
    }
    return std::nullopt;
}

std::optional<std::string> key_hosts_problem(const std::vector<std::string>& hosts)
{
    auto policy = callback::key_url_policy::make(hosts);
    if (!policy) {
        return policy.error();
    }
    return std::nullopt;
}

std::optional<std::string> company_problem(std::string_view company)
{
    auto policy = callback::key_url_policy::make({}, {std::string(company)});
    if (!policy) {
        return "a company id is printable ASCII without spaces, at most 128 characters";
    }
    return std::nullopt;
}

// TLS material and CA bundles are opened after start-up has begun; checking them here turns
// a late, vague failure into a line naming the key.
std::optional<std::string> existing_file(std::string_view path)
{
    if (path.empty()) {
        return std::nullopt;
    }
    return detail::file_problem(std::string(path));
}

std::optional<std::string> callback_path_problem(std::string_view path)
{
    if (!path.starts_with('/')) {
        return "must start with /";
    }
    // The router matches the callback path exactly; "/" or a probe path would shadow the
    // health endpoints that load balancers and systemd rely on.
    if (path == "/") {
        return "must not be / (/healthz and /readyz must stay reachable)";
    }
    if (path.ends_with('/')) {
        return "must not end with /";
    }
    if (path == "/healthz" || path == "/readyz") {
        return "is reserved for the health probes";
    }
    for (const char c : path) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '?' || c == '#' || c == ' ' || u < 0x20 || u == 0x7f) {
            return "must be a plain path (no query, fragment, spaces or control characters)";
        }
    }
    return std::nullopt;
}

std::optional<std::string> not_empty(std::string_view text)
{
    if (text.empty()) {
        return "must not be empty";
    }
    return std::nullopt;
}

constexpr millis positive{1};

// Attempts of one delivery at most: a schedule is a list of delays, not a way to retry forever.
constexpr std::size_t max_retry_steps = 100;

std::optional<std::string> site_problem(std::string_view text)
{
    if (text.empty()) {
        return std::nullopt;
    }
    auto ep = manage::parse_site(text);
    if (!ep) {
        return ep.error();
    }
    return std::nullopt;
}

std::optional<std::string> api_version_problem(std::string_view text)
{
    // It goes into a header: "2025.1", digits and dots only.
    if (text.empty()) {
        return "must not be empty";
    }
    for (const char c : text) {
        if (!(c >= '0' && c <= '9') && c != '.') {
            return "expected a version like 2025.1";
        }
    }
    return std::nullopt;
}

std::optional<std::string> codebase_problem(std::string_view text)
{
    for (const char c : text) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.' || c == '/';
        if (!ok || text.find("..") != std::string_view::npos) {
            return "expected a codebase like v2025_1/";
        }
    }
    return std::nullopt;
}

const std::vector<detail::key<settings>>& settings_keys()
{
    static const std::vector<detail::key<settings>> table{
        // [server]
        make::list(
            "server", "listen", [](auto& s) -> auto& { return s.app.server.listen; }, listen_problem)
            .live(),
        make::list(
            "server", "tls_listen", [](auto& s) -> auto& { return s.app.server.tls_listen; }, listen_problem)
            .live(),
        make::path(
            "server", "tls_cert", [](auto& s) -> auto& { return s.app.server.tls_cert; }, existing_file)
            .live(),
        make::path(
            "server", "tls_key", [](auto& s) -> auto& { return s.app.server.tls_key; }, existing_file)
            .live(),
        make::string(
            "server", "callback_path", [](auto& s) -> auto& { return s.app.callback_path; }, callback_path_problem)
            .needs_restart(),
        make::count(
            "server", "max_body_bytes", [](auto& s) -> auto& { return s.app.server.max_body_bytes; }, 1)
            .live(),
        make::count(
            "server", "max_header_bytes", [](auto& s) -> auto& { return s.app.server.max_header_bytes; }, 1)
            .live(),
        make::count(
            "server", "max_connections", [](auto& s) -> auto& { return s.app.server.max_connections; }, 1)
            .live(),
        make::count(
            "server", "max_connections_per_client",
            [](auto& s) -> auto& { return s.app.server.max_connections_per_client; }, 1)
            .live(),
        make::list(
            "server", "trusted_proxies", [](auto& s) -> auto& { return s.app.server.trusted_proxies; }, cidr_problem)
            .live(),
        // A zero per-operation timeout would fail every connection at once.
        make::duration(
            "server", "handshake_timeout", [](auto& s) -> auto& { return s.app.server.handshake_timeout; }, positive)
            .live(),
        make::duration(
            "server", "header_timeout", [](auto& s) -> auto& { return s.app.server.header_timeout; }, positive)
            .live(),
        make::duration(
            "server", "body_timeout", [](auto& s) -> auto& { return s.app.server.body_timeout; }, positive)
            .live(),
        make::duration(
            "server", "write_timeout", [](auto& s) -> auto& { return s.app.server.write_timeout; }, positive)
            .live(),
        make::duration(
            "server", "idle_timeout", [](auto& s) -> auto& { return s.app.server.idle_timeout; }, positive)
            .live(),
        make::duration(
            "server", "drain_grace", [](auto& s) -> auto& { return s.app.server.drain_grace; }, millis{0},
            millis{600'000})
            .needs_restart(),
        make::duration(
            "server", "drain_timeout", [](auto& s) -> auto& { return s.app.server.drain_timeout; })
            .live(),
        make::count(
            "server", "threads", [](auto& s) -> auto& { return s.app.server.threads; }, 0, 256)
            .needs_restart(),

        // [verify]
        make::choice(
            "verify", "mode", [](auto& s) -> auto& { return s.app.verify.mode; },
            std::vector<std::pair<std::string_view, callback::verify_mode>>{{"enforce", callback::verify_mode::enforce},
                                                                            {"report", callback::verify_mode::report},
                                                                            {"off", callback::verify_mode::off}})
            .live(),
        make::list(
            "verify", "allowed_key_hosts", [](auto& s) -> auto& { return s.app.verify.allowed_key_hosts; }, {},
            key_hosts_problem)
            .live(),
        make::list(
            "verify", "companies", [](auto& s) -> auto& { return s.app.verify.companies; }, company_problem)
            .live(),
        make::duration(
            "verify", "key_cache_ttl", [](auto& s) -> auto& { return s.app.verify.key_cache_ttl; })
            .live(),
        // The fetch runs while a sender waits for its answer; Manage gives up on slow receivers.
        make::duration(
            "verify", "key_fetch_timeout", [](auto& s) -> auto& { return s.app.verify.key_fetch_timeout; }, positive,
            millis{60'000})
            .live(),
        make::duration(
            "verify", "key_failure_ttl", [](auto& s) -> auto& { return s.app.verify.key_failure_ttl; })
            .live(),
        make::duration(
            "verify", "key_refetch_interval", [](auto& s) -> auto& { return s.app.verify.key_refetch_interval; })
            .live(),
        // Manage waits 5 s for an answer; a deadline beyond that only answers a gone sender.
        make::duration(
            "verify", "answer_deadline", [](auto& s) -> auto& { return s.app.verify.answer_deadline; }, positive,
            millis{60'000})
            .live(),
        make::count(
            "verify", "key_fetch_rate", [](auto& s) -> auto& { return s.app.verify.key_fetch_rate; }, 1, 1000)
            .live(),
        make::count(
            "verify", "key_fetch_concurrency", [](auto& s) -> auto& { return s.app.verify.key_fetch_concurrency; }, 1,
            64)
            .live(),
        make::count(
            "verify", "key_max_bytes", [](auto& s) -> auto& { return s.app.verify.key_max_bytes; }, 1)
            .live(),
        make::count(
            "verify", "key_cache_entries", [](auto& s) -> auto& { return s.app.verify.key_cache_entries; }, 1)
            .live(),
        make::path(
            "verify", "ca_file", [](auto& s) -> auto& { return s.app.verify.ca_file; }, existing_file)
            .needs_restart(),
        make::count(
            "verify", "max_pending", [](auto& s) -> auto& { return s.app.verify.max_pending; }, 1)
            .live(),
        make::count(
            "verify", "max_failed", [](auto& s) -> auto& { return s.app.verify.max_failed; }, 0)
            .live(),
        // Zero would retry pending events in a tight loop.
        make::duration(
            "verify", "pending_retry_min", [](auto& s) -> auto& { return s.app.verify.pending_retry_min; }, positive)
            .live(),
        make::duration(
            "verify", "pending_retry_max", [](auto& s) -> auto& { return s.app.verify.pending_retry_max; }, positive)
            .live(),
        make::duration(
            "verify", "pending_max_age", [](auto& s) -> auto& { return s.app.verify.pending_max_age; }, positive)
            .live(),

        // [storage]
        make::choice(
            "storage", "backend", [](auto& s) -> auto& { return s.app.storage.backend; },
            std::vector<std::pair<std::string_view, store::backend>>{{"sqlite", store::backend::sqlite},
                                                                     {"postgres", store::backend::postgres}})
            .needs_restart(),
        // A secret: it may hold a password (url_file and systemd credentials as for the others).
        make::secret(
            "storage", "url", [](auto& s) -> auto& { return s.app.storage.url; },
            [](std::string_view v) -> std::optional<std::string> {
                if (v.empty()) {
                    return std::nullopt; // backend = "sqlite"; cross_check() wants one for postgres
                }
                if (auto why = store::check_url(v); !why.empty()) {
                    return "not a PostgreSQL connection string: " + why;
                }
                return std::nullopt;
            })
            .needs_restart(),
        make::count(
            "storage", "pool", [](auto& s) -> auto& { return s.app.storage.pool; }, 1, 64)
            .needs_restart(),
        make::duration(
            "storage", "claim_lease", [](auto& s) -> auto& { return s.app.storage.claim_lease; }, positive)
            .needs_restart(),
        make::string(
            "storage", "path", [](auto& s) -> auto& { return s.app.storage.path; }, not_empty)
            .needs_restart(),
        make::choice(
            "storage", "synchronous", [](auto& s) -> auto& { return s.app.storage.synchronous; },
            std::vector<std::pair<std::string_view, store::synchronous_mode>>{
                {"full", store::synchronous_mode::full}, {"normal", store::synchronous_mode::normal}})
            .needs_restart(),
        make::duration(
            "storage", "busy_timeout", [](auto& s) -> auto& { return s.app.storage.busy_timeout; })
            .needs_restart(),
        make::count(
            "storage", "queue_limit", [](auto& s) -> auto& { return s.app.storage.queue_limit; }, 1)
            .needs_restart(),
        make::count(
            "storage", "max_batch", [](auto& s) -> auto& { return s.app.storage.max_batch; }, 1)
            .needs_restart(),
        make::count(
            "storage", "cache_mib", [](auto& s) -> auto& { return s.app.storage.cache_mib; }, 1, 4096)
            .needs_restart(),
        make::count(
            "storage", "max_rejections", [](auto& s) -> auto& { return s.app.storage.max_rejections; }, 1)
            .needs_restart(),
        make::count(
            "storage", "rejection_queue_limit", [](auto& s) -> auto& { return s.app.storage.rejection_queue_limit; }, 1)
            .needs_restart(),
        make::duration(
            "storage", "retention", [](auto& s) -> auto& { return s.app.storage.retention; })
            .needs_restart(),
        make::count(
            "storage", "retention_batch", [](auto& s) -> auto& { return s.app.storage.retention_batch; }, 1, 100'000)
            .needs_restart(),
        make::duration(
            "storage", "retention_interval", [](auto& s) -> auto& { return s.app.storage.retention_interval; },
            positive)
            .needs_restart(),

        // [admin]
        make::string(
            "admin", "listen", [](auto& s) -> auto& { return s.app.admin.listen; }, optional_listen_problem)
            .needs_restart(),
        make::secret(
            "admin", "token", [](auto& s) -> auto& { return s.app.admin.token; })
            .needs_restart(),
        make::list(
            "admin", "hosts", [](auto& s) -> auto& { return s.app.admin.hosts; }, host_port_problem)
            .needs_restart(),
        make::list(
            "admin", "origins", [](auto& s) -> auto& { return s.app.admin.origins; }, origin_problem)
            .needs_restart(),
        make::list(
            "admin", "replay_targets", [](auto& s) -> auto& { return s.app.admin.replay_targets; }, host_port_problem)
            .needs_restart(),
        // A session shorter than a minute could not be used; one longer than a week outlives
        // any token rotation an operator would plan.
        make::duration(
            "admin", "session_lifetime", [](auto& s) -> auto& { return s.app.admin.session_lifetime; }, millis{60'000},
            millis{7LL * 24 * 3600 * 1000})
            .needs_restart(),

        // [manage]
        make::string(
            "manage", "site", [](auto& s) -> auto& { return s.app.manage.site; }, site_problem)
            .needs_restart(),
        make::string(
            "manage", "company_id", [](auto& s) -> auto& { return s.app.manage.company_id; })
            .needs_restart(),
        make::string(
            "manage", "public_key", [](auto& s) -> auto& { return s.app.manage.public_key; })
            .needs_restart(),
        make::secret(
            "manage", "private_key", [](auto& s) -> auto& { return s.app.manage.private_key; })
            .needs_restart(),
        make::secret(
            "manage", "client_id", [](auto& s) -> auto& { return s.app.manage.client_id; })
            .needs_restart(),
        make::string(
            "manage", "api_version", [](auto& s) -> auto& { return s.app.manage.api_version; }, api_version_problem)
            .needs_restart(),
        make::string(
            "manage", "api_host", [](auto& s) -> auto& { return s.app.manage.api_host; }, site_problem)
            .needs_restart(),
        make::string(
            "manage", "codebase", [](auto& s) -> auto& { return s.app.manage.codebase; }, codebase_problem)
            .needs_restart(),
        make::path(
            "manage", "ca_file", [](auto& s) -> auto& { return s.app.manage.ca_file; }, existing_file)
            .needs_restart(),
        make::duration(
            "manage", "timeout", [](auto& s) -> auto& { return s.app.manage.timeout; }, positive, millis{600'000})
            .needs_restart(),
        make::duration(
            "manage", "connect_timeout", [](auto& s) -> auto& { return s.app.manage.connect_timeout; }, positive,
            millis{600'000})
            .needs_restart(),
        make::count(
            "manage", "max_attempts", [](auto& s) -> auto& { return s.app.manage.max_attempts; }, 1, 20)
            .needs_restart(),
        make::duration(
            "manage", "retry_max_delay", [](auto& s) -> auto& { return s.app.manage.retry_max_delay; }, positive)
            .needs_restart(),
        make::count(
            "manage", "page_size", [](auto& s) -> auto& { return s.app.manage.page_size; }, 1, 1000)
            .needs_restart(),
        make::choice(
            "manage", "paging", [](auto& s) -> auto& { return s.app.manage.paging; },
            std::vector<std::pair<std::string_view, manage::paging_mode>>{
                {"forward-only", manage::paging_mode::forward_only}, {"navigable", manage::paging_mode::navigable}})
            .needs_restart(),
        make::duration(
            "manage", "check_interval", [](auto& s) -> auto& { return s.app.manage.check_interval; })
            .needs_restart(),
        make::flag(
            "manage", "auto_heal", [](auto& s) -> auto& { return s.app.manage.auto_heal; })
            .needs_restart(),

        // [forward]: the forwarder takes the whole section at reload; only its TLS context
        // (ca_file) is built once.
        make::durations(
            "forward", "retry_schedule", [](auto& s) -> auto& { return s.app.forward.retries; }, 1, max_retry_steps)
            .live(),
        // Below 1: a delay scaled by (1 - jitter) never shrinks to nothing.
        make::number(
            "forward", "jitter", [](auto& s) -> auto& { return s.app.forward.jitter; }, 0, 0.9)
            .live(),
        make::duration(
            "forward", "max_retry_after", [](auto& s) -> auto& { return s.app.forward.max_retry_after; })
            .live(),
        make::count(
            "forward", "breaker_threshold", [](auto& s) -> auto& { return s.app.forward.breaker_threshold; }, 0)
            .live(),
        make::duration(
            "forward", "breaker_probe_interval", [](auto& s) -> auto& { return s.app.forward.breaker_probe_interval; },
            positive)
            .live(),
        // Each poll is a query on the shared store: not a busy loop, not so rare that retries
        // come due long after their time.
        make::duration(
            "forward", "poll_interval", [](auto& s) -> auto& { return s.app.forward.poll_interval; }, millis{50},
            millis{3'600'000})
            .live(),
        // Shorter than a second would hand a slow sender's delivery to another while its
        // answer is on the way back (a duplicate); longer than an hour delays recovery for nothing.
        make::duration(
            "forward", "lease_margin", [](auto& s) -> auto& { return s.app.forward.lease_margin; }, millis{1'000},
            millis{3'600'000})
            .live(),
        make::path(
            "forward", "ca_file", [](auto& s) -> auto& { return s.app.forward.ca_file; }, existing_file)
            .needs_restart(),

        // [catch_up]
        make::flag(
            "catch_up", "enabled", [](auto& s) -> auto& { return s.app.catch_up.enabled; })
            .needs_restart(),
        make::list(
            "catch_up", "types", [](auto& s) -> auto& { return s.app.catch_up.types; }, catch_up_type_problem)
            .needs_restart(),
        make::duration(
            "catch_up", "interval", [](auto& s) -> auto& { return s.app.catch_up.interval; }, millis{1000})
            .needs_restart(),
        make::duration(
            "catch_up", "gap_after", [](auto& s) -> auto& { return s.app.catch_up.gap_after; }, millis{1000})
            .needs_restart(),
        make::duration(
            "catch_up", "heartbeat_interval", [](auto& s) -> auto& { return s.app.catch_up.heartbeat_interval; },
            millis{100})
            .needs_restart(),
        make::duration(
            "catch_up", "overlap", [](auto& s) -> auto& { return s.app.catch_up.overlap; })
            .needs_restart(),
        make::duration(
            "catch_up", "initial_window", [](auto& s) -> auto& { return s.app.catch_up.initial_window; }, millis{1000})
            .needs_restart(),
        make::number(
            "catch_up", "rate", [](auto& s) -> auto& { return s.app.catch_up.rate; }, 0.01, 1000)
            .needs_restart(),
        make::count(
            "catch_up", "batch", [](auto& s) -> auto& { return s.app.catch_up.batch; }, 1, 200)
            .needs_restart(),
        make::list(
            "catch_up", "reconcile_deletes", [](auto& s) -> auto& { return s.app.catch_up.reconcile_deletes; },
            catch_up_type_problem)
            .needs_restart(),
        make::duration(
            "catch_up", "reconcile_interval", [](auto& s) -> auto& { return s.app.catch_up.reconcile_interval; },
            millis{1000})
            .needs_restart(),
        make::duration(
            "catch_up", "lease", [](auto& s) -> auto& { return s.app.catch_up.lease; }, millis{1000})
            .needs_restart(),

        // [log]
        make::choice(
            "log", "level", [](auto& s) -> auto& { return s.log.level; },
            std::vector<std::pair<std::string_view, log::level>>{{"error", log::level::error},
                                                                 {"warn", log::level::warn},
                                                                 {"info", log::level::info},
                                                                 {"debug", log::level::debug}})
            .live(),
        make::choice(
            "log", "format", [](auto& s) -> auto& { return s.log.format; },
            std::vector<std::pair<std::string_view, log::format>>{{"text", log::format::text},
                                                                  {"json", log::format::json}})
            .live(),
    };
    return table;
}

std::optional<std::string> destination_name_problem(std::string_view name)
{
    const bool ok = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
    if (!ok) {
        return "expected 1 to 64 letters, digits, '_', '.' or '-'";
    }
    return std::nullopt;
}

std::optional<std::string> destination_url_problem(std::string_view url)
{
    if (auto r = client::request_for_url(url); !r) {
        return r.error();
    }
    return std::nullopt;
}

std::optional<std::string> webhook_secret_problem(std::string_view secret)
{
    // webhook_key's reasons never quote the secret; the loader prints <redacted> for the value.
    if (auto key = crypto::webhook_key(secret); !key) {
        return key.error();
    }
    return std::nullopt;
}

std::optional<std::string> action_problem(std::string_view action)
{
    const auto a = lower_ascii(action);
    if (a != "added" && a != "updated" && a != "deleted") {
        return "expected added, updated or deleted";
    }
    return std::nullopt;
}

// [[destinations]]: each table is read through a key table of its own, so its values are
// checked and rendered like the section keys'. Reload takes the list as a whole (the
// forwarder adds, changes and removes destinations), so the rows carry no reload marks.
const std::vector<detail::key<forward::destination>>& destination_keys()
{
    using make = detail::make_key<forward::destination>;
    static const std::vector<detail::key<forward::destination>> table{
        make::string(
            "destinations", "name", [](auto& d) -> auto& { return d.name; }, destination_name_problem),
        make::string(
            "destinations", "url", [](auto& d) -> auto& { return d.url; }, destination_url_problem),
        make::secret(
            "destinations", "secret", [](auto& d) -> auto& { return d.secret; }, webhook_secret_problem),
        make::list(
            "destinations", "types", [](auto& d) -> auto& { return d.types; }, not_empty),
        make::list(
            "destinations", "actions", [](auto& d) -> auto& { return d.actions; }, action_problem),
        make::choice(
            "destinations", "body", [](auto& d) -> auto& { return d.body; },
            std::vector<std::pair<std::string_view, forward::body_format>>{{"raw", forward::body_format::raw},
                                                                           {"event", forward::body_format::event}}),
        make::duration(
            "destinations", "timeout", [](auto& d) -> auto& { return d.timeout; }, millis{100}, millis{300'000}),
        make::number(
            "destinations", "rate", [](auto& d) -> auto& { return d.rate; }, 0),
        make::count(
            "destinations", "concurrency", [](auto& d) -> auto& { return d.concurrency; }, 1, 256),
        make::choice(
            "destinations", "ordering", [](auto& d) -> auto& { return d.order; },
            std::vector<std::pair<std::string_view, forward::ordering>>{{"none", forward::ordering::none},
                                                                        {"entity", forward::ordering::entity}}),
        make::durations(
            "destinations", "retry_schedule", [](auto& d) -> auto& { return d.retries; }, 1, max_retry_steps),
    };
    return table;
}

// Rules that relate several keys, checked on the merged result.
std::optional<std::string> cross_check(const settings& s)
{
    const auto& server = s.app.server;
    if (server.listen.empty() && server.tls_listen.empty()) {
        return "server.listen and server.tls_listen: both empty, nothing to listen on";
    }
    if (!server.tls_listen.empty() && (server.tls_cert.empty() || server.tls_key.empty())) {
        return "server.tls_listen: needs server.tls_cert and server.tls_key";
    }
    if (!s.app.manage.site.empty() && !s.app.manage.api_host.empty()) {
        // Each is valid alone; an api_host without a scheme takes the site's.
        if (auto ep = manage::api_endpoint(s.app.manage); !ep) {
            return ep.error();
        }
    }
    if (s.app.manage.check_interval.count() > 0) {
        if (auto missing = manage::missing_keys(s.app.manage)) {
            return "manage.check_interval: set, but " + *missing;
        }
    }
    if (s.app.storage.backend == store::backend::postgres && s.app.storage.url.empty()) {
        return "storage.backend: \"postgres\" needs storage.url (or storage.url_file)";
    }
    const auto& verify = s.app.verify;
    if (verify.pending_retry_min > verify.pending_retry_max) {
        return fmt::format("verify.pending_retry_min: {}: must not exceed verify.pending_retry_max ({})",
                           detail::quote(format_duration(verify.pending_retry_min)),
                           detail::quote(format_duration(verify.pending_retry_max)));
    }
    return std::nullopt;
}

} // namespace

std::vector<key_info> keys()
{
    std::vector<key_info> out;
    for (const auto& k : settings_keys()) {
        out.push_back({fmt::format("{}.{}", k.section, k.name), k.effect});
    }
    // The Manage API client and the subscription check are built once at start.
    out.push_back({"subscriptions", reload_effect::restart});
    // The forwarder adds, changes and removes destinations at reload.
    out.push_back({"destinations", reload_effect::live});
    return out;
}

reload_plan plan_reload(const settings& running, const settings& next)
{
    reload_plan plan{{}, {}, next};
    for (const auto& k : settings_keys()) {
        CWHOOK_CHECK(k.effect != reload_effect::unclassified);
        if (k.same(running, next)) {
            continue;
        }
        auto name = fmt::format("{}.{}", k.section, k.name);
        if (k.effect == reload_effect::live) {
            plan.live.push_back(std::move(name));
        } else {
            plan.restart.push_back(std::move(name));
            k.copy(plan.in_force, running);
        }
    }
    if (running.app.subscriptions != next.app.subscriptions) {
        plan.restart.emplace_back("subscriptions");
        plan.in_force.app.subscriptions = running.app.subscriptions;
    }
    if (running.app.destinations != next.app.destinations) {
        plan.live.emplace_back("destinations");
    }
    // Not configuration: the sockets the service manager passed at start.
    plan.in_force.app.server.inherited = running.app.server.inherited;
    return plan;
}

env_lookup process_env()
{
    return [](std::string_view name) -> std::optional<std::string> {
        if (const char* v = std::getenv(std::string(name).c_str())) {
            return std::string(v);
        }
        return std::nullopt;
    };
}

namespace {

// [[subscriptions]]: an array of tables, outside the key table (which is one value per key).
// Errors name the entry: "subscriptions[2].level: ...". The environment cannot set them.
boost::system::result<std::vector<manage::subscription>, std::string>
read_subscriptions(const detail::document::section& section)
{
    using out_t = boost::system::result<std::vector<manage::subscription>, std::string>;
    const auto error = [](std::string why) { return out_t{boost::system::in_place_error, std::move(why)}; };
    if (!section.is_table_array) {
        return error("subscriptions: expected [[subscriptions]] tables (an array of tables)");
    }
    std::vector<manage::subscription> out;
    for (std::size_t i = 0; i < section.elements.size(); ++i) {
        const auto where = fmt::format("subscriptions[{}]", i + 1);
        manage::subscription sub;
        bool object_id_given = false;
        bool type_given = false;
        bool level_given = false;
        for (const auto& item : section.elements[i]) {
            const auto dotted = where + "." + item.name;
            const bool is_string = item.v && std::holds_alternative<std::string>(*item.v);
            if (item.name == "object_id") {
                if (!item.v || !std::holds_alternative<std::int64_t>(*item.v)) {
                    return error(dotted + ": expected an integer");
                }
                sub.object_id = std::get<std::int64_t>(*item.v);
                object_id_given = true;
                continue;
            }
            std::string* field = nullptr;
            if (item.name == "type") {
                field = &sub.type;
                type_given = true;
            } else if (item.name == "level") {
                field = &sub.level;
                level_given = true;
            } else if (item.name == "url") {
                field = &sub.url;
            } else if (item.name == "description") {
                field = &sub.description;
            } else {
                return error(dotted + ": unknown key (type, level, object_id, url, description)");
            }
            if (!is_string) {
                return error(dotted + ": expected a string");
            }
            *field = std::get<std::string>(*item.v);
        }
        if (!type_given || !level_given) {
            return error(where + ": type and level are required");
        }
        if (auto why = manage::normalize(sub, object_id_given)) {
            return error(where + ": " + *why);
        }
        for (std::size_t j = 0; j < out.size(); ++j) {
            const auto& o = out[j];
            if (o.type == sub.type && o.level == sub.level && o.object_id == sub.object_id && o.url == sub.url) {
                return error(fmt::format("{}: same type, level, object_id and url as subscriptions[{}]", where, j + 1));
            }
        }
        out.push_back(std::move(sub));
    }
    return {boost::system::in_place_value, std::move(out)};
}

// [[destinations]]: like [[subscriptions]], an array of tables the environment cannot set,
// errors naming the entry ("destinations[2].url: ..."). Each table's keys go through
// destination_keys(); `secret` may be given as `secret_file` (a relative name is looked up in
// $CREDENTIALS_DIRECTORY too), and no message ever holds the secret.
boost::system::result<std::vector<forward::destination>, std::string>
read_destinations(const detail::document::section& section, const std::optional<std::string>& credentials_dir)
{
    using out_t = boost::system::result<std::vector<forward::destination>, std::string>;
    const auto error = [](std::string why) { return out_t{boost::system::in_place_error, std::move(why)}; };
    if (!section.is_table_array) {
        return error("destinations: expected [[destinations]] tables (an array of tables)");
    }
    const auto& table = destination_keys();
    std::string known;
    for (const auto& k : table) {
        known += known.empty() ? "" : ", ";
        known += k.secret ? fmt::format("{0}, {0}_file", k.name) : std::string(k.name);
    }
    std::vector<forward::destination> out;
    for (std::size_t i = 0; i < section.elements.size(); ++i) {
        const auto where = fmt::format("destinations[{}]", i + 1);
        forward::destination d;
        std::vector<bool> given(table.size(), false);
        for (const auto& item : section.elements[i]) {
            const auto dotted = where + "." + item.name;
            const auto found = std::find_if(table.begin(), table.end(), [&](const auto& k) {
                return k.name == item.name || (k.secret && item.name == fmt::format("{}_file", k.name));
            });
            if (found == table.end()) {
                return error(fmt::format("{}: unknown key ({})", dotted, known));
            }
            const auto& k = *found;
            const auto index = static_cast<std::size_t>(found - table.begin());
            const bool via_file = k.name != item.name;
            if (given[index]) {
                return error(fmt::format("{0}.{1} and {0}.{1}_file: give one, not both", where, k.name));
            }
            given[index] = true;
            const auto wanted = via_file ? detail::kind::string : k.type;
            auto v = detail::as_kind(wanted, item.v);
            if (!v) {
                return error(fmt::format("{}: {}", dotted, detail::expected_text(wanted)));
            }
            // Shown in place of a refused value: a secret file's name, never its content.
            std::optional<std::string> shown;
            if (via_file) {
                const auto path = std::get<std::string>(*v);
                auto secret = detail::read_secret_file(path, credentials_dir);
                if (!secret) {
                    return error(fmt::format("{}: {}", dotted, secret.error()));
                }
                // A trailing blank or newline is the editor's, not part of a base64 secret.
                while (!secret->empty() && std::isspace(static_cast<unsigned char>(secret->back())) != 0) {
                    secret->pop_back();
                }
                *v = std::move(*secret);
                d.secret_file = path;
                shown = path;
            } else if (k.secret) {
                shown = "<redacted>";
            }
            if (auto refused = k.set(d, *v)) {
                if (refused->shown.empty()) {
                    return error(fmt::format("{}: {}", dotted, refused->why));
                }
                return error(fmt::format("{}: {}: {}", dotted, shown.value_or(refused->shown), refused->why));
            }
        }
        // A given name, url or secret is never empty (each check refuses ""): empty is missing.
        if (d.name.empty() || d.url.empty()) {
            return error(where + ": name and url are required");
        }
        if (d.secret.empty()) {
            return error(where + ": secret or secret_file is required");
        }
        // Matched against the stored events' lower-case type and action.
        for (auto& type : d.types) {
            type = lower_ascii(type);
        }
        for (auto& action : d.actions) {
            action = lower_ascii(action);
        }
        for (std::size_t j = 0; j < out.size(); ++j) {
            if (out[j].name == d.name) {
                return error(
                    fmt::format("{}.name: {}: already used by destinations[{}]", where, detail::quote(d.name), j + 1));
            }
        }
        out.push_back(std::move(d));
    }
    return {boost::system::in_place_value, std::move(out)};
}

// Everything after reading and parsing the file (doc null: no file, embedded defaults).
boost::system::result<settings, std::string> settle(const detail::document* doc_in, const env_lookup& env)
{
    std::optional<detail::document> rest;
    std::vector<manage::subscription> subscriptions;
    std::vector<forward::destination> destinations;
    if (doc_in != nullptr) {
        rest.emplace();
        for (const auto& section : doc_in->sections) {
            if (section.name == "subscriptions") {
                auto subs = read_subscriptions(section);
                if (!subs) {
                    return {boost::system::in_place_error, std::move(subs.error())};
                }
                subscriptions = std::move(*subs);
            } else if (section.name == "destinations") {
                auto dests = read_destinations(section, env ? env("CREDENTIALS_DIRECTORY") : std::nullopt);
                if (!dests) {
                    return {boost::system::in_place_error, std::move(dests.error())};
                }
                destinations = std::move(*dests);
            } else {
                rest->sections.push_back(section);
            }
        }
    }
    const detail::document* doc = rest ? &*rest : nullptr;
    auto s = detail::resolve(settings_keys(), doc, env);
    if (!s) {
        return {boost::system::in_place_error, std::move(s.error())};
    }
    s->app.subscriptions = std::move(subscriptions);
    s->app.destinations = std::move(destinations);
    if (auto why = cross_check(*s)) {
        return {boost::system::in_place_error, std::move(*why)};
    }
    return {boost::system::in_place_value, std::move(*s)};
}

} // namespace

boost::system::result<settings, std::string> load(const std::optional<std::string>& file, const env_lookup& env)
{
    std::optional<detail::document> doc;
    if (file) {
        auto text = detail::read_text_file(*file);
        if (!text) {
            return {boost::system::in_place_error, fmt::format("{}: {}", *file, text.error())};
        }
        auto parsed = detail::parse_toml(*text, *file);
        if (!parsed) {
            return {boost::system::in_place_error, std::move(parsed.error())};
        }
        doc = std::move(*parsed);
    }
    return settle(doc ? &*doc : nullptr, env);
}

boost::system::result<settings, std::string> load_text(std::string_view toml, const env_lookup& env)
{
    auto parsed = detail::parse_toml(toml, "<text>");
    if (!parsed) {
        return {boost::system::in_place_error, std::move(parsed.error())};
    }
    return settle(&*parsed, env);
}

std::string render(const settings& s)
{
    std::string out = "# Effective configuration (cwhook check-config). Secrets are shown as \"<redacted>\".\n\n" +
                      detail::render(settings_keys(), s);
    for (const auto& sub : s.app.subscriptions) {
        out += fmt::format("\n[[subscriptions]]\ntype = {}\nlevel = {}\nobject_id = {}\nurl = {}\ndescription = {}\n",
                           detail::quote(sub.type), detail::quote(sub.level), sub.object_id, detail::quote(sub.url),
                           detail::quote(sub.description));
    }
    for (const auto& d : s.app.destinations) {
        out += "\n[[destinations]]\n";
        for (const auto& k : destination_keys()) {
            if (k.secret) {
                // The file's name is no secret, and render() output must load again.
                out += d.secret_file.empty() ? fmt::format("{} = {}\n", k.name, detail::quote("<redacted>"))
                                             : fmt::format("{}_file = {}\n", k.name, detail::quote(d.secret_file));
                continue;
            }
            if (k.name == "retry_schedule" && d.retries.empty()) {
                continue; // [forward] retry_schedule applies; an empty list is not a valid value
            }
            out += fmt::format("{} = {}\n", k.name, detail::toml_literal(k.get(d)));
        }
    }
    return out;
}

std::vector<std::string> warnings(const settings& s)
{
    std::vector<std::string> out;
    if (s.app.verify.mode != callback::verify_mode::off && callback::trusted_companies(s.app).empty()) {
        out.emplace_back("no Manage company is configured: every callback will be refused with 403 "
                         "company_not_allowed; set verify.companies (or manage.company_id)");
    }
    for (std::size_t i = 0; i < s.app.destinations.size(); ++i) {
        const auto& d = s.app.destinations[i];
        const auto target = client::request_for_url(d.url);
        if (target && !target->tls && !manage::is_loopback_host(target->host)) {
            // Signed, so not alterable unnoticed, but readable by anyone on the path.
            const bool v6 = target->host.find(':') != std::string::npos;
            out.push_back(fmt::format("destinations[{}] ({}): events go unencrypted to {}{}{}:{}; use https://", i + 1,
                                      d.name, v6 ? "[" : "", target->host, v6 ? "]" : "", target->port));
        }
    }
    return out;
}

} // namespace cwhook::config
