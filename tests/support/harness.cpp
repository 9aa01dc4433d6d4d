#include "support/harness.hpp"

#include "crypto/signature.hpp"
#include "crypto/tls.hpp"
#include "store/event_db.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace cwhook::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// ---------------------------------------------------------------------------------------
std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, std::string_view content)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

std::string fixture(std::string_view name) { return read_file(std::string(CWHOOK_FIXTURES_DIR) + "/" + std::string(name)); }

test_cert make_cert(const temp_dir& dir, std::string_view stem, std::vector<std::string> names)
{
    test_cert c{dir.file(std::string(stem) + ".crt"), dir.file(std::string(stem) + ".key")};
    auto r = crypto::write_self_signed(c.cert, c.key, names);
    if (!r) {
        ADD_FAILURE() << "cannot make certificate: " << r.error().message;
    }
    return c;
}

// ---------------------------------------------------------------------------------------
namespace {

template <class Stream>
net::awaitable<void> do_exchange(Stream& stream, const http_call& call, http_result& out)
{
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(call.method), call.target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::connection, "close");
    bool has_type = false;
    for (const auto& [k, v] : call.headers) {
        req.set(k, v);
        has_type = has_type || beast::iequals(k, "content-type");
    }
    if (!has_type && call.method == "POST") {
        req.set(bhttp::field::content_type, "application/json");
    }
    req.body() = call.body;
    if (call.method != "GET" && call.method != "HEAD") {
        req.prepare_payload();
    }
    auto [wec, wn] = co_await bhttp::async_write(stream, req, use_tuple);
    if (wec) {
        out.error = "write: " + wec.message();
        co_return;
    }
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (call.method == "HEAD") {
        parser.skip(true);
    }
    auto [rec, rn] = co_await bhttp::async_read(stream, buf, parser, use_tuple);
    if (rec) {
        out.error = "read: " + rec.message();
        co_return;
    }
    auto res = parser.release();
    out.status = res.result_int();
    out.body = res.body();
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& ch : name) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        out.headers[name] = std::string(f.value());
    }
}

net::awaitable<void> do_send(net::any_io_executor ex, tcp::endpoint ep, http_call call, std::string ca_file,
                             http_result& out)
{
    if (ca_file.empty()) {
        beast::tcp_stream stream(ex);
        auto [cec] = co_await stream.socket().async_connect(ep, use_tuple);
        if (cec) {
            out.error = "connect: " + cec.message();
            co_return;
        }
        co_await do_exchange(stream, call, out);
        co_return;
    }
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_verify_mode(ssl::verify_peer);
    ctx.load_verify_file(ca_file);
    beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
    crypto::set_peer_name(stream.native_handle(), ep.address().to_string());
    auto [cec] = co_await beast::get_lowest_layer(stream).socket().async_connect(ep, use_tuple);
    if (cec) {
        out.error = "connect: " + cec.message();
        co_return;
    }
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
        out.error = "handshake: " + hec.message();
        co_return;
    }
    co_await do_exchange(stream, call, out);
}

} // namespace

http_result send(const tcp::endpoint& ep, const http_call& call, const std::string& ca_file,
                 std::chrono::milliseconds timeout)
{
    net::io_context ioc;
    http_result out;
    net::co_spawn(ioc, do_send(ioc.get_executor(), ep, call, ca_file, out), [&out](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                out.error = x.what();
            }
        }
    });
    ioc.run_for(timeout);
    if (!ioc.stopped()) {
        out.error = "timed out";
    }
    return out;
}

