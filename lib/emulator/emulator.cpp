// Design: the emulator is a Manage-shaped application on the project's own HTTP server
// (lib/http) and outbound client (lib/client), on one io_context run by one thread of its
// own. One thread keeps it simple and deterministic: handlers, deliveries and timers never
// race, and the state shared with callers on other threads (the callback table, keys,
// faults, recorded requests) sits behind one mutex that no coroutine holds across a
// suspension. The certificate lives in the state directory and is reused across restarts so
// a receiver configured with it as ca_file keeps trusting the emulator.
#include "emulator/emulator.hpp"

#include "core/json_string.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "crypto/digest.hpp"
#include "crypto/tls.hpp"
#include "emulator/callback_table.hpp"
#include "emulator/detail/impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

namespace cwhook::emulator {

namespace net = boost::asio;
namespace beast_http = boost::beast::http;
namespace fs = std::filesystem;

std::string_view to_string(route r)
{
    switch (r) {
    case route::companyinfo: return "companyinfo";
    case route::callbacks_list: return "callbacks_list";
    case route::callbacks_count: return "callbacks_count";
    case route::callbacks_create: return "callbacks_create";
    case route::callback_get: return "callback_get";
    case route::callback_update: return "callback_update";
    case route::callback_delete: return "callback_delete";
    case route::callback_key: return "callback_key";
    case route::records_list: return "records_list";
    case route::records_count: return "records_count";
    case route::record_get: return "record_get";
    case route::control: return "control";
    case route::other: return "other";
    }
    return "other";
}

std::string seen_request::header(std::string_view name) const
{
    for (const auto& [k, v] : headers) {
        if (boost::beast::iequals(k, name)) {
            return v;
        }
    }
    return {};
}

// --- impl -------------------------------------------------------------------------------

emulator::impl::impl(settings s)
    : cfg(std::move(s)), product_instance_id(crypto::random_hex(12)), partner_id(crypto::random_hex(12)),
      codebase(cfg.codebase)
{
    if (codebase.empty() || codebase.back() != '/') {
        codebase.push_back('/');
    }
    new_key_locked();
}

std::string emulator::impl::base_url() const
{
    const bool v6 = host.find(':') != std::string::npos;
    return fmt::format("{}://{}{}{}:{}", scheme(), v6 ? "[" : "", host, v6 ? "]" : "", port);
}

std::string emulator::impl::api_prefix_locked() const
{
    return "/" + codebase + "apis/3.0";
}

std::string emulator::impl::key_path_locked() const
{
    return "/" + codebase + "/system/callbackkey/index.rails";
}

std::string emulator::impl::key_url_locked() const
{
    return fmt::format("{}{}?companyName={}&id={}", base_url(), key_path_locked(), cfg.company, key_id);
}

void emulator::impl::new_key_locked()
{
    key_id = new_guid();
    key = crypto::random_hex(24);
}

std::int64_t emulator::impl::insert_locked(callback_entry e)
{
    e.id = next_id++;
    if (e.connectwise_id.empty()) {
        e.connectwise_id = new_guid();
    }
    if (e.last_updated.empty()) {
        e.last_updated = utc_now();
    }
    if (e.updated_by.empty()) {
        e.updated_by = cfg.company;
    }
    const auto id = e.id;
    entries[id] = std::move(e);
    return id;
}

void emulator::impl::persist_locked() const
{
    if (!cfg.persist || dir.empty()) {
        return;
    }
    std::vector<callback_entry> all;
    all.reserve(entries.size());
    for (const auto& [id, e] : entries) {
        all.push_back(e);
    }
    // Write then rename, so a crash never leaves half a table behind.
    const auto path = dir / "callbacks.json";
    const auto tmp = dir / "callbacks.json.tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << table_json(all);
        if (!out) {
            log::warn("emulator: cannot write the callback table", {{"path", tmp.string()}});
            return;
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        log::warn("emulator: cannot write the callback table", {{"path", path.string()}, {"error", ec.message()}});
    }
}

// --- control endpoints ------------------------------------------------------------------

namespace {

bool loopback_peer(const http::request& req)
{
    boost::system::error_code ec;
    auto a = net::ip::make_address(req.peer_addr, ec);
    if (ec) {
        return false;
    }
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
    }
    return a.is_loopback();
}

std::optional<json::value> control_body(const http::request& req, std::string* error)
{
    if (req.msg.body().empty()) {
        return json::value::make_object({});
    }
    auto parsed = json::parse_value(req.msg.body());
    if (const auto* err = std::get_if<json::parse_error>(&parsed)) {
        *error = err->detail;
        return std::nullopt;
    }
    auto v = std::get<json::value>(std::move(parsed));
    if (v.as_object() == nullptr) {
        *error = "expected a JSON object";
        return std::nullopt;
    }
    return v;
}

std::optional<std::int64_t> int_member(const json::value& v, std::string_view name)
{
    const auto* m = v.find(name);
    if (m == nullptr) {
        return std::nullopt;
    }
    if (auto n = m->as_int()) {
        return n;
    }
    if (auto s = m->as_string()) {
        std::int64_t n = 0;
        const auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
        if (ec == std::errc{} && ptr == s->data() + s->size() && !s->empty()) {
            return n;
        }
    }
    return std::nullopt;
}

std::string string_member(const json::value& v, std::string_view name)
{
    const auto* m = v.find(name);
    const auto s = m ? m->as_string() : std::nullopt;
    return s ? std::string(*s) : std::string{};
}

// An error alternative, spelled out: T may itself be constructible from a string.
struct fail {
    std::string why;
    template <class T>
    operator boost::system::result<T, std::string>() &&  // NOLINT(google-explicit-constructor)
    {
        return boost::system::result<T, std::string>(boost::system::in_place_error, std::move(why));
    }
};

// {"type":"ticket","action":"updated","id":5000,"levels":{"board":1},"entity":{...}}
boost::system::result<trigger_request, std::string> read_trigger(const json::value& body)
{
    trigger_request t;
    t.type = string_member(body, "type");
    t.action = string_member(body, "action");
    const auto id = int_member(body, "id");
    if (t.type.empty() || t.action.empty() || !id) {
        return fail{std::string("type, action and id are required")};
    }
    if (!valid_type(t.type)) {
        return fail{fmt::format("unknown type \"{}\"", t.type)};
    }
    t.id = *id;
    if (const auto* levels = body.find("levels")) {
        const auto* members = levels->as_object();
        if (members == nullptr) {
            return fail{std::string("levels must be an object of integers")};
        }
        for (const auto& m : *members) {
            const auto n = m.val.as_int();
            if (!n) {
                return fail{fmt::format("levels.{} must be an integer", m.key)};
            }
            t.levels.emplace_back(m.key, *n);
        }
    }
    if (const auto* callback = body.find("callback"); callback != nullptr && !callback->is_null()) {
        const auto b = callback->as_bool();
        if (!b) {
            return fail{std::string("callback must be true or false")};
        }
        t.callback = *b;
    }
    if (const auto* entity = body.find("entity"); entity != nullptr && !entity->is_null()) {
        const auto s = entity->as_string();
        t.entity = s ? std::string(*s) : json::serialize(*entity);
    }
    return t;
}

boost::system::result<fault, std::string> read_fault(const json::value& body)
{
    fault f;
    f.path_prefix = string_member(body, "path_prefix");
    if (auto s = int_member(body, "status")) {
        if (*s != 0 && (*s < 100 || *s > 599)) {
            return fail{fmt::format("status {} is not an HTTP status", *s)};
        }
        f.status = static_cast<unsigned>(*s);
    }
    if (auto c = int_member(body, "count")) {
        if (*c < 0) {
            return fail{std::string("count must be >= 0")};
        }
        f.count = static_cast<unsigned>(*c);
    }
    if (auto r = int_member(body, "retry_after")) {
        f.retry_after = std::chrono::seconds(std::max<std::int64_t>(0, *r));
    }
    if (auto d = int_member(body, "delay_ms")) {
        f.delay = std::chrono::milliseconds(std::max<std::int64_t>(0, *d));
    }
    return f;
}

// The trigger's record as it is now; null when deleted (or of an unknown type).
std::string record_json(emulator::impl& im, const trigger_request& t)
{
    std::lock_guard lock(im.mutex);
    const auto table = im.records.find(lower_ascii(t.type));
    if (table == im.records.end()) {
        return "null";
    }
    const auto it = table->second.find(t.id);
    return it == table->second.end() ? std::string("null") : json::serialize(it->second);
}

std::string state_json(emulator::impl& im)
{
    std::string out = "{\"base_url\":";
    append_json_string(out, im.base_url());
    std::lock_guard lock(im.mutex);
    out += ",\"api_url\":";
    append_json_string(out, im.base_url() + im.api_prefix_locked());
    out += ",\"key_url\":";
    append_json_string(out, im.key_url_locked());
    out += fmt::format(",\"callbacks\":{},\"faults\":{},\"records\":{{", im.entries.size(), im.faults.size());
    bool first = true;
    for (const auto& [type, table] : im.records) {
        out += fmt::format("{}\"{}\":{}", first ? "" : ",", type, table.size());
        first = false;
    }
    out += "},\"requests\":{";
    for (std::size_t i = 0; i < route_count; ++i) {
        out += fmt::format("{}\"{}\":{}", i > 0 ? "," : "", to_string(static_cast<route>(i)),
                           im.counters[i].load(std::memory_order_relaxed));
    }
    out += "}}";
    return out;
}

} // namespace

