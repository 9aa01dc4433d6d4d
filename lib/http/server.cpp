// Design: one accept loop per listener; every accepted socket gets its own strand and one
// coroutine session that serves requests in sequence (keep-alive). Each socket operation is
// preceded by its own deadline (handshake, idle wait, headers, body, write), so a slow or
// silent client costs one connection slot for at most one timeout. The connection caps (in
// total, and per client address so that one client cannot starve the rest) are enforced at
// accept. Shutdown closes the acceptors, cancels connections that sit idle
// between requests, and lets in-flight requests finish and answer with Connection: close.
#include "http/server.hpp"

#include "crypto/digest.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <fmt/format.h>

#include <charconv>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

#include <sys/socket.h>

namespace cwhook::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using net::awaitable;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

// One live connection, as seen by shutdown. Fields other than `ex` are touched only on `ex`.
struct connection {
    net::any_io_executor ex;
    std::function<void()> close;  // cancels pending I/O; set by the session
    bool idle = true;
    // The client address this connection counts against (nullopt: exempt, a trusted proxy).
    // Set before the connection is registered, then read only under state::mutex.
    std::optional<net::ip::address> client;
};

// IPv4-mapped peers (a dual-stack listener) count as the IPv4 client they are.
net::ip::address unmapped(const net::ip::address& a)
{
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
    }
    return a;
}

} // namespace

struct server::state : std::enable_shared_from_this<server::state> {
    net::io_context& ioc;
    settings cfg;  // as started: listeners, drain deadline
    std::shared_ptr<router> routes;
    std::atomic<std::shared_ptr<ssl::context>> tls;  // replaced by reload; sessions keep their copy
    metrics::registry& metrics;
    // Limits, deadlines and trusted proxies, replaceable by a reload: each connection takes
    // the snapshot current when it is accepted and keeps it.
    struct limits {
        settings cfg;
        cidr_set trusted;
    };
    std::atomic<std::shared_ptr<const limits>> live;
    static std::shared_ptr<const limits> make_limits(const settings& s)
    {
        std::vector<cidr> nets;
        for (const auto& p : s.trusted_proxies) {
            if (auto c = parse_cidr(p)) {
                nets.push_back(*c);
            }
        }
        return std::make_shared<const limits>(limits{s, cidr_set(std::move(nets))});
    }

    // Listeners and the configured text each was bound from ("" when inherited). Guarded by
    // listeners_mutex where a reload may change them concurrently with readers.
    std::mutex listeners_mutex;
    std::vector<std::unique_ptr<tcp::acceptor>> plain_acceptors;
    std::vector<std::unique_ptr<tcp::acceptor>> tls_acceptors;
    std::vector<std::string> plain_texts;
    std::vector<std::string> tls_texts;
    // Listeners a reload closed: kept alive until the server goes, because their accept
    // loops may still be completing with operation_aborted.
    std::vector<std::unique_ptr<tcp::acceptor>> retired;

    // Supervision of the accept loops (supervise_accept()).
    std::string accept_task = "accept";
    task::policy accept_policy;

    std::atomic<std::size_t> open{0};
    std::atomic<bool> draining{false};
    // Requests by route and status, and their latency by route (route = registered path).
    void observe(std::string_view route, unsigned status, double seconds)
    {
        metrics.get_counter("cwhook_http_requests_total", fmt::format("route=\"{}\",status=\"{}\"", route, status)).inc();
        metrics.get_histogram("cwhook_http_request_duration_seconds", fmt::format("route=\"{}\"", route),
                              metrics::latency_buckets())
            .observe(seconds);
    }
    // Request ids made here: "<random per process>-<sequence>", unique across restarts.
    std::string id_prefix;
    std::atomic<std::uint64_t> next_request{1};

    std::mutex mutex;  // guards the members below
    std::uint64_t next_id = 1;
    std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections;
    std::map<net::ip::address, std::size_t> per_client;  // open connections by client address
    std::function<void(bool)> drained;
    std::unique_ptr<net::steady_timer> drain_timer;

    metrics::counter& accepted;
    metrics::counter& refused_over_limit;
    metrics::counter& refused_per_client;
    metrics::counter& bad_transfer_encoding;
    metrics::counter& timeouts;
    metrics::gauge& open_gauge;