std::string make_payload(std::string_view key_url, std::int64_t id, std::string_view message_id, std::string_view action,
                         std::string_view type, std::string_view company)
{
    std::string entity = fmt::format(R"({{\"id\":{},\"summary\":\"Printer on fire\",\"budgetHours\":2.00}})", id);
    std::string mid = message_id.empty() ? std::string() : fmt::format(R"("MessageId":"{}",)", message_id);
    std::string cid = company.empty() ? std::string() : fmt::format(R"("CompanyId":"{}",)", company);
    return fmt::format(
        R"({{{}"FromUrl":"sandbox-na.myconnectwise.net",{}"MemberId":"Aurasell","Action":"{}","Type":"{}","ID":{},"ProductInstanceId":"639c96cab2eb560001dd1324","PartnerId":"61ddc2817bcddc0001c74208","Entity":"{}","Metadata":{{"key_url":"{}"}},"CallbackObjectRecId":26604}})",
        mid, cid, action, type, id, entity, key_url);
}

http_call signed_call(std::string body, std::string_view signing_key, std::string target)
{
    http_call c;
    c.target = std::move(target);
    c.headers.emplace_back("x-content-signature", crypto::sign(signing_key, body));
    c.body = std::move(body);
    return c;
}

// ---------------------------------------------------------------------------------------
struct fake_key_server::impl {
    net::io_context ioc;
    ssl::context ctx{ssl::context::tls_server};
    tcp::acceptor acceptor{ioc};
    std::thread thread;
    mutable std::mutex mutex;
    std::string key = "test-signing-key";
    mode m = mode::normal;
    std::chrono::milliseconds delay{0};
    bool held = false;
    std::vector<net::steady_timer*> parked;  // requests waiting for release(); on the ioc thread
    std::atomic<int>* fetches = nullptr;
    std::atomic<int> parked_now{0};
    std::map<std::string, int> served; // under mutex

    net::awaitable<void> session(tcp::socket sock)
    {
        beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), ctx);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
        if (hec) {
            co_return;
        }
        beast::flat_buffer buf;
        bhttp::request<bhttp::string_body> req;
        auto [rec, rn] = co_await bhttp::async_read(stream, buf, req, use_tuple);
        if (rec) {
            co_return;
        }
        mode cur;
        std::string k;
        std::chrono::milliseconds d;
        bool wait = false;
        {
            std::lock_guard lock(mutex);
            cur = m;
            k = key;
            d = delay;
            wait = held;
        }
        if (wait) {
            // Parked before it is counted: once fetches() shows it, release() answers it.
            net::steady_timer gate(stream.get_executor(), net::steady_timer::time_point::max());
            parked.push_back(&gate);
            parked_now.fetch_add(1);
            fetches->fetch_add(1);
            co_await gate.async_wait(use_tuple);
            parked_now.fetch_sub(1);
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));  // for the answer
        } else {
            fetches->fetch_add(1);
        }
        if (cur == mode::slow && d.count() == 0) {
            d = std::chrono::seconds(30);
        }
        if (d.count() > 0) {
            net::steady_timer t(stream.get_executor(), d);
            co_await t.async_wait(use_tuple);
        }
        if (cur == mode::close) {
            beast::get_lowest_layer(stream).socket().set_option(net::socket_base::linger(true, 0));
            beast::get_lowest_layer(stream).socket().close();
            co_return;
        }
        bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
        res.set(bhttp::field::content_type, "text/html");  // Manage's Content-Type may not be JSON
        switch (cur) {
        case mode::normal:
        case mode::slow: {
            res.body() = fmt::format(R"({{"signing_key":"{}"}})", k);
            const std::string_view target = req.target();
            const auto at = target.find("id=");
            std::lock_guard lock(mutex);
            ++served[std::string(at == std::string_view::npos ? std::string_view{} : target.substr(at + 3))];
            break;
        }
        case mode::fail_503: res.result(bhttp::status::service_unavailable); res.body() = "down"; break;
        case mode::redirect:
            res.result(bhttp::status::found);
            res.set(bhttp::field::location, "https://evil.example/key");
            break;
        case mode::huge: res.body() = std::string(10 * 1024 * 1024, 'x'); break;
        case mode::not_json: res.body() = "<html>signing_key</html>"; break;
        case mode::not_found: res.result(bhttp::status::not_found); res.body() = "{}"; break;
        case mode::close: break;
        }
        res.prepare_payload();
        res.keep_alive(false);
        co_await bhttp::async_write(stream, res, use_tuple);
        co_await stream.async_shutdown(use_tuple);
    }

    net::awaitable<void> accept_loop()
    {
        for (;;) {
            auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                co_return;
            }
            net::co_spawn(ioc, session(std::move(sock)), net::detached);
        }
    }
};

