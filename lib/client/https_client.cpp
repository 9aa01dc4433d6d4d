// Design: one fetch() is a loop of attempts. An attempt first tries a pooled connection to
// the same (scheme, host, port, private-allowed) destination, checked for liveness with a
// non-blocking peek (an idle connection that has anything to read was closed or is in a state
// we cannot use); if that connection fails before a single response byte arrives, the server
// most likely closed it while idle, and an idempotent request moves on to a fresh connection
// at once (that is not a retry of the request). A fresh connection resolves, drops private
// destinations unless allowed, connects, and for TLS sets SNI plus the verified peer name and
// handshakes. Every step has its own deadline, never later than the attempt's overall one.
// Between attempts the retry policy waits: Retry-After for 429, else 2^n * base jittered into
// [d/2, d] and capped. A failure before the request was written is always safe to retry; after
// that only idempotent methods are retried unless the caller opts in.
#include "client/https_client.hpp"

#include "client/special_address.hpp"

#include "core/log.hpp"
#include "crypto/tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <sys/socket.h>

namespace cwhook::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

struct connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    clock::time_point idle_since{};

    beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }

    // An idle HTTP/1.1 connection has nothing to read: EOF means the server closed it, and any
    // byte (a TLS close_notify, a stray answer) makes it unusable for a new request.
    bool looks_alive()
    {
        auto& sock = lowest().socket();
        if (!sock.is_open()) {
            return false;
        }
        char byte = 0;
        const auto n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
};

// What one attempt produced. `sent`: the request may have reached the server.
struct attempt_result {
    fetch_result r;
    bool sent = false;
    bool got_bytes = false; // some of a response arrived
};

attempt_result fail(errc code, std::string detail, bool sent = false, bool got_bytes = false)
{
    return {fetch_result(boost::system::in_place_error, failure{code, std::move(detail)}), sent, got_bytes};
}

// A failed step of an established connection: its deadline, a broken connection, or (when
// reading) an answer that is not HTTP.
attempt_result fail_exchange(std::string_view step, const boost::system::error_code& ec, bool sent, bool got_bytes)
{
    if (ec == beast::error::timeout) {
        return fail(errc::timed_out, fmt::format("{} timed out", step), sent, got_bytes);
    }
    // Beast's http errors are parse errors, except the two that say the peer went away.
    const bool parse_error = ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                             ec != http::error::end_of_stream && ec != http::error::partial_message;
    return fail(parse_error ? errc::bad_response : errc::connection_lost, fmt::format("{}: {}", step, ec.message()),
                sent, got_bytes);
}

clock::time_point step_deadline(clock::time_point overall, milliseconds step)
{
    return std::min(overall, clock::now() + step);
}

std::string host_header(const request& req)
{
    const bool v6 = req.host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + req.host + "]" : req.host;
    const bool default_port = req.port == (req.tls ? 443 : 80);
    return default_port ? host : fmt::format("{}:{}", host, req.port);
}