    state(net::io_context& c, settings s, std::shared_ptr<router> r, std::shared_ptr<ssl::context> t,
          metrics::registry& m)
        : ioc(c), cfg(std::move(s)), routes(std::move(r)), tls(std::move(t)), metrics(m),
          accepted(m.get_counter("cwhook_connections_accepted_total")),
          refused_over_limit(m.get_counter("cwhook_connections_refused_total", "reason=\"limit\"")),
          refused_per_client(m.get_counter("cwhook_connections_refused_total", "reason=\"per_client\"")),
          bad_transfer_encoding(
              m.get_counter("cwhook_http_requests_refused_total", "reason=\"bad_transfer_encoding\"")),
          timeouts(m.get_counter("cwhook_connection_timeouts_total")),
          open_gauge(m.get_gauge("cwhook_open_connections"))
    {
        live.store(make_limits(cfg));
        accept_policy.metrics = &metrics;
        id_prefix = crypto::random_hex(4);
    }

    // Registers an accepted connection, unless its client already holds `per_client_limit`
    // connections (then 0: the caller closes it). c->client nullopt: exempt from that limit.
    std::uint64_t register_connection(std::shared_ptr<connection> c, std::size_t per_client_limit)
    {
        std::lock_guard lock(mutex);
        if (c->client) {
            auto& n = per_client[*c->client];
            if (n >= per_client_limit) {
                if (n == 0) {
                    per_client.erase(*c->client);
                }
                return 0;
            }
            ++n;
        }
        const auto id = next_id++;
        connections.emplace(id, std::move(c));
        return id;
    }

    void connection_closed(std::uint64_t id)
    {
        std::function<void(bool)> done;
        {
            std::lock_guard lock(mutex);
            if (const auto it = connections.find(id); it != connections.end()) {
                if (const auto& client = it->second->client) {
                    if (const auto pc = per_client.find(*client); pc != per_client.end() && --pc->second == 0) {
                        per_client.erase(pc);
                    }
                }
                connections.erase(it);
            }
            open_gauge.set(static_cast<std::int64_t>(open.fetch_sub(1) - 1));
            if (draining && connections.empty() && drained) {
                done = std::move(drained);
                drained = nullptr;
                if (drain_timer) {
                    drain_timer->cancel();
                }
            }
        }
        if (done) {
            done(true);
        }
    }

    // Posts `close` to every connection (all of them, or only the idle ones).
    void close_connections(bool only_idle)
    {
        std::lock_guard lock(mutex);
        for (const auto& [id, c] : connections) {
            // Weak: the handler must not own the connection (and with it the last reference
            // to the strand it runs on) once the session has ended.
            net::post(c->ex, [w = std::weak_ptr<connection>(c), only_idle] {
                if (auto conn = w.lock(); conn && (!only_idle || conn->idle) && conn->close) {
                    conn->close();
                }
            });
        }
    }
};