net::awaitable<http::response> handle_control(emulator::impl* im, http::request& req)
{
    if (!loopback_peer(req)) {
        co_return http::error_response(403, "forbidden", "control endpoints answer loopback clients only");
    }
    // Loopback alone is not enough: a local reverse proxy makes every client a loopback peer
    // (and says so with X-Forwarded-For or Forwarded), and a browser on this machine can be
    // made to post here by any web page (and says so with Origin). The CLI sends none of them.
    for (const std::string_view field : {"X-Forwarded-For", "Forwarded", "Origin"}) {
        if (req.msg.find(field) != req.msg.end()) {
            co_return http::error_response(
                403, "forbidden", fmt::format("control endpoints refuse proxied or browser requests ({})", field));
        }
    }
    const std::string path(req.path().substr(control_prefix.size()));
    const auto method = req.msg.method();
    std::string error;
    if (path == "/trigger" && method == beast_http::verb::post) {
        auto body = control_body(req, &error);
        if (!body) {
            co_return http::error_response(400, "bad_request", error);
        }
        auto t = read_trigger(*body);
        if (!t) {
            co_return http::error_response(400, "bad_request", t.error());
        }
        const trigger_request request = *t;
        auto results = co_await run_trigger(im, request);
        std::string out = "{\"deliveries\":[";
        for (std::size_t i = 0; i < results.size(); ++i) {
            out += i > 0 ? "," : "";
            out += delivery_json(results[i]);
        }
        out += "],\"record\":" + record_json(*im, request) + "}";
        co_return http::json_response(200, std::move(out));
    }
    if (path == "/faults" && method == beast_http::verb::post) {
        auto body = control_body(req, &error);
        if (!body) {
            co_return http::error_response(400, "bad_request", error);
        }
        auto f = read_fault(*body);
        if (!f) {
            co_return http::error_response(400, "bad_request", f.error());
        }
        std::lock_guard lock(im->mutex);
        im->faults.push_back(*f);
        co_return http::json_response(200, fmt::format("{{\"faults\":{}}}", im->faults.size()));
    }
    if (path == "/faults" && method == beast_http::verb::delete_) {
        std::lock_guard lock(im->mutex);
        im->faults.clear();
        co_return http::json_response(200, "{\"faults\":0}");
    }
    if (path == "/rotate-key" && method == beast_http::verb::post) {
        std::lock_guard lock(im->mutex);
        im->new_key_locked();
        co_return http::json_response(200, "{\"key_url\":" + json_quoted(im->key_url_locked()) + "}");
    }
    if (path == "/state" && (method == beast_http::verb::get || method == beast_http::verb::head)) {
        co_return http::json_response(200, state_json(*im));
    }
    co_return http::error_response(404, "not_found", "control endpoints: POST trigger, POST/DELETE faults, "
                                                     "POST rotate-key, GET state");
}