fake_key_server::fake_key_server(const test_cert& cert) : impl_(std::make_unique<impl>())
{
    impl_->fetches = &fetches_;
    impl_->ctx.use_certificate_chain_file(cert.cert);
    impl_->ctx.use_private_key_file(cert.key, ssl::context::pem);
    tcp::endpoint ep{net::ip::make_address("127.0.0.1"), 0};
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    port_ = impl_->acceptor.local_endpoint().port();
    net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

fake_key_server::~fake_key_server()
{
    impl_->ioc.stop();
    impl_->thread.join();
}

std::string fake_key_server::url(std::string_view id, std::string_view company) const
{
    return fmt::format("https://127.0.0.1:{}/v2025_1//system/callbackkey/index.rails?companyName={}&id={}", port_,
                       company, id);
}

std::string fake_key_server::host_entry() const { return fmt::format("127.0.0.1:{}", port_); }

void fake_key_server::set_key(std::string key)
{
    std::lock_guard lock(impl_->mutex);
    impl_->key = std::move(key);
}

std::string fake_key_server::key() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->key;
}

void fake_key_server::set_mode(mode m)
{
    std::lock_guard lock(impl_->mutex);
    impl_->m = m;
}

void fake_key_server::set_delay(std::chrono::milliseconds d)
{
    std::lock_guard lock(impl_->mutex);
    impl_->delay = d;
}

void fake_key_server::hold()
{
    std::lock_guard lock(impl_->mutex);
    impl_->held = true;
}

int fake_key_server::parked() const
{
    return impl_->parked_now.load();
}

std::map<std::string, int> fake_key_server::keys_served() const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->served;
}

void fake_key_server::release()
{
    {
        std::lock_guard lock(impl_->mutex);
        impl_->held = false;
    }
    net::post(impl_->ioc, [i = impl_.get()] {
        for (auto* gate : i->parked) {
            gate->cancel();
        }
        i->parked.clear();
    });
}

// ---------------------------------------------------------------------------------------
running_app::running_app(const app_options& o)
{
    callback::app_settings s;
    s.server.listen = {"127.0.0.1:0"};
    s.server.threads = 2;
    s.storage.path = o.db;
    s.admin.listen = "127.0.0.1:0";
    s.verify.mode = o.mode;
    s.verify.allowed_key_hosts = o.allowed_key_hosts;
    s.verify.companies = o.companies;
    s.verify.ca_file = o.ca_file;
    s.verify.key_failure_ttl = std::chrono::milliseconds(50);
    s.verify.pending_retry_min = std::chrono::milliseconds(50);
    s.verify.pending_retry_max = std::chrono::milliseconds(200);
    if (o.tweak) {
        o.tweak(s);
    }
    auto a = callback::app::create(std::move(s));
    if (!a) {
        throw std::runtime_error(a.error());
    }
    app_ = std::move(*a);
    app_->start();
}

running_app::~running_app() { stop(); }

void running_app::stop()
{
    if (app_) {
        app_->shutdown();
    }
}

tcp::endpoint running_app::http() const { return app_->plain_endpoints().at(0); }
tcp::endpoint running_app::https() const { return app_->tls_endpoints().at(0); }

std::uint64_t running_app::counter(std::string_view name, std::string_view labels) const
{
    return app_->metrics().counter_value(name, labels);
}

// ---------------------------------------------------------------------------------------
namespace {

struct db_handle {
    sqlite3* db = nullptr;
    explicit db_handle(const std::string& path)
    {
        if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db);
        }
        sqlite3_busy_timeout(db, 5000);
    }
    ~db_handle() { sqlite3_close(db); }
};