namespace {

using state_ptr = std::shared_ptr<server::state>;

// An incoming X-Request-Id is kept when it is short printable ASCII without spaces or quotes
// (it goes into logs and a response header); otherwise one is made.
std::string request_id_for(server::state& st, std::string_view incoming)
{
    const bool usable = !incoming.empty() && incoming.size() <= 128 &&
                        std::all_of(incoming.begin(), incoming.end(), [](char c) {
                            return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
                        });
    if (usable) {
        return std::string(incoming);
    }
    return fmt::format("{}-{:06x}", st.id_prefix, st.next_request.fetch_add(1, std::memory_order_relaxed));
}

bool is_timeout(const boost::system::error_code& ec)
{
    return ec == beast::error::timeout;
}

template <class Stream>
beast::tcp_stream& lowest(Stream& s)
{
    return beast::get_lowest_layer(s);
}

// Arms the deadline of the next operation.
template <class Stream>
void arm(Stream& s, std::chrono::milliseconds d)
{
    beast::get_lowest_layer(s).expires_after(d);
}

template <class Stream>
awaitable<bool> write_response(Stream& stream, response& res, const settings& cfg)
{
    arm(stream, cfg.write_timeout);
    auto [ec, n] = co_await beast_http::async_write(stream, res, use_tuple);
    co_return !ec;
}

// 413: the body is (or would be) over max_body_bytes. The connection is closed afterwards
// because the rest of the body is never read.
template <class Stream>
awaitable<void> refuse_oversize(const state_ptr& st, const settings& cfg, Stream& stream, request& req,
                                beast_http::request_parser<beast_http::string_body>& parser)
{
    req.msg = parser.release();
    auto res = error_response(413, "body_too_large", fmt::format("body exceeds {} bytes", cfg.max_body_bytes));
    res.set("X-Request-Id", req.request_id);
    if (const auto& hook = st->routes->rejection_hook()) {
        hook(req, 413, "body_too_large");
    }
    res.keep_alive(false);
    co_await write_response(stream, res, cfg);
}

// Request smuggling guard. Beast, like many proxies, is lenient: it frames "gzip, chunked"
// as chunked, ignores an unknown coding, and takes "Chunked" for "chunked". A proxy in front
// that reads the same header differently would see a different request boundary than this
// server. Only one Transfer-Encoding field whose value is exactly "chunked" is framed; every
// other spelling is refused and the connection closed, since what follows cannot be trusted.
bool acceptable_transfer_encoding(const beast_http::request_parser<beast_http::string_body>::value_type& h)
{
    const auto fields = h.equal_range(beast_http::field::transfer_encoding);
    if (fields.first == fields.second) {
        return true;
    }
    return std::next(fields.first) == fields.second && fields.first->value() == "chunked";
}

template <class Stream>
awaitable<void> refuse_transfer_encoding(const state_ptr& st, const settings& cfg, Stream& stream)
{
    st->bad_transfer_encoding.inc();
    auto res = error_response(400, "bad_transfer_encoding", "Transfer-Encoding must be exactly \"chunked\"");
    res.keep_alive(false);
    co_await write_response(stream, res, cfg);
}

using request_parser = beast_http::request_parser<beast_http::string_body>;

// After the header was read: true when the request was refused (answered or dropped) and the
// session ends. A body over the limit is not refused here: its answer needs the request.
template <class Stream>
awaitable<bool> header_refused(const state_ptr& st, const settings& cfg, Stream& stream, request_parser& parser,
                               const beast::error_code& hec)
{
    if (!hec) {
        if (!acceptable_transfer_encoding(parser.get())) {
            co_await refuse_transfer_encoding(st, cfg, stream);
            co_return true;
        }
        co_return false;
    }
    if (is_timeout(hec)) {
        st->timeouts.inc();
        co_return true;
    }
    if (hec == beast_http::error::end_of_stream || hec == net::error::eof || hec == net::error::operation_aborted ||
        hec == net::error::connection_reset) {
        co_return true;
    }
    if (hec == beast_http::error::bad_transfer_encoding ||
        (hec == beast_http::error::bad_content_length &&
         parser.get().count(beast_http::field::transfer_encoding) > 0)) {
        // Beast's own refusals: a second chunked coding, or Transfer-Encoding next to
        // Content-Length (either order). The same smuggling guard as acceptable_transfer_encoding.
        co_await refuse_transfer_encoding(st, cfg, stream);
        co_return true;
    }
    if (hec == beast_http::error::body_limit) {
        co_return false; // a Content-Length over the limit: refused before any body byte is read
    }
    auto res = hec == beast_http::error::header_limit ? error_response(431, "header_too_large")
                                                      : error_response(400, "bad_request", hec.message());
    res.keep_alive(false);
    co_await write_response(stream, res, cfg);
    co_return true;
}

// The body could not be read: 413 past the limit, 400 when malformed, nothing when the client
// went away or the deadline passed.
template <class Stream>
awaitable<void> end_on_body_error(const state_ptr& st, const settings& cfg, Stream& stream, request& req,
                                  request_parser& parser, const beast::error_code& bec)
{
    if (bec == beast_http::error::body_limit) {
        co_await refuse_oversize(st, cfg, stream, req, parser);
    } else if (is_timeout(bec)) {
        st->timeouts.inc();
    } else if (bec != beast_http::error::end_of_stream && bec != net::error::eof &&
               bec != net::error::connection_reset && bec != net::error::operation_aborted) {
        auto res = error_response(400, "bad_request", bec.message());
        res.keep_alive(false);
        co_await write_response(stream, res, cfg);
    }
    co_return;
}

// What the handlers see of a request whose header has been read.
request request_for(server::state& st, const server::state::limits& live, const beast_http::request_header<>& h,
                    const net::ip::address& peer, bool tls)
{
    request req;
    req.tls = tls;
    req.peer_addr = peer.to_string();
    req.client_addr = client_address(peer, h["X-Forwarded-For"], live.trusted);
    req.request_id = request_id_for(st, h["X-Request-Id"]);
    return req;
}

// The gate, then the route's handler (a handler that throws is a 500), 405 or 404. `route`
// names the matched route for the metrics.
awaitable<response> dispatch(const state_ptr& st, request& req, std::string_view& route)
{
    unsigned status = 0;
    std::string allow;
    const handler* h = st->routes->find(req.msg.method(), req.path(), &status, &allow, &route);
    if (const auto& gate = st->routes->gate()) {
        if (auto refused = gate(req)) {
            co_return std::move(*refused);
        }
    }
    if (h != nullptr) {
        try {
            co_return co_await (*h)(req);
        } catch (const std::exception& e) {
            log::error("handler failed", {{"path", req.path()}, {"what", e.what()}, {"request_id", req.request_id}});
            co_return error_response(500, "internal_error");
        }
    }
    if (status == 405) {
        auto res = error_response(405, "method_not_allowed", fmt::format("use {}", allow));
        res.set(beast_http::field::allow, allow);
        co_return res;
    }
    co_return error_response(404, "not_found");
}

// One access-log line a request (info level).
void log_request(request& req, beast_http::verb method, unsigned status, double ms)
{
    if (!log::enabled(log::level::info)) {
        return;
    }
    std::vector<log::field> fields;
    fields.reserve(8 + req.log_fields.size());
    fields.emplace_back("method", std::string_view(beast_http::to_string(method)));
    fields.emplace_back("path", req.path());
    fields.emplace_back("status", status);
    fields.emplace_back("ms", ms);
    fields.emplace_back("client", req.client_addr);
    fields.emplace_back("request_id", req.request_id);
    for (auto& f : req.log_fields) {
        fields.push_back(std::move(f));
    }
    log::write(log::level::info, "request", fields);
}

// Serves requests until the client closes, a deadline passes, or the server drains.
// Parameters are references into the awaiting session's frame (GCC 12: docs/STYLE.md).
template <class Stream>
awaitable<void> serve_requests(const state_ptr& st, Stream& stream, const std::shared_ptr<connection>& conn,
                               net::ip::address peer, bool tls)
{
    const std::shared_ptr<const server::state::limits> snapshot = st->live.load();
    const settings& cfg = snapshot->cfg;
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
        conn->idle = true;
        if (st->draining) {
            co_return;
        }
        if (buffer.size() == 0) {
            // Waiting for the next request: the idle deadline (the header deadline for the
            // first one, so a connect-and-say-nothing client is dropped quickly).
            arm(stream, first ? cfg.header_timeout : cfg.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
            if (ec) {
                if (is_timeout(ec)) {
                    st->timeouts.inc();
                }
                co_return;
            }
            buffer.commit(n);
        }
        conn->idle = false;
        first = false;
        const auto started = std::chrono::steady_clock::now();

        beast_http::request_parser<beast_http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
        parser.body_limit(cfg.max_body_bytes);

        arm(stream, cfg.header_timeout);
        auto [hec, hn] = co_await beast_http::async_read_header(stream, buffer, parser, use_tuple);
        if (co_await header_refused(st, cfg, stream, parser, hec)) {
            co_return;
        }

        request req = request_for(*st, *snapshot, parser.get(), peer, tls);
        if (hec == beast_http::error::body_limit) {
            co_await refuse_oversize(st, cfg, stream, req, parser);
            co_return;
        }
        if (beast::iequals(parser.get()[beast_http::field::expect], "100-continue")) {
            beast_http::response<beast_http::empty_body> cont{beast_http::status::continue_, 11};
            arm(stream, cfg.write_timeout);
            auto [cec, cn] = co_await beast_http::async_write(stream, cont, use_tuple);
            if (cec) {
                co_return;
            }
        }

        arm(stream, cfg.body_timeout);
        auto [bec, bn] = co_await beast_http::async_read(stream, buffer, parser, use_tuple);
        if (bec) {
            co_await end_on_body_error(st, cfg, stream, req, parser, bec);
            co_return;
        }
        req.msg = parser.release();

        std::string_view route = "unmatched";
        response res = co_await dispatch(st, req, route);
        const auto method = req.msg.method();
        res.version(req.msg.version());
        res.set("X-Request-Id", req.request_id);
        res.keep_alive(req.msg.keep_alive() && !st->draining);
        if (method == beast_http::verb::head) {
            res.body().clear();  // Content-Length already describes the GET body
        }

        const bool ok = co_await write_response(stream, res, cfg);
        const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
        st->observe(route, res.result_int(), elapsed.count() / 1000);
        log_request(req, method, res.result_int(), elapsed.count());
        if (!ok || !res.keep_alive()) {
            co_return;
        }
    }
}

awaitable<void> plain_session(state_ptr st, tcp::socket socket, std::shared_ptr<connection> conn)
{
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec).address();
    beast::tcp_stream stream(std::move(socket));
    conn->close = [&stream] { stream.socket().cancel(); };
    co_await serve_requests(st, stream, conn, peer, false);
    conn->close = nullptr;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

awaitable<void> tls_session(state_ptr st, tcp::socket socket, std::shared_ptr<connection> conn)
{
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec).address();
    const std::shared_ptr<ssl::context> ctx = st->tls.load();  // outlives the stream
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *ctx);
    conn->close = [&stream] { beast::get_lowest_layer(stream).socket().cancel(); };
    lowest(stream).expires_after(st->live.load()->cfg.handshake_timeout);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (hec) {
        conn->close = nullptr;
        if (is_timeout(hec)) {
            st->timeouts.inc();
        }
        log::debug("tls handshake failed", {{"peer", peer.to_string()}, {"error", hec.message()}});
        co_return;
    }
    co_await serve_requests(st, stream, conn, peer, true);
    conn->close = nullptr;
    // A peer that closes without close_notify is common (stream_truncated); not an error.
    lowest(stream).expires_after(st->live.load()->cfg.write_timeout);
    co_await stream.async_shutdown(use_tuple);
}