// --- emulator ---------------------------------------------------------------------------

emulator::emulator(settings s) : impl_(std::make_unique<impl>(std::move(s))) {}

emulator::~emulator()
{
    stop();
}

namespace {

// The state directory: the configured one, or a fresh temporary one the emulator removes.
boost::system::result<void, std::string> prepare_dir(emulator::impl& im)
{
    std::error_code ec;
    if (im.cfg.state_dir.empty()) {
        std::string tmpl = (fs::temp_directory_path(ec) / "cwhook-emulator-XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) {
            return "cannot create a temporary directory: " + std::error_code(errno, std::generic_category()).message();
        }
        im.dir = tmpl;
        im.owns_dir = true;
    } else {
        im.dir = im.cfg.state_dir;
        fs::create_directories(im.dir, ec);
        if (ec) {
            return fmt::format("state dir {}: {}", im.dir.string(), ec.message());
        }
    }
    return {};
}

// The listener's TLS context; a self-signed certificate for the host is made once per state dir.
boost::system::result<std::shared_ptr<net::ssl::context>, std::string> listener_tls(emulator::impl& im)
{
    if (!im.cfg.tls) {
        return std::shared_ptr<net::ssl::context>();
    }
    im.cert_file = (im.dir / "cert.pem").string();
    const auto key_file = (im.dir / "key.pem").string();
    if (!fs::exists(im.cert_file) || !fs::exists(key_file)) {
        std::vector<std::string> names{im.host};
        for (const char* n : {"127.0.0.1", "localhost"}) {
            if (im.host != n) {
                names.emplace_back(n);
            }
        }
        if (auto w = crypto::write_self_signed(im.cert_file, key_file, names, 365); !w) {
            return w.error().message;
        }
    }
    auto ctx = crypto::make_server_context(im.cert_file, key_file);
    if (!ctx) {
        return ctx.error().message;
    }
    return *ctx;
}

// The callback table kept in the state dir by a persistent emulator.
boost::system::result<void, std::string> load_table(emulator::impl& im)
{
    if (im.cfg.persist) {
        const auto table = im.dir / "callbacks.json";
        if (fs::exists(table)) {
            std::ifstream in(table, std::ios::binary);
            std::stringstream text;
            text << in.rdbuf();
            auto loaded = parse_table(text.str());
            if (!loaded) {
                return fmt::format("{}: {}", table.string(), loaded.error());
            }
            std::lock_guard lock(im.mutex);
            im.entries.clear();
            for (auto& e : *loaded) {
                im.next_id = std::max(im.next_id, e.id + 1);
                im.entries[e.id] = std::move(e);
            }
        }
    }
    return {};
}

} // namespace

