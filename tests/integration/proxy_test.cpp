// cwhook behind a real reverse proxy: nginx (Debian package) terminates TLS with a test
// certificate and proxies to cwhook's plain HTTP listener on loopback. A signed delivery
// through nginx is verified and stored byte-identical; the stored client address is the one
// from X-Forwarded-For when nginx is a trusted proxy, and nginx's own address when it is not.
#include "support/harness.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cwhook::test {
namespace {

namespace net = boost::asio;

constexpr const char* nginx_binary = "/usr/sbin/nginx";

// nginx in the foreground (master + one worker), everything under `dir`. It inherits its listening
// socket (bound here to port 0) through the NGINX variable, nginx's own hand-over mechanism,
// so there is no port race and no wait: connections queue until it accepts.
class nginx_proxy {
public:
    nginx_proxy(const temp_dir& dir, const test_cert& cert, std::uint16_t upstream_port)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);  // as nginx's own
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("cannot make the proxy's listening socket");
        }
        port_ = ntohs(addr.sin_port);
        const auto root = dir.path() / "nginx";
        std::filesystem::create_directories(root);
        const auto conf = (root / "nginx.conf").string();
        write_file(conf, fmt::format(R"(daemon off;
master_process on;  # a worker accepts on the inherited socket
worker_processes 1;
pid {root}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 2m;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
)",
                                     fmt::arg("root", root.string()), fmt::arg("port", port_),
                                     fmt::arg("cert", cert.cert), fmt::arg("key", cert.key),
                                     fmt::arg("upstream", upstream_port)));
        process_ = std::make_unique<child_process>(
            std::vector<std::string>{"-p", root.string(), "-c", conf, "-e", "stderr"},
            std::map<std::string, std::string>{{"NGINX", "3;"}}, std::vector<int>{fd_}, nginx_binary);
    }
    ~nginx_proxy()
    {
        process_->signal(SIGTERM);  // the master stops its worker too
        process_->wait();
        process_.reset();
        ::close(fd_);
    }
    nginx_proxy(const nginx_proxy&) = delete;
    nginx_proxy& operator=(const nginx_proxy&) = delete;

    net::ip::tcp::endpoint endpoint() const { return {net::ip::make_address("127.0.0.1"), port_}; }
    std::string output() { return process_->output(); }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

class Proxy : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!std::filesystem::exists(nginx_binary)) {
            FAIL() << nginx_binary << " missing: install Debian's nginx (make test does)";
        }
    }

    temp_dir dir;
    test_cert cert = make_cert(dir);
    fake_key_server keys{cert};
    std::string db = dir.file("events.db");

    app_options options(std::vector<std::string> trusted)
    {
        app_options o;
        o.db = db;
        o.allowed_key_hosts = {keys.host_entry()};
        o.ca_file = cert.cert;
        o.tweak = [trusted = std::move(trusted)](callback::app_settings& s) { s.server.trusted_proxies = trusted; };
        return o;
    }

    // A payload with bytes a careless proxy or parser would alter: invalid UTF-8, escaped
    // unicode, a 2.00-style number and CRLF inside a string.
    http_call delivery(std::int64_t id, std::string_view message_id)
    {
        auto body = make_payload(keys.url(), id, message_id);
        const auto brace = body.rfind('}');
        body.insert(brace, ",\"Extra\":\"caf\xc3\xa9 \xff\xfe \\u00e9\\r\\n\",\"Budget\":2.00");
        auto call = signed_call(body, keys.key());
        call.headers.emplace_back("X-Forwarded-For", "203.0.113.7");
        return call;
    }
};

TEST_F(Proxy, TrustedNginxForwardsTheClientAddressAndTheExactBody)
{
    running_app app(options({"127.0.0.1/32"}));
    nginx_proxy nginx(dir, cert, app.http().port());
    const auto call = delivery(4100, "proxy-1");
    const auto r = send(nginx.endpoint(), call, cert.cert);
    ASSERT_EQ(r.status, 200) << r.error << r.body << nginx.output();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].status, "verified");
    EXPECT_EQ(rows[0].body, call.body);  // byte-identical through TLS termination and proxying
    EXPECT_EQ(rows[0].client_addr, "203.0.113.7");
}

TEST_F(Proxy, UntrustedProxyHeaderIsIgnored)
{
    running_app app(options({}));
    nginx_proxy nginx(dir, cert, app.http().port());
    const auto call = delivery(4101, "proxy-2");
    const auto r = send(nginx.endpoint(), call, cert.cert);
    ASSERT_EQ(r.status, 200) << r.error << r.body << nginx.output();
    const auto rows = query_events(db);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].body, call.body);
    EXPECT_EQ(rows[0].client_addr, "127.0.0.1");  // nginx itself
}

TEST_F(Proxy, ForgedSignatureThroughTheProxyIsRefused)
{
    running_app app(options({"127.0.0.1/32"}));
    nginx_proxy nginx(dir, cert, app.http().port());
    auto call = delivery(4102, "proxy-3");
    call.body.replace(call.body.find("4102"), 4, "4103");  // one digit changed after signing
    const auto r = send(nginx.endpoint(), call, cert.cert);
    EXPECT_EQ(r.status, 401) << r.error << r.body;
    app.stop();  // rejections are written after the answer; stopping flushes them
    EXPECT_EQ(count_rows(db, "events"), 0);
    EXPECT_EQ(count_rows(db, "rejections", "client_addr = '203.0.113.7'"), 1);
}

} // namespace
} // namespace cwhook::test