awaitable<void> accept_loop(state_ptr st, tcp::acceptor* acceptor, bool tls)
{
    for (;;) {
        // A named strand, not a temporary inside co_await (GCC 12: docs/STYLE.md).
        auto strand = net::make_strand(st->ioc);
        auto [ec, socket] = co_await acceptor->async_accept(strand, use_tuple);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor->is_open()) {
                co_return;
            }
            // EMFILE and friends: back off briefly instead of spinning.
            log::warn("accept failed", {{"error", ec.message()}});
            net::steady_timer t(acceptor->get_executor(), std::chrono::milliseconds(50));
            co_await t.async_wait(use_tuple);
            continue;
        }
        if (st->draining) {
            continue;  // socket closes as it goes out of scope
        }
        const std::shared_ptr<const server::state::limits> limits = st->live.load();
        if (st->open.load() >= limits->cfg.max_connections) {
            st->refused_over_limit.inc();
            continue;
        }
        auto conn = std::make_shared<connection>();
        conn->ex = socket.get_executor();
        {
            // Fairness: one client (address) cannot take every slot of max_connections and
            // starve the others. A trusted proxy carries many clients and is exempt; so is a
            // socket whose peer is already gone (it fails at its first read anyway).
            boost::system::error_code pec;
            const auto peer = socket.remote_endpoint(pec);
            if (!pec && !limits->trusted.contains(peer.address())) {
                conn->client = unmapped(peer.address());
            }
        }
        const auto id = st->register_connection(conn, limits->cfg.max_connections_per_client);
        if (id == 0) {
            st->refused_per_client.inc();
            log::debug("connection refused: client over its share",
                       {{"client", conn->client->to_string()},
                        {"max_connections_per_client", limits->cfg.max_connections_per_client}});
            continue;  // socket closes as it goes out of scope
        }
        st->open_gauge.set(static_cast<std::int64_t>(st->open.fetch_add(1) + 1));
        st->accepted.inc();
        boost::system::error_code nec;
        socket.set_option(tcp::no_delay(true), nec);
        auto ex = socket.get_executor();
        auto done = [st, id](const std::exception_ptr& e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& x) {
                    log::error("session failed", {{"what", x.what()}});
                }
            }
            st->connection_closed(id);
        };
        if (tls) {
            net::co_spawn(ex, tls_session(st, std::move(socket), conn), std::move(done));
        } else {
            net::co_spawn(ex, plain_session(st, std::move(socket), conn), std::move(done));
        }
    }
}

} // namespace