boost::system::result<std::uint16_t, std::string> emulator::start()
{
    auto& im = *impl_;
    if (im.running) {
        return im.port;
    }
    const auto ep = http::parse_listen(im.cfg.listen);
    if (!ep) {
        return fmt::format("listen: \"{}\": expected host:port", im.cfg.listen);
    }
    im.host = im.cfg.host_name.empty() ? ep->address().to_string() : im.cfg.host_name;

    if (auto r = prepare_dir(im); !r) {
        return r.error();
    }
    auto listener = listener_tls(im);
    if (!listener) {
        return listener.error();
    }
    std::shared_ptr<net::ssl::context> server_tls = *listener;
    auto client_tls = crypto::make_client_context(im.cfg.delivery_ca_file);
    if (!client_tls) {
        return "delivery_ca_file: " + client_tls.error().message;
    }

    if (auto r = load_table(im); !r) {
        return r.error();
    }

    im.ioc = std::make_unique<net::io_context>(1);
    http::settings hs;
    hs.listen.clear();
    (im.cfg.tls ? hs.tls_listen : hs.listen).push_back(im.cfg.listen);
    hs.drain_timeout = std::chrono::milliseconds(1000);
    hs.idle_timeout = std::chrono::milliseconds(30'000);
    auto routes = std::make_shared<http::router>();
    impl* self = &im;
    for (auto verb : {beast_http::verb::get, beast_http::verb::post, beast_http::verb::put, beast_http::verb::patch,
                      beast_http::verb::delete_}) {
        // Prefix "" matches every path: the emulator routes by itself (the codebase may move).
        routes->add(verb, "", [self](http::request& req) { return handle_request(self, req); }, true);
    }
    im.server = std::make_unique<http::server>(*im.ioc, hs, routes, server_tls, im.registry);
    if (auto r = im.server->start(); !r) {
        im.server.reset();
        im.ioc.reset();
        return r.error();
    }
    const auto eps = im.cfg.tls ? im.server->tls_endpoints() : im.server->plain_endpoints();
    im.port = eps.front().port();
    im.outbound = std::make_unique<client::https_client>(im.ioc->get_executor(), *client_tls);
    im.running = true;
    im.thread = std::thread([ioc = im.ioc.get()] {
        auto guard = net::make_work_guard(*ioc);
        ioc->run();
    });
    return im.port;
}

void emulator::stop()
{
    auto& im = *impl_;
    if (im.running) {
        im.running = false;
        auto drained = std::make_shared<std::promise<void>>();
        auto done = drained->get_future();
        im.server->shutdown([drained](bool) { drained->set_value(); });
        done.wait_for(std::chrono::seconds(3));
        im.ioc->stop();
        im.thread.join();
        // Destroying the io_context destroys whatever is still suspended (deliveries, the
        // completion of a blocked trigger(), which then returns no results).
        im.outbound.reset();
        im.server.reset();
        im.ioc.reset();
    }
    if (im.owns_dir) {
        std::error_code ec;
        fs::remove_all(im.dir, ec);
        im.owns_dir = false;
    }
}

std::uint16_t emulator::port() const { return impl_->port; }
std::string emulator::host() const { return impl_->host; }
std::string emulator::site() const
{
    const bool v6 = impl_->host.find(':') != std::string::npos;
    return fmt::format("{}{}{}:{}", v6 ? "[" : "", impl_->host, v6 ? "]" : "", impl_->port);
}
std::string emulator::base_url() const { return impl_->base_url(); }
std::string emulator::api_url() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->base_url() + impl_->api_prefix_locked();
}
std::string emulator::ca_file() const { return impl_->cfg.tls ? impl_->cert_file : std::string{}; }
const settings& emulator::config() const { return impl_->cfg; }

