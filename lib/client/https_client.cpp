#include "client/https_client.hpp"

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
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <charconv>

namespace cwhook::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

thread_local std::string t_last_error;

result<response> fail(errc code, std::string why)
{
    t_last_error = std::move(why);
    return code;
}

template <class Stream>
net::awaitable<result<response>> exchange(Stream& stream, const request& req, const options& opt,
                                          std::chrono::steady_clock::time_point deadline)
{
    http::request<http::string_body> msg{http::string_to_verb(req.method), req.target, 11};
    const bool default_port = req.port == (req.tls ? 443 : 80);
    msg.set(http::field::host, default_port ? req.host : fmt::format("{}:{}", req.host, req.port));
    msg.set(http::field::user_agent, "cwhook/" CWHOOK_VERSION);
    msg.set(http::field::connection, "close");
    for (const auto& [k, v] : req.headers) {
        msg.set(k, v);
    }
    if (!req.body.empty() || msg.method() == http::verb::post || msg.method() == http::verb::put ||
        msg.method() == http::verb::patch) {
        msg.body() = req.body;
        msg.prepare_payload();
    }
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [wec, wn] = co_await http::async_write(stream, msg, use_tuple);
    if (wec) {
        co_return fail(errc::key_fetch_failed, "write: " + wec.message());
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(opt.max_response_bytes);
    parser.header_limit(16 * 1024);
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec == http::error::body_limit) {
        co_return fail(errc::response_too_large, fmt::format("response exceeds {} bytes", opt.max_response_bytes));
    }
    if (rec) {
        co_return fail(errc::key_fetch_failed,
                       rec == beast::error::timeout ? std::string("timed out") : "read: " + rec.message());
    }
    auto res = parser.release();
    response out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    for (const auto& f : res) {
        out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    co_return out;
}

} // namespace

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
    if (a.is_unspecified() || a.is_loopback() || a.is_multicast()) {
        return true;
    }
    if (a.is_v4()) {
        const auto v = a.to_v4().to_uint();
        return (v >> 24) == 10 || (v >> 20) == (172u << 4 | 1) || (v >> 16) == (192u << 8 | 168) ||
               (v >> 16) == (169u << 8 | 254) || (v >> 22) == (100u << 2 | 1) || (v >> 24) == 0 ||
               (v >> 24) == 127;
    }
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) {
        return is_private_address(net::ip::make_address_v4(net::ip::v4_mapped, v6));
    }
    const auto b = v6.to_bytes();
    return v6.is_link_local() || v6.is_site_local() || (b[0] & 0xfe) == 0xfc;
}

https_client::https_client(net::any_io_executor ex, std::shared_ptr<ssl::context> tls)
    : ex_(std::move(ex)), tls_(std::move(tls))
{
}

std::string https_client::last_error() { return t_last_error; }

net::awaitable<result<response>> https_client::fetch(const request& req_in, const options& opt_in)
{
    // Own copies: by-value class parameters of coroutines awaited in place are destroyed
    // twice by GCC 12, so the caller passes references and we copy here.
    const request req = req_in;
    const options opt = opt_in;
    const auto deadline = std::chrono::steady_clock::now() + opt.timeout;

    // Resolve under the same deadline: a timer cancels a hanging lookup.
    tcp::resolver resolver(ex_);
    net::steady_timer resolve_timer(ex_, deadline);
    resolve_timer.async_wait([&resolver](boost::system::error_code ec) {
        if (!ec) {
            resolver.cancel();
        }
    });
    const auto service = std::to_string(req.port);  // not a temporary inside co_await (GCC 12)
    auto [rec, results] = co_await resolver.async_resolve(req.host, service, use_tuple);
    resolve_timer.cancel();
    if (rec) {
        co_return fail(errc::key_fetch_failed, fmt::format("resolve {}: {}", req.host, rec.message()));
    }
    std::vector<tcp::endpoint> endpoints;
    for (const auto& r : results) {
        if (opt.allow_private || !is_private_address(r.endpoint().address())) {
            endpoints.push_back(r.endpoint());
        }
    }
    if (endpoints.empty()) {
        co_return fail(errc::private_address, fmt::format("{} resolves only to private addresses", req.host));
    }

    if (!req.tls) {
        beast::tcp_stream stream(ex_);
        stream.expires_at(deadline);
        auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
        if (cec) {
            co_return fail(errc::key_fetch_failed, "connect: " + cec.message());
        }
        auto r = co_await exchange(stream, req, opt, deadline);
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        co_return r;
    }

    if (!tls_) {
        co_return fail(errc::key_fetch_failed, "no TLS context");
    }
    // cppcheck-suppress nullPointerRedundantCheck ; the co_return above leaves when tls_ is null
    beast::ssl_stream<beast::tcp_stream> stream(ex_, *tls_);
    if (!crypto::set_peer_name(stream.native_handle(), req.host)) {
        co_return fail(errc::key_fetch_failed, "cannot set TLS peer name");
    }
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(endpoints, use_tuple);
    if (cec) {
        co_return fail(errc::key_fetch_failed,
                       cec == beast::error::timeout ? std::string("connect timed out") : "connect: " + cec.message());
    }
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
        co_return fail(errc::key_fetch_failed,
                       hec == beast::error::timeout ? std::string("TLS handshake timed out") : "TLS: " + hec.message());
    }
    auto r = co_await exchange(stream, req, opt, deadline);
    // The answer is complete (Connection: close); a short, bounded close_notify is courtesy.
    beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(200));
    co_await stream.async_shutdown(use_tuple);
    co_return r;
}

} // namespace cwhook::client