namespace {

// A listening acceptor on its own strand for "host:port"; errors name the address.
boost::system::result<std::unique_ptr<tcp::acceptor>, std::string> open_listener(net::io_context& ioc,
                                                                                const std::string& text)
{
    const auto ep = parse_listen(text);
    if (!ep) {
        return text + ": expected host:port";
    }
    auto acc = std::make_unique<tcp::acceptor>(net::make_strand(ioc));
    boost::system::error_code ec;
    acc->open(ep->protocol(), ec);
    if (!ec) {
        acc->set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec && ep->address().is_v6()) {
        acc->set_option(net::ip::v6_only(true), ec);
    }
    if (!ec) {
        acc->bind(*ep, ec);
    }
    if (!ec) {
        acc->listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return fmt::format("{}: {}", text, ec.message());
    }
    return acc;
}

void start_accepting(const state_ptr& st, tcp::acceptor* acc, bool tls)
{
    log::info(tls ? "listening (https)" : "listening (http)",
              {{"address", fmt::format("{}:{}", acc->local_endpoint().address().to_string(), acc->local_endpoint().port())}});
    // An acceptor outlives its loop (a reload retires it, never destroys it), so a restarted
    // loop may take the same pointer.
    task::spawn_supervised(
        acc->get_executor(), st->accept_task, [st, acc, tls] { return accept_loop(st, acc, tls); }, st->accept_policy);
}

} // namespace