std::string column_text(sqlite3_stmt* st, int i)
{
    const auto* p = static_cast<const char*>(sqlite3_column_blob(st, i));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, i))) : std::string();
}

} // namespace

std::string config_for(const std::string& db, const std::string& key_host, const std::string& ca)
{
    return fmt::format(R"([server]
listen = ["127.0.0.1:0"]
[verify]
companies = ["Cobalt"]
allowed_key_hosts = ["{}"]
ca_file = "{}"
[storage]
path = "{}"
)",
                       key_host, ca, db);
}

// The rows are read by the store's own reader (store/event_fields.hpp), as `cwhook events`
// reads them; only the selection is SQL.
std::vector<db_row> query_events(const std::string& path, const std::string& where)
{
    std::vector<db_row> rows;
    std::vector<std::int64_t> ids;
    {
        db_handle h(path);
        sqlite3_stmt* st = nullptr;
        const auto sql = "SELECT id FROM events WHERE " + where + " ORDER BY id";
        if (sqlite3_prepare_v2(h.db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sqlite3_errmsg(h.db);
            return rows;
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            ids.push_back(sqlite3_column_int64(st, 0));
        }
        sqlite3_finalize(st);
    }
    auto db = store::event_db::open(path, store::db_access::read_only);
    if (!db) {
        ADD_FAILURE() << db.error();
        return rows;
    }
    for (const std::int64_t id : ids) {
        auto e = (*db)->get(id, false);
        if (!e || !*e) {
            ADD_FAILURE() << "event " << id << " vanished";
            continue;
        }
        auto& r = (*e)->record;
        rows.push_back(db_row{.id = id,
                              .status = std::string(store::to_string(r.status)),
                              .verify_reason = std::move(r.verify_reason),
                              .deliveries = (*e)->deliveries,
                              .body = std::move(r.body),
                              .client_addr = std::move(r.client_addr),
                              .headers = std::move(r.headers),
                              .message_id = r.message_id.value_or(""),
                              .type = std::move(r.type),
                              .action = std::move(r.action),
                              .entity_id = r.entity_id.value_or(0)});
    }
    return rows;
}

std::int64_t count_rows(const std::string& path, const std::string& table, const std::string& where)
{
    db_handle h(path);
    sqlite3_stmt* st = nullptr;
    const auto sql = "SELECT count(*) FROM " + table + " WHERE " + where;
    if (sqlite3_prepare_v2(h.db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
        ADD_FAILURE() << sqlite3_errmsg(h.db);
        return -1;
    }
    std::int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

std::string integrity_check(const std::string& path)
{
    db_handle h(path);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(h.db, "PRAGMA integrity_check", -1, &st, nullptr);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        out = column_text(st, 0);
    }
    sqlite3_finalize(st);
    return out;
}

// ---------------------------------------------------------------------------------------
int listening_socket(std::uint16_t& port, bool nonblocking)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("cannot make a listening socket on 127.0.0.1");
    }
    port = ntohs(addr.sin_port);
    return fd;
}

child_process::child_process(std::vector<std::string> args, std::map<std::string, std::string> env,
                             std::vector<int> listen_fds, std::string program)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    pid_ = fork();
    if (pid_ == 0) {
        dup2(fds[1], STDERR_FILENO);
        const int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        setenv("CWHOOK_ADMIN_LISTEN", "127.0.0.1:0", 1);
        for (const auto& [k, v] : env) {
            setenv(k.c_str(), v.c_str(), 1);
        }
        if (!listen_fds.empty()) {
            // Move the sockets out of the way first, then into place from fd 3 on.
            std::vector<int> moved;
            for (const int fd : listen_fds) {
                moved.push_back(fcntl(fd, F_DUPFD_CLOEXEC, 100));
            }
            for (std::size_t i = 0; i < moved.size(); ++i) {
                dup2(moved[i], static_cast<int>(3 + i));  // dup2 clears close-on-exec
            }
            setenv("LISTEN_FDS", std::to_string(moved.size()).c_str(), 1);
            setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        }
        std::vector<char*> argv;
        std::string bin = program.empty() ? std::string(CWHOOK_BINARY) : program;
        argv.push_back(bin.data());
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    close(fds[1]);
    err_fd_ = fds[0];
}