void emulator::set_codebase(std::string codebase)
{
    if (codebase.empty() || codebase.back() != '/') {
        codebase.push_back('/');
    }
    std::lock_guard lock(impl_->mutex);
    impl_->codebase = std::move(codebase);
}

std::string emulator::key_url() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->key_url_locked();
}

std::string emulator::signing_key() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->key;
}

std::string emulator::rotate_key()
{
    std::lock_guard lock(impl_->mutex);
    impl_->new_key_locked();
    return impl_->key_url_locked();
}

void emulator::add_fault(fault f)
{
    std::lock_guard lock(impl_->mutex);
    impl_->faults.push_back(std::move(f));
}

void emulator::clear_faults()
{
    std::lock_guard lock(impl_->mutex);
    impl_->faults.clear();
}

std::uint64_t emulator::requests(route r) const
{
    return impl_->counters[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
}

std::uint64_t emulator::total_requests() const
{
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < route_count; ++i) {
        if (static_cast<route>(i) != route::control) {
            n += impl_->counters[i].load(std::memory_order_relaxed);
        }
    }
    return n;
}

void emulator::reset_counters()
{
    for (auto& c : impl_->counters) {
        c.store(0, std::memory_order_relaxed);
    }
    std::lock_guard lock(impl_->mutex);
    impl_->recent.clear();
}