server::server(net::io_context& ioc, settings s, std::shared_ptr<router> routes, std::shared_ptr<ssl::context> tls,
               metrics::registry& metrics)
    : state_(std::make_shared<state>(ioc, std::move(s), std::move(routes), std::move(tls), metrics))
{
}

server::~server() = default;

void server::supervise_accept(std::string task_name, task::policy p)
{
    state_->accept_task = std::move(task_name);
    state_->accept_policy = std::move(p);
}

boost::system::result<void, std::string> server::start()
{
    auto& st = *state_;
    auto bind = [&](const std::string& text, bool tls) -> boost::system::result<void, std::string> {
        auto acc = open_listener(st.ioc, text);
        if (!acc) {
            return acc.error();
        }
        (tls ? st.tls_acceptors : st.plain_acceptors).push_back(std::move(*acc));
        (tls ? st.tls_texts : st.plain_texts).push_back(text);
        return {};
    };
    if (!st.cfg.inherited.empty()) {
        // Socket activation: the passed sockets replace the configured listeners.
        for (const auto& in : st.cfg.inherited) {
            if (in.tls && !st.tls.load()) {
                return fmt::format("socket activation: fd {} is named \"https\" but no TLS certificate is configured",
                                   in.fd);
            }
            sockaddr_storage addr{};
            socklen_t len = sizeof addr;
            if (::getsockname(in.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
                (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)) {
                return fmt::format("socket activation: fd {} is not a TCP/IP socket", in.fd);
            }
            auto acc = std::make_unique<tcp::acceptor>(net::make_strand(st.ioc));
            boost::system::error_code ec;
            acc->assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), in.fd, ec);
            if (ec) {
                return fmt::format("socket activation: fd {}: {}", in.fd, ec.message());
            }
            (in.tls ? st.tls_acceptors : st.plain_acceptors).push_back(std::move(acc));
            (in.tls ? st.tls_texts : st.plain_texts).emplace_back();
        }
    } else {
        for (const auto& l : st.cfg.listen) {
            if (auto r = bind(l, false); !r) {
                return "server.listen: " + r.error();
            }
        }
        if (!st.cfg.tls_listen.empty() && !st.tls.load()) {
            return "server.tls_listen: no TLS certificate configured";
        }
        for (const auto& l : st.cfg.tls_listen) {
            if (auto r = bind(l, true); !r) {
                return "server.tls_listen: " + r.error();
            }
        }
    }
    for (auto& acc : st.plain_acceptors) {
        start_accepting(state_, acc.get(), false);
    }
    for (auto& acc : st.tls_acceptors) {
        start_accepting(state_, acc.get(), true);
    }
    return {};
}

