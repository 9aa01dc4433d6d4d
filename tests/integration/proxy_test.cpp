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

constexpr const char* nginx_binary = nginx_child::binary;

// nginx terminating TLS in front of cwhook's plain listener, everything under `dir`.
class nginx_proxy {
public:
    nginx_proxy(const temp_dir& dir, const test_cert& cert, std::uint16_t upstream_port)
        : nginx_(dir.path() / "nginx", [&](std::uint16_t port) {
              return fmt::format(R"(    server {{
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
    }})",
                                 fmt::arg("port", port), fmt::arg("cert", cert.cert), fmt::arg("key", cert.key),
                                 fmt::arg("upstream", upstream_port));
          })
    {
    }

    net::ip::tcp::endpoint endpoint() const { return {net::ip::make_address("127.0.0.1"), nginx_.port()}; }
    std::string output() { return nginx_.process().output(); }

private:
    nginx_child nginx_;
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
    EXPECT_EQ(rows[0].body, call.body); // byte-identical through TLS termination and proxying
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
    EXPECT_EQ(rows[0].client_addr, "127.0.0.1"); // nginx itself
}

TEST_F(Proxy, ForgedSignatureThroughTheProxyIsRefused)
{
    running_app app(options({"127.0.0.1/32"}));
    nginx_proxy nginx(dir, cert, app.http().port());
    auto call = delivery(4102, "proxy-3");
    call.body.replace(call.body.find("4102"), 4, "4103"); // one digit changed after signing
    const auto r = send(nginx.endpoint(), call, cert.cert);
    EXPECT_EQ(r.status, 401) << r.error << r.body;
    app.stop(); // rejections are written after the answer; stopping flushes them
    EXPECT_EQ(count_rows(db, "events"), 0);
    EXPECT_EQ(count_rows(db, "rejections", "client_addr = '203.0.113.7'"), 1);
}

} // namespace
} // namespace cwhook::test
