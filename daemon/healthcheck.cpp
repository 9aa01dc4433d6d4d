// `cwhook healthcheck`: GET /healthz (or /readyz with --ready) of a running daemon and exit
// 0 when it answers 200, 1 otherwise. For container HEALTHCHECKs (the image needs no curl)
// and scripts. The address comes from --url, else from the configuration's first plain
// listener (a wildcard address is reached through loopback).
#include "commands.hpp"

#include "client/https_client.hpp"
#include "config/config.hpp"
#include "core/duration.hpp"
#include "crypto/tls.hpp"
#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/url/parse.hpp>

#include <cstdio>

namespace cwhook::daemon {

namespace {

struct healthcheck_options {
    std::string url;
    std::string timeout = "3s";
    std::string ca_file;
    bool ready = false;
};

// The URL to probe when none is given: the first plain listener of the configuration.
boost::system::result<std::string, std::string> default_url(const common_options& common, bool ready)
{
    using boost::system::in_place_error;
    auto cfg = config::load(config_path(common), config::process_env());
    if (!cfg) {
        return {in_place_error, cfg.error()};
    }
    const auto& listen = cfg->app.server.listen;
    if (listen.empty()) {
        return {in_place_error, "server.listen is empty: give the address to probe with --url"};
    }
    const auto ep = http::parse_listen(listen.front());
    if (!ep) {
        return {in_place_error, "server.listen: " + listen.front() + ": expected host:port"};
    }
    auto addr = ep->address();
    if (addr.is_unspecified()) {
        addr = addr.is_v6() ? boost::asio::ip::address(boost::asio::ip::address_v6::loopback())
                            : boost::asio::ip::address(boost::asio::ip::address_v4::loopback());
    }
    const auto host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    return {boost::system::in_place_value, "http://" + host + ":" + std::to_string(ep->port()) + (ready ? "/readyz" : "/healthz")};
}

int run_healthcheck(const common_options& common, const healthcheck_options& o)
{
    const auto timeout = parse_duration(o.timeout);
    if (!timeout || timeout->count() <= 0) {
        std::fprintf(stderr, "cwhook healthcheck: --timeout %s: expected a duration such as 3s or 500ms\n",
                     o.timeout.c_str());
        return 2;
    }
    std::string url = o.url;
    if (url.empty()) {
        auto d = default_url(common, o.ready);
        if (!d) {
            std::fprintf(stderr, "cwhook healthcheck: %s\n", d.error().c_str());
            return 1;
        }
        url = *d;
    }
    const auto u = boost::urls::parse_uri(url);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty()) {
        std::fprintf(stderr, "cwhook healthcheck: --url %s: expected http://host:port/path or https://...\n", url.c_str());
        return 2;
    }
    client::request req;
    req.tls = u->scheme() == "https";
    req.host = u->host_type() == boost::urls::host_type::ipv6 ? std::string(u->host_address())
                                                               : std::string(u->host());
    if (req.host.size() > 2 && req.host.front() == '[') {
        req.host = req.host.substr(1, req.host.size() - 2);
    }
    req.port = u->has_port() ? static_cast<std::uint16_t>(u->port_number()) : (req.tls ? 443 : 80);
    req.target = u->encoded_path().empty() ? "/healthz" : std::string(u->encoded_target());
    client::options opt;
    opt.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout);
    opt.max_response_bytes = std::size_t{64} * 1024;
    opt.allow_private = true;  // the daemon is local

    auto tls = crypto::make_client_context(o.ca_file);
    if (!tls) {
        std::fprintf(stderr, "cwhook healthcheck: --ca-file %s: %s\n", o.ca_file.c_str(), tls.error().message.c_str());
        return 2;
    }
    boost::asio::io_context ioc;
    client::https_client http(ioc.get_executor(), *tls);
    std::optional<client::fetch_result> answer;
    boost::asio::co_spawn(
        ioc, [&]() -> boost::asio::awaitable<void> { answer = co_await http.fetch(req, opt); },
        boost::asio::detached);
    ioc.run();
    if (!answer || !*answer) {
        const std::string why = answer ? answer->error().detail : std::string("no answer");
        std::fprintf(stderr, "cwhook healthcheck: %s: %s\n", url.c_str(), why.c_str());
        return 1;
    }
    if ((*answer)->status != 200) {
        std::fprintf(stderr, "cwhook healthcheck: %s: HTTP %u %s\n", url.c_str(), (*answer)->status,
                     (*answer)->body.substr(0, 200).c_str());
        return 1;
    }
    std::printf("ok %s\n", url.c_str());
    return 0;
}

} // namespace

command add_healthcheck(CLI::App& app, common_options& common)
{
    auto* cmd = app.add_subcommand("healthcheck",
                                   "Probe a running daemon's /healthz (exit 0 when healthy); for container health checks");
    add_config_option(*cmd, common);
    auto o = std::make_shared<healthcheck_options>();
    cmd->add_option("--url", o->url, "URL to probe (default: first server.listen address, /healthz)");
    cmd->add_flag("--ready", o->ready, "Probe /readyz (storage writable) instead of /healthz");
    cmd->add_option("--timeout", o->timeout, "Give up after this long")->capture_default_str();
    cmd->add_option("--ca-file", o->ca_file, "Extra CA certificates for an https:// URL");
    return {cmd, [&common, o] { return run_healthcheck(common, *o); }};
}

} // namespace cwhook::daemon