boost::system::result<void, std::string> server::rebind(const std::vector<std::string>& listen,
                                                        const std::vector<std::string>& tls_listen)
{
    auto& st = *state_;
    std::lock_guard lock(st.listeners_mutex);
    if (!st.cfg.inherited.empty()) {
        if (listen != st.cfg.listen || tls_listen != st.cfg.tls_listen) {
            return std::string("listeners come from socket activation; change the socket unit instead");
        }
        return {};
    }
    if (st.draining) {
        return std::string("shutting down");
    }
    if (!tls_listen.empty() && !st.tls.load()) {
        return std::string("server.tls_listen: no TLS certificate configured");
    }
    auto contains = [](const std::vector<std::string>& v, const std::string& x) {
        return std::find(v.begin(), v.end(), x) != v.end();
    };
    // Bind every new listener first: if one fails, close them all and change nothing.
    struct added {
        std::unique_ptr<tcp::acceptor> acc;
        std::string text;
        bool tls;
    };
    std::vector<added> fresh;
    for (const bool tls : {false, true}) {
        const auto& wanted = tls ? tls_listen : listen;
        const auto& have = tls ? st.tls_texts : st.plain_texts;
        for (const auto& text : wanted) {
            if (contains(have, text)) {
                continue;
            }
            auto acc = open_listener(st.ioc, text);
            if (!acc) {
                return (tls ? "server.tls_listen: " : "server.listen: ") + acc.error();
            }
            fresh.push_back({std::move(*acc), text, tls});
        }
    }
    // Close the listeners no longer wanted, on their strands, and wait for that.
    std::vector<std::future<void>> closed;
    for (const bool tls : {false, true}) {
        const auto& wanted = tls ? tls_listen : listen;
        auto& accs = tls ? st.tls_acceptors : st.plain_acceptors;
        auto& texts = tls ? st.tls_texts : st.plain_texts;
        for (std::size_t i = 0; i < accs.size();) {
            if (contains(wanted, texts[i])) {
                ++i;
                continue;
            }
            log::info(tls ? "stopped listening (https)" : "stopped listening (http)", {{"address", texts[i]}});
            auto done = std::make_shared<std::promise<void>>();
            closed.push_back(done->get_future());
            net::post(accs[i]->get_executor(), [a = accs[i].get(), done] {
                boost::system::error_code ec;
                a->close(ec);
                done->set_value();
            });
            st.retired.push_back(std::move(accs[i]));
            accs.erase(accs.begin() + static_cast<std::ptrdiff_t>(i));
            texts.erase(texts.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
    for (auto& f : closed) {
        f.wait();
    }
    for (auto& a : fresh) {
        start_accepting(state_, a.acc.get(), a.tls);
        (a.tls ? st.tls_acceptors : st.plain_acceptors).push_back(std::move(a.acc));
        (a.tls ? st.tls_texts : st.plain_texts).push_back(a.text);
    }
    st.cfg.listen = listen;
    st.cfg.tls_listen = tls_listen;
    return {};
}

std::shared_ptr<ssl::context> server::set_tls_context(std::shared_ptr<ssl::context> tls)
{
    return state_->tls.exchange(std::move(tls));
}

void server::set_limits(const settings& s)
{
    state_->live.store(state::make_limits(s));
}

std::vector<tcp::endpoint> server::plain_endpoints() const
{
    std::vector<tcp::endpoint> out;
    std::lock_guard lock(state_->listeners_mutex);
    for (const auto& a : state_->plain_acceptors) {
        out.push_back(a->local_endpoint());
    }
    return out;
}

std::vector<tcp::endpoint> server::tls_endpoints() const
{
    std::vector<tcp::endpoint> out;
    std::lock_guard lock(state_->listeners_mutex);
    for (const auto& a : state_->tls_acceptors) {
        out.push_back(a->local_endpoint());
    }
    return out;
}

std::size_t server::open_connections() const noexcept { return state_->open.load(); }

namespace {

// An in-memory test stream with the deadline of a beast::tcp_stream, so that serve_stream()
// runs the session's timeouts too: once the armed deadline passes, the stream is closed and
// the operation in progress, and every later one, fails with beast::error::timeout.
class timed_test_stream {
public:
    using executor_type = net::any_io_executor;
    using test_stream = beast::test::basic_stream<executor_type>;

    explicit timed_test_stream(test_stream& s) : next_(s), deadline_(std::make_shared<deadline>(s)) {}
    ~timed_test_stream()
    {
        deadline_->stream = nullptr;
        deadline_->timer.cancel();
    }
    timed_test_stream(const timed_test_stream&) = delete;
    timed_test_stream& operator=(const timed_test_stream&) = delete;

    executor_type get_executor() noexcept { return next_.get_executor(); }

    void expires_after(std::chrono::steady_clock::duration d)
    {
        deadline_->timer.expires_after(d);
        // A wait that completed before this re-arm finds the expiry moved and does nothing.
        deadline_->timer.async_wait([d = deadline_](boost::system::error_code ec) {
            if (ec || d->stream == nullptr || d->timer.expiry() > std::chrono::steady_clock::now()) {
                return;
            }
            d->expired = true;
            d->stream->close();         // fails the pending read, tells the peer
            d->stream->close_remote();  // and later reads end instead of waiting
        });
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token)
    {
        return net::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            [this, buffers, started = false](auto& self, boost::system::error_code ec = {},
                                             std::size_t n = 0) mutable {
                if (!started) {
                    started = true;
                    next_.async_read_some(buffers, std::move(self));
                    return;
                }
                self.complete(outcome(ec), n);
            },
            token, next_);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token)
    {
        return net::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            [this, buffers, started = false](auto& self, boost::system::error_code ec = {},
                                             std::size_t n = 0) mutable {
                if (!started) {
                    started = true;
                    next_.async_write_some(buffers, std::move(self));
                    return;
                }
                self.complete(outcome(ec), n);
            },
            token, next_);
    }

private:
    struct deadline {
        explicit deadline(test_stream& s) : stream(&s), timer(s.get_executor()) {}
        test_stream* stream;
        net::steady_timer timer;
        bool expired = false;
    };

    boost::system::error_code outcome(boost::system::error_code ec) const
    {
        return deadline_->expired ? boost::system::error_code(beast::error::timeout) : ec;
    }

    test_stream& next_;
    std::shared_ptr<deadline> deadline_;
};

} // namespace

awaitable<void> server::serve_stream(beast::test::basic_stream<net::any_io_executor>& stream)
{
    auto conn = std::make_shared<connection>();
    timed_test_stream timed(stream);
    co_await serve_requests(state_, timed, conn, net::ip::make_address("127.0.0.1"), false);
    stream.close();  // the peer sees the end, as a socket session shuts its sending side down
}

void server::shutdown(std::function<void(bool clean)> drained)
{
    auto st = state_;
    if (st->draining.exchange(true)) {
        return;
    }
    // Acceptors are closed on their own strands; wait for that, so that once shutdown()
    // has logged "stopped accepting" no new connection can be taken.
    std::vector<std::future<void>> closed;
    std::unique_lock listeners(st->listeners_mutex);
    for (auto* list : {&st->plain_acceptors, &st->tls_acceptors}) {
        for (auto& acc : *list) {
            auto done = std::make_shared<std::promise<void>>();
            closed.push_back(done->get_future());
            net::post(acc->get_executor(), [a = acc.get(), done] {
                boost::system::error_code ec;
                a->close(ec);
                done->set_value();
            });
        }
    }
    listeners.unlock();
    for (auto& f : closed) {
        f.wait();
    }
    log::info("stopped accepting; draining", {{"open", st->open.load()}});
    bool done_now = false;
    {
        std::lock_guard lock(st->mutex);
        if (st->connections.empty()) {
            done_now = true;
        } else {
            st->drained = std::move(drained);
            st->drain_timer = std::make_unique<net::steady_timer>(st->ioc, st->live.load()->cfg.drain_timeout);
            st->drain_timer->async_wait([st](boost::system::error_code ec) {
                if (ec) {
                    return;  // cancelled: drained in time
                }
                std::function<void(bool)> done;
                {
                    std::lock_guard lock(st->mutex);
                    done = std::move(st->drained);
                    st->drained = nullptr;
                }
                log::warn("drain deadline passed; closing remaining connections",
                          {{"open", st->open.load()}});
                st->close_connections(false);
                if (done) {
                    done(false);
                }
            });
        }
    }
    if (done_now) {
        drained(true);  // NOLINT(bugprone-use-after-move): moved only on the branch that leaves done_now false
        return;
    }
    st->close_connections(true);
}

} // namespace cwhook::http
