#include "support/sink.hpp"

#include "core/metrics.hpp"
#include "crypto/tls.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <thread>

namespace cwhook::test {

namespace net = boost::asio;

std::string sink_request::header(const std::string& name) const
{
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

struct sink::impl {
    net::io_context ioc;
    net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
    metrics::registry metrics;
    std::unique_ptr<http::server> server;
    std::thread thread;
    mutable std::mutex mutex;
    mutable std::condition_variable arrived;
    std::vector<sink_request> seen;
    responder answer = [](const sink_request&, std::size_t) { return sink_answer{}; };

    net::awaitable<http::response> handle(http::request& req)
    {
        sink_request r;
        r.method = std::string(req.msg.method_string());
        r.target = std::string(req.msg.target());
        r.body = req.msg.body();
        for (const auto& f : req.msg) {
            std::string name(f.name_string());
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            r.headers[name] = std::string(f.value());
        }
        sink_answer a;
        {
            std::lock_guard lock(mutex);
            seen.push_back(r);
            a = answer(r, seen.size());
        }
        arrived.notify_all();
        if (a.delay.count() > 0) {
            net::steady_timer t(co_await net::this_coro::executor);
            t.expires_after(a.delay);
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        http::response res{static_cast<http::beast_http::status>(a.status), 11};
        for (const auto& [k, v] : a.headers) {
            res.set(k, v);
        }
        if (a.status != 204 && a.status != 304) {
            res.set(http::beast_http::field::content_type, "text/plain");
            res.body() = "ok";
        }
        res.prepare_payload();
        co_return res;
    }
};

sink::sink(std::uint16_t port, const tls_files* tls) : impl_(std::make_unique<impl>()), tls_(tls != nullptr)
{
    auto routes = std::make_shared<http::router>();
    impl* p = impl_.get();
    // Every path: a prefix route matches "<path>/...", so "" is the one that takes them all
    // ("/" would match only "//...").
    routes->add(
        http::beast_http::verb::post, "", [p](http::request& req) { return p->handle(req); }, true);
    http::settings s;
    const auto address = fmt::format("127.0.0.1:{}", port);
    std::shared_ptr<net::ssl::context> ctx;
    if (tls != nullptr) {
        s.listen.clear();
        s.tls_listen = {address};
        auto c = crypto::make_server_context(tls->cert, tls->key);
        if (!c) {
            throw std::runtime_error("sink: cannot load the TLS files");
        }
        ctx = *c;
    } else {
        s.listen = {address};
    }
    s.drain_timeout = std::chrono::milliseconds(100);
    impl_->server = std::make_unique<http::server>(impl_->ioc, s, routes, ctx, impl_->metrics);
    if (auto r = impl_->server->start(); !r) {
        throw std::runtime_error("sink: " + r.error());
    }
    const auto eps = tls != nullptr ? impl_->server->tls_endpoints() : impl_->server->plain_endpoints();
    port_ = eps.at(0).port();
    impl_->thread = std::thread([p] { p->ioc.run(); });
}

sink::~sink()
{
    impl_->server->shutdown([](bool) {});
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
}

std::string sink::url(const std::string& path) const
{
    return fmt::format("{}://127.0.0.1:{}{}", tls_ ? "https" : "http", port_, path);
}

void sink::respond(responder r)
{
    std::lock_guard lock(impl_->mutex);
    impl_->answer = std::move(r);
}

std::vector<sink_request> sink::requests() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->seen;
}

std::size_t sink::count() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->seen.size();
}

bool sink::wait_for(std::size_t n, std::chrono::milliseconds timeout) const
{
    std::unique_lock lock(impl_->mutex);
    return impl_->arrived.wait_for(lock, timeout, [&] { return impl_->seen.size() >= n; });
}

} // namespace cwhook::test