child_process::~child_process()
{
    if (!status_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        wait(std::chrono::seconds(10));
    }
    if (err_fd_ >= 0) {
        close(err_fd_);
    }
}

void child_process::pump(std::chrono::milliseconds timeout)
{
    pollfd p{err_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
        char buf[4096];
        const auto n = read(err_fd_, buf, sizeof buf);
        if (n > 0) {
            captured_.append(buf, static_cast<std::size_t>(n));
        } else {
            // EOF: the child closed its end (exited).
            p.fd = -1;
            std::this_thread::yield();
        }
    }
}

std::string child_process::wait_for_line(std::string_view needle, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (auto nl = captured_.find('\n', scanned_); nl != std::string::npos; nl = captured_.find('\n', scanned_)) {
            std::string line = captured_.substr(scanned_, nl - scanned_);
            scanned_ = nl + 1;
            if (line.find(needle) != std::string::npos) {
                return line;
            }
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return {};
        }
        const auto before = captured_.size();
        pump(std::min(left, std::chrono::milliseconds(1000)));
        if (captured_.size() == before) {
            int st = 0;
            if (!status_ && waitpid(pid_, &st, WNOHANG) == pid_) {
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            if (status_) {
                // Drain what is left, then give up.
                pump(std::chrono::milliseconds(0));
                if (captured_.size() == before) {
                    return {};
                }
            }
        }
    }
}

std::uint16_t child_process::wait_for_http_port()
{
    const auto line = wait_for_line("listening (http)");
    const auto pos = line.rfind(':');
    if (pos == std::string::npos) {
        ADD_FAILURE() << "daemon did not start:\n" << captured_;
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(line.substr(pos + 1)));
}

void child_process::signal(int sig) { ::kill(pid_, sig); }

int child_process::wait(std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
        int st = 0;
        const auto r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return -1;
        }
        // Keep the pipe drained so the child never blocks on a full stderr; the poll
        // doubles as the wait between checks.
        pump(std::chrono::milliseconds(20));
    }
    pump(std::chrono::milliseconds(0));
    return *status_;
}

std::string child_process::output()
{
    pump(std::chrono::milliseconds(0));
    return captured_;
}

instance::instance(std::string config_file, std::map<std::string, std::string> env)
    : config_file_(std::move(config_file)), env_(std::move(env))
{
    env_["CWHOOK_ADMIN_TOKEN"] = std::string(admin_token);
}

instance::~instance()
{
    stop_draining();
}

void instance::start(std::uint16_t port)
{
    stop_draining();
    auto env = env_;
    if (port != 0) {
        env["CWHOOK_SERVER_LISTEN"] = fmt::format("127.0.0.1:{}", port);
    }
    process_ = std::make_unique<child_process>(std::vector<std::string>{"serve", "--config", config_file_}, env);
    port_ = process_->wait_for_http_port();
    const auto line = process_->wait_for_line("admin listening (http)");
    const auto at = line.find("port=");
    admin_port_ = at == std::string::npos ? 0 : static_cast<std::uint16_t>(std::stoi(line.substr(at + 5)));
    if (port_ == 0 || admin_port_ == 0) {
        ADD_FAILURE() << "cwhook did not start:\n" << process_->output();
        return;
    }
    draining_ = true;
    drain_ = std::thread([this] {
        while (draining_) {
            std::lock_guard lock(mutex_);
            if (process_->wait(std::chrono::milliseconds(0)) != -1) {
                return; // exited
            }
            (void)process_->wait_for_line("\x01 no such line", std::chrono::milliseconds(20));
        }
    });
}

int instance::kill9()
{
    stop_draining();
    process_->signal(SIGKILL);
    return process_->wait();
}