std::vector<seen_request> emulator::recent_requests() const
{
    std::lock_guard lock(impl_->mutex);
    return {impl_->recent.begin(), impl_->recent.end()};
}

namespace {

// Spawned, so it owns its argument (by value, copied before the first suspension).
// cppcheck-suppress passedByValue
net::awaitable<std::vector<delivery_result>> trigger_spawned(emulator::impl* im, trigger_request t)
{
    auto results = co_await run_trigger(im, t);
    co_return results;
}

} // namespace

std::vector<delivery_result> emulator::trigger(const trigger_request& t)
{
    if (!t.callback || !impl_->running) {
        if (!t.callback) {
            std::lock_guard lock(impl_->mutex);
            impl_->apply_trigger_locked(t);
        }
        return {};
    }
    auto promise = std::make_shared<std::promise<std::vector<delivery_result>>>();
    auto future = promise->get_future();
    net::co_spawn(impl_->ioc->get_executor(), trigger_spawned(impl_.get(), t),
                  [promise](const std::exception_ptr& e, std::vector<delivery_result> r) {
                      if (e) {
                          promise->set_exception(e);
                      } else {
                          promise->set_value(std::move(r));
                      }
                  });
    try {
        return future.get();
    } catch (const std::future_error&) {
        return {};  // stopped while delivering
    }
}

std::int64_t emulator::add_callback(callback_entry e)
{
    std::lock_guard lock(impl_->mutex);
    const auto id = impl_->insert_locked(std::move(e));
    impl_->persist_locked();
    return id;
}

std::vector<std::int64_t> emulator::seed_callbacks(std::size_t n, const callback_entry& tmpl)
{
    std::vector<std::int64_t> ids;
    ids.reserve(n);
    std::lock_guard lock(impl_->mutex);
    for (std::size_t i = 0; i < n; ++i) {
        callback_entry e = tmpl;
        e.description = fmt::format("seed {}", i);
        e.object_id = tmpl.object_id + static_cast<std::int64_t>(i);
        e.connectwise_id.clear();
        ids.push_back(impl_->insert_locked(std::move(e)));
    }
    impl_->persist_locked();
    return ids;
}

std::vector<callback_entry> emulator::callbacks() const
{
    std::lock_guard lock(impl_->mutex);
    std::vector<callback_entry> out;
    out.reserve(impl_->entries.size());
    for (const auto& [id, e] : impl_->entries) {
        out.push_back(e);
    }
    return out;
}

std::optional<callback_entry> emulator::find_callback(std::int64_t id) const
{
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->entries.find(id);
    if (it == impl_->entries.end()) {
        return std::nullopt;
    }
    return it->second;
}

bool emulator::set_inactive(std::int64_t id, bool inactive)
{
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->entries.find(id);
    if (it == impl_->entries.end()) {
        return false;
    }
    it->second.inactive = inactive;
    it->second.last_updated = utc_now();
    impl_->persist_locked();
    return true;
}

bool emulator::remove_callback(std::int64_t id)
{
    std::lock_guard lock(impl_->mutex);
    const bool removed = impl_->entries.erase(id) > 0;
    impl_->persist_locked();
    return removed;
}

void emulator::clear_callbacks()
{
    std::lock_guard lock(impl_->mutex);
    impl_->entries.clear();
    impl_->persist_locked();
}

} // namespace cwhook::emulator