// Writes the request and reads the answer. On success *reusable tells whether the connection
// may serve another request.
template <class Stream>
net::awaitable<attempt_result> exchange(Stream& stream, const request& req, const options& opt,
                                        clock::time_point deadline, bool* reusable)
{
    *reusable = false;
    http::request<http::string_body> msg{http::string_to_verb(req.method), req.target, 11};
    msg.set(http::field::host, host_header(req));
    msg.set(http::field::user_agent, "cwhook/" CWHOOK_VERSION);
    if (!opt.keep_alive) {
        msg.set(http::field::connection, "close");
    }
    for (const auto& [k, v] : req.headers) {
        msg.set(k, v);
    }
    if (!req.body.empty() || msg.method() == http::verb::post || msg.method() == http::verb::put ||
        msg.method() == http::verb::patch) {
        msg.body() = req.body;
        msg.prepare_payload();
    }
    const auto step = step_deadline(deadline, opt.exchange_timeout);
    beast::get_lowest_layer(stream).expires_at(step);
    auto [wec, wn] = co_await http::async_write(stream, msg, use_tuple);
    if (wec) {
        co_return fail_exchange("write", wec, true, false);
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(opt.max_response_bytes);
    parser.header_limit(16 * 1024);
    beast::get_lowest_layer(stream).expires_at(step);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    const bool got_bytes = parser.got_some() || buffer.size() > 0;
    if (rec == http::error::body_limit) {
        co_return fail(errc::response_too_large, fmt::format("response exceeds {} bytes", opt.max_response_bytes), true,
                       true);
    }
    if (rec) {
        co_return fail_exchange("read", rec, true, got_bytes);
    }
    auto res = parser.release();
    *reusable = opt.keep_alive && res.keep_alive() && buffer.size() == 0;
    response out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    for (const auto& f : res) {
        out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    co_return attempt_result{std::move(out), true, true};
}

attempt_result handshake_failure(const boost::system::error_code& ec, void* native_handle)
{
    if (ec == beast::error::timeout) {
        return fail(errc::timed_out, "TLS handshake timed out");
    }
    if (auto why = crypto::peer_verify_failure(native_handle)) {
        return fail(errc::certificate_rejected, "TLS: certificate rejected: " + *why);
    }
    return fail(errc::tls_handshake_failed, "TLS: " + ec.message());
}

std::string pool_key(const request& req, const options& opt)
{
    return fmt::format("{}|{}|{}|{}", req.tls ? "https" : "http", req.host, req.port, opt.allow_private ? 1 : 0);
}

double unit_random()
{
    thread_local std::mt19937_64 gen{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

} // namespace

struct https_client::pool {
    pool_settings cfg;
    mutable std::mutex mutex;
    std::map<std::string, std::deque<std::unique_ptr<connection>>, std::less<>> idle;
    std::size_t total = 0;

    explicit pool(pool_settings s) : cfg(s) {}

    // Called with the mutex held: drops connections idle for too long, everywhere.
    void expire(clock::time_point now, std::vector<std::unique_ptr<connection>>& dropped)
    {
        for (auto it = idle.begin(); it != idle.end();) {
            auto& q = it->second;
            while (!q.empty() && now - q.front()->idle_since >= cfg.idle_timeout) {
                dropped.push_back(std::move(q.front()));
                q.pop_front();
                --total;
            }
            it = q.empty() ? idle.erase(it) : std::next(it);
        }
    }

    std::unique_ptr<connection> take(const std::string& key)
    {
        std::vector<std::unique_ptr<connection>> dropped; // closed outside the lock
        std::unique_ptr<connection> found;
        {
            std::lock_guard lock(mutex);
            expire(clock::now(), dropped);
            auto it = idle.find(key);
            while (it != idle.end() && !it->second.empty() && !found) {
                auto c = std::move(it->second.back()); // most recently used: least likely closed
                it->second.pop_back();
                --total;
                if (c->looks_alive()) {
                    found = std::move(c);
                } else {
                    dropped.push_back(std::move(c));
                }
            }
            if (it != idle.end() && it->second.empty()) {
                idle.erase(it);
            }
        }
        return found;
    }

    void give(const std::string& key, std::unique_ptr<connection> c)
    {
        std::vector<std::unique_ptr<connection>> dropped;
        std::lock_guard lock(mutex);
        const auto now = clock::now();
        expire(now, dropped);
        if (cfg.max_idle_per_host == 0 || cfg.max_idle_total == 0 || cfg.idle_timeout.count() <= 0) {
            return;
        }
        auto& q = idle[key];
        if (q.size() >= cfg.max_idle_per_host) {
            dropped.push_back(std::move(q.front()));
            q.pop_front();
            --total;
        }
        if (total >= cfg.max_idle_total) {
            // Evict the oldest connection of any host.
            auto oldest = idle.end();
            for (auto it = idle.begin(); it != idle.end(); ++it) {
                if (!it->second.empty() &&
                    (oldest == idle.end() || it->second.front()->idle_since < oldest->second.front()->idle_since)) {
                    oldest = it;
                }
            }
            if (oldest != idle.end()) {
                dropped.push_back(std::move(oldest->second.front()));
                oldest->second.pop_front();
                --total;
            }
        }
        c->idle_since = now;
        q.push_back(std::move(c));
        ++total;
    }

    std::size_t size() const
    {
        std::lock_guard lock(mutex);
        return total;
    }

    void clear()
    {
        std::map<std::string, std::deque<std::unique_ptr<connection>>, std::less<>> gone;
        std::lock_guard lock(mutex);
        gone.swap(idle);
        total = 0;
    }
};

std::string_view response::header(std::string_view name) const
{
    for (const auto& [k, v] : headers) {
        if (beast::iequals(k, name)) {
            return v;
        }
    }
    return {};
}

boost::system::result<request, std::string> request_for_url(std::string_view url)
{
    using out = boost::system::result<request, std::string>;
    const auto refuse = [](std::string why) { return out(boost::system::in_place_error, std::move(why)); };
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) {
        return refuse("not an absolute URL");
    }
    const boost::urls::url_view u = *parsed;
    request r;
    if (u.scheme_id() == boost::urls::scheme::https) {
        r.tls = true;
        r.port = 443;
    } else if (u.scheme_id() == boost::urls::scheme::http) {
        r.tls = false;
        r.port = 80;
    } else {
        return refuse("scheme must be http or https");
    }
    if (u.has_userinfo() || u.has_fragment()) {
        return refuse("user-info and fragments are not allowed");
    }
    switch (u.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4: r.host = std::string(u.encoded_host()); break;
    case boost::urls::host_type::ipv6: r.host = u.host_ipv6_address().to_string(); break;
    default: return refuse("unsupported host");
    }
    if (r.host.empty() || r.host.find('%') != std::string::npos) {
        return refuse("invalid host");
    }
    if (u.has_port()) {
        const std::string_view p = u.port();
        unsigned port = 0;
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535) {
            return refuse("invalid port");
        }
        r.port = static_cast<std::uint16_t>(port);
    }
    const std::string_view path = u.encoded_path();
    if (!path.empty() && !path.starts_with('/')) {
        return refuse("invalid path");
    }
    r.target = path.empty() ? "/" : std::string(path);
    if (u.has_query()) {
        r.target += '?';
        r.target += std::string_view(u.encoded_query());
    }
    return r;
}

bool is_private_address(const net::ip::address& a)
{
    return special_purpose_range(a).has_value();
}

bool is_idempotent(std::string_view method)
{
    // RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT and DELETE.
    for (const std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
        if (beast::iequals(m, method)) {
            return true;
        }
    }
    return false;
}

std::optional<milliseconds> parse_retry_after(std::string_view value)
{
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
    }
    std::uint32_t seconds = 0;
    const auto* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
    if (value.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return milliseconds(std::int64_t{seconds} * 1000);
}

milliseconds backoff_delay(const retry_policy& p, unsigned retry, double unit)
{
    const auto cap = std::max<std::int64_t>(p.max_delay.count(), 0);
    std::int64_t d = std::max<std::int64_t>(p.base_delay.count(), 0);
    for (unsigned i = 0; i < retry && d < cap; ++i) {
        d *= 2;
    }
    d = std::min(d, cap);
    // Jitter keeps many clients that failed together from retrying together.
    unit = std::clamp(unit, 0.0, 1.0);
    const std::int64_t floor = d / 2;
    return milliseconds(floor + static_cast<std::int64_t>(static_cast<double>(d - floor) * unit));
}

https_client::https_client(net::any_io_executor ex, std::shared_ptr<ssl::context> tls, metrics::registry* metrics,
                           pool_settings pool_cfg)
    : ex_(std::move(ex)), tls_(std::move(tls)), metrics_(metrics), pool_(std::make_shared<pool>(pool_cfg))
{
}

https_client::~https_client() = default;

std::size_t https_client::idle_connections() const
{
    return pool_->size();
}

void https_client::close_idle()
{
    pool_->clear();
}

namespace {

// A fresh connection: resolve and connect under the connect deadline, leaving out
// special-purpose destinations unless allowed; for TLS with SNI and the peer name armed.
net::awaitable<boost::system::result<std::unique_ptr<connection>, failure>>
open_connection(const net::any_io_executor& ex, const std::shared_ptr<ssl::context>& tls, const request& req,
                const options& opt, clock::time_point deadline)
{
    // Resolve under the connect deadline: a timer cancels a hanging lookup.
    const auto connect_by = step_deadline(deadline, opt.connect_timeout);
    tcp::resolver resolver(ex);
    net::steady_timer resolve_timer(ex, connect_by);
    resolve_timer.async_wait([&resolver](boost::system::error_code ec) {
        if (!ec) {
            resolver.cancel();
        }
    });
    const auto service = std::to_string(req.port); // named (GCC 12: docs/STYLE.md)
    auto [rec, results] = co_await resolver.async_resolve(req.host, service, use_tuple);
    resolve_timer.cancel();
    if (rec == net::error::operation_aborted) {
        co_return failure{errc::timed_out, fmt::format("resolve {}: timed out", req.host)};
    }
    if (rec) {
        co_return failure{errc::resolve_failed, fmt::format("resolve {}: {}", req.host, rec.message())};
    }
    std::vector<tcp::endpoint> endpoints;
    for (const auto& r : results) {
        if (opt.allow_private || !is_private_address(r.endpoint().address())) {
            endpoints.push_back(r.endpoint());
        }
    }
    if (endpoints.empty()) {
        co_return failure{errc::special_address,
                          fmt::format("{} resolves only to special-purpose addresses", req.host)};
    }

    auto conn = std::make_unique<connection>();
    if (req.tls) {
        if (!tls) {
            co_return failure{errc::tls_setup_failed, "no TLS context"};
        }
        // cppcheck-suppress nullPointerRedundantCheck ; the co_return above leaves when tls is null
        conn->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex, *tls);
        if (!crypto::set_peer_name(conn->secure->native_handle(), req.host)) {
            co_return failure{errc::tls_setup_failed, "cannot set TLS peer name"};
        }
    } else {
        conn->plain = std::make_unique<beast::tcp_stream>(ex);
    }
    auto& lowest = conn->lowest();
    lowest.expires_at(connect_by);
    auto [cec, ep] = co_await lowest.async_connect(endpoints, use_tuple);
    if (cec == beast::error::timeout) {
        co_return failure{errc::timed_out, "connect timed out"};
    }
    if (cec) {
        co_return failure{errc::connect_failed, "connect: " + cec.message()};
    }
    co_return std::move(conn);
}

// One attempt: a pooled connection when one is alive, else a fresh one.
// Everything by reference: the caller's locals outlive the awaited call (GCC 12: docs/STYLE.md).
net::awaitable<attempt_result> attempt(const net::any_io_executor& ex, const std::shared_ptr<ssl::context>& tls,
                                       https_client::pool* pool, metrics::registry* metrics, const request& req,
                                       const options& opt)
{
    const auto deadline = clock::now() + opt.timeout;
    const auto key = pool_key(req, opt);
    const bool idempotent = is_idempotent(req.method);

    if (opt.keep_alive) {
        if (auto pooled = pool->take(key)) {
            bool reusable = false;
            attempt_result r;
            if (pooled->plain) {
                r = co_await exchange(*pooled->plain, req, opt, deadline, &reusable);
            } else {
                r = co_await exchange(*pooled->secure, req, opt, deadline, &reusable);
            }
            if (metrics != nullptr) {
                metrics->get_counter("cwhook_client_connections_reused_total").inc();
            }
            if (r.r) {
                r.r->reused = true;
                if (reusable) {
                    pool->give(key, std::move(pooled));
                }
                co_return r;
            }
            // Closed by the server while idle (nothing came back): a fresh connection is the
            // same attempt. Only for requests that are safe to send twice.
            if (r.got_bytes || !idempotent) {
                co_return r;
            }
            if (metrics != nullptr) {
                metrics->get_counter("cwhook_client_stale_connections_total").inc();
            }
        }
    }

    auto opened = co_await open_connection(ex, tls, req, opt, deadline);
    if (!opened) {
        co_return attempt_result{fetch_result(boost::system::in_place_error, std::move(opened.error()))};
    }
    auto conn = std::move(*opened);
    if (metrics != nullptr) {
        metrics->get_counter("cwhook_client_connections_opened_total").inc();
    }
    auto& lowest = conn->lowest();
    attempt_result r;
    bool reusable = false;
    if (conn->secure) {
        lowest.expires_at(step_deadline(deadline, opt.handshake_timeout));
        auto [hec] = co_await conn->secure->async_handshake(ssl::stream_base::client, use_tuple);
        if (hec) {
            co_return handshake_failure(hec, conn->secure->native_handle());
        }
        r = co_await exchange(*conn->secure, req, opt, deadline, &reusable);
    } else {
        r = co_await exchange(*conn->plain, req, opt, deadline, &reusable);
    }
    if (r.r && reusable) {
        pool->give(key, std::move(conn));
    } else if (conn->secure && r.r) {
        // The answer is complete; a short, bounded close_notify is courtesy.
        lowest.expires_after(milliseconds(200));
        co_await conn->secure->async_shutdown(use_tuple);
    } else if (conn->plain) {
        boost::system::error_code ignored;
        conn->plain->socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
    co_return r;
}

std::string_view path_only(std::string_view target)
{
    return target.substr(0, target.find('?'));
}

} // namespace

net::awaitable<fetch_result> https_client::fetch(const request& req_in, const options& opt_in)
{
    // Own copies of the caller's references (GCC 12: docs/STYLE.md).
    const request req = req_in;
    const options opt = opt_in;
    const bool idempotent = is_idempotent(req.method) || opt.retry.retry_non_idempotent;
    const unsigned max_attempts = std::max(1u, opt.retry.max_attempts);

    for (unsigned n = 0;; ++n) {
        attempt_result a = co_await attempt(ex_, tls_, pool_.get(), metrics_, req, opt);
        std::string reason;
        std::optional<milliseconds> delay;
        if (a.r) {
            const unsigned status = a.r->status;
            a.r->attempts = n + 1;
            if (status != 429 && status < 500) {
                co_return std::move(a.r);
            }
            if (!idempotent) {
                co_return std::move(a.r);
            }
            reason = status == 429 ? "status_429" : "status_5xx";
            if (status == 429) {
                if (auto after = parse_retry_after(a.r->header("Retry-After"))) {
                    if (*after > opt.retry.max_retry_after) {
                        co_return std::move(a.r); // cannot honour it within our budget
                    }
                    delay = *after;
                }
            }
        } else {
            // Too large, special address, TLS set-up or certificate: retrying fails the same way.
            if (!is_transient(a.r.error().code)) {
                co_return std::move(a.r);
            }
            if (a.sent && !idempotent) {
                co_return std::move(a.r);
            }
            reason = "transport";
        }
        if (n + 1 >= max_attempts) {
            co_return std::move(a.r);
        }
        if (!delay) {
            delay = backoff_delay(opt.retry, n, unit_random());
        }
        if (metrics_ != nullptr) {
            const auto labels = fmt::format("reason=\"{}\"", reason);
            metrics_->get_counter("cwhook_client_retries_total", labels).inc();
        }
        log::warn("retrying request", {{"method", req.method},
                                       {"host", fmt::format("{}:{}", req.host, req.port)},
                                       {"path", std::string(path_only(req.target))},
                                       {"reason", reason},
                                       {"status", a.r ? a.r->status : 0u},
                                       {"error", a.r ? std::string() : a.r.error().detail},
                                       {"attempt", n + 2},
                                       {"delay_ms", static_cast<std::int64_t>(delay->count())}});
        if (opt.retry.sleep) {
            const milliseconds wait = *delay;
            co_await opt.retry.sleep(wait);
        } else {
            net::steady_timer timer(ex_, *delay);
            co_await timer.async_wait(use_tuple);
        }
    }
}

} // namespace cwhook::client