void instance::signal(int sig)
{
    std::lock_guard lock(mutex_);
    process_->signal(sig);
}

tcp::endpoint instance::endpoint() const
{
    return {net::ip::make_address("127.0.0.1"), port_};
}

long long instance::metric(std::string_view sample) const
{
    http_call call;
    call.method = "GET";
    call.target = "/metrics";
    call.headers.emplace_back("Authorization", fmt::format("Bearer {}", admin_token));
    const auto r = send({net::ip::make_address("127.0.0.1"), admin_port_}, call);
    const auto at = r.body.find(fmt::format("\n{} ", sample));
    return r.status != 200 || at == std::string::npos ? -1 : std::stoll(r.body.substr(at + sample.size() + 2));
}

int instance::readyz() const
{
    http_call call;
    call.method = "GET";
    call.target = "/readyz";
    return send(endpoint(), call, {}, std::chrono::seconds(5)).status;
}

std::string instance::output()
{
    std::lock_guard lock(mutex_);
    return process_ ? process_->output() : std::string();
}

void instance::stop_draining()
{
    draining_ = false;
    if (drain_.joinable()) {
        drain_.join();
    }
}

command_result run_cwhook(const std::vector<std::string>& args, const std::string& stdin_file,
                          std::chrono::milliseconds timeout)
{
    int out_pipe[2];
    int err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    const int pid = fork();
    if (pid == 0) {
        const int in = open(stdin_file.empty() ? "/dev/null" : stdin_file.c_str(), O_RDONLY);
        dup2(in, STDIN_FILENO);
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        setenv("CWHOOK_ADMIN_LISTEN", "127.0.0.1:0", 1);
        std::vector<char*> argv;
        std::string bin = CWHOOK_BINARY;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    command_result r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    while (open_fds > 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        if (poll(fds, 2, static_cast<int>(left.count())) <= 0) {
            continue;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            char buf[65536];
            const auto n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds) {
        if (f.fd >= 0) {
            close(f.fd);
        }
    }
    int st = 0;
    waitpid(pid, &st, 0);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

// ---------------------------------------------------------------------------------------
namespace {
std::mutex g_sleeps_mutex;
std::vector<std::chrono::milliseconds> g_sleeps;
} // namespace

net::awaitable<void> record_sleep(std::chrono::milliseconds d)
{
    {
        std::lock_guard lock(g_sleeps_mutex);
        g_sleeps.push_back(d);
    }
    co_return;
}

std::vector<std::chrono::milliseconds> recorded_sleeps()
{
    std::lock_guard lock(g_sleeps_mutex);
    return g_sleeps;
}

void clear_recorded_sleeps()
{
    std::lock_guard lock(g_sleeps_mutex);
    g_sleeps.clear();
}

} // namespace cwhook::test

namespace cwhook::test {

nginx_child::nginx_child(const std::filesystem::path& root,
                         const std::function<std::string(std::uint16_t port)>& servers, const std::string& error_log,
                         int worker_connections)
{
    fd_ = listening_socket(port_, true); // non-blocking, as nginx's own
    std::filesystem::create_directories(root);
    const auto conf = (root / "nginx.conf").string();
    write_file(conf, fmt::format(R"(daemon off;
master_process on;  # a worker accepts on the inherited socket
worker_processes 1;
pid {root}/nginx.pid;
error_log {error_log} notice;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
{servers}
}}
)",
                                 fmt::arg("root", root.string()), fmt::arg("error_log", error_log),
                                 fmt::arg("connections", worker_connections), fmt::arg("servers", servers(port_))));
    process_ = std::make_unique<child_process>(
        std::vector<std::string>{"-p", root.string(), "-c", conf, "-e", error_log},
        std::map<std::string, std::string>{{"NGINX", "3;"}}, std::vector<int>{fd_}, binary);
}

nginx_child::~nginx_child()
{
    process_->signal(SIGTERM);
    process_->wait();
    process_.reset();
    ::close(fd_);
}

} // namespace cwhook::test
