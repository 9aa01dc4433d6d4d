// Test support: temp dirs, generated certificates, a blocking HTTP(S) client, a fake
// signing-key server over real HTTPS, the receiver in-process, and the cwhook binary as a
// child process. Everything binds 127.0.0.1 port 0.
#pragma once

#include "callback/app.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cwhook::test {

// A client::retry_policy::sleep that records the delay asked for and returns at once, so
// retry tests check the waits without waiting. Process-wide; clear it in SetUp.
boost::asio::awaitable<void> record_sleep(std::chrono::milliseconds d);
std::vector<std::chrono::milliseconds> recorded_sleeps();
void clear_recorded_sleeps();

std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view content);
std::string fixture(std::string_view name);

// A self-signed certificate for 127.0.0.1 and localhost, usable as its own CA (ca_file).
struct test_cert {
    std::string cert;
    std::string key;
};
test_cert make_cert(const temp_dir& dir, std::string_view stem = "server",
                    std::vector<std::string> names = {"127.0.0.1", "localhost"});

struct http_result {
    int status = 0; // 0: connection failed or closed without an answer
    std::string body;
    std::map<std::string, std::string> headers; // lower-case names
    std::string error;
};

struct http_call {
    std::string method = "POST";
    std::string target = "/callbacks";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// One request on a fresh connection. ca_file non-empty: HTTPS verified against it.
http_result send(const boost::asio::ip::tcp::endpoint& ep, const http_call& call, const std::string& ca_file = {},
                 std::chrono::milliseconds timeout = std::chrono::seconds(15));

// A signed delivery for `key_url`, with body fields as in a real compact Manage payload.
struct delivery {
    std::string body;
    std::string signature;
};
// company: the CompanyId field ("" leaves it out, as some payloads do).
std::string make_payload(std::string_view key_url, std::int64_t id, std::string_view message_id = {},
                         std::string_view action = "updated", std::string_view type = "ticket",
                         std::string_view company = "Cobalt");
http_call signed_call(std::string body, std::string_view signing_key, std::string target = "/callbacks");

// HTTPS key server: GET <any path> -> {"signing_key":"<key for that path+query>"}.
class fake_key_server {
public:
    enum class mode { normal, fail_503, close, slow, redirect, huge, not_json, not_found };

    explicit fake_key_server(const test_cert& cert);
    ~fake_key_server();

    std::uint16_t port() const { return port_; }
    // Manage's key_url shape for this server: /v2025_1//system/callbackkey/index.rails?companyName=C&id=ID.
    std::string url(std::string_view id = "e17e6674-42f6-4105-9cff-4cd6cb4e62e8",
                    std::string_view company = "Cobalt") const;
    std::string host_entry() const; // "127.0.0.1:<port>" for verify.allowed_key_hosts

    void set_key(std::string key);
    std::string key() const;
    void set_mode(mode m);
    void set_delay(std::chrono::milliseconds d); // added before every answer
    // hold(): every request from now on is counted, then waits unanswered until release()
    // (which answers the waiting ones and stops holding). Tests order events on a fetch
    // having started, instead of a delay chosen to outlast something else.
    void hold();
    void release();
    int fetches() const { return fetches_.load(); }
    int parked() const; // requests held right now, waiting for release()
    // How many times the key of each key_url id (its id= parameter) was handed out.
    std::map<std::string, int> keys_served() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
    std::atomic<int> fetches_{0};
};

// The receiver in-process on 127.0.0.1:0 with a temp database.
struct app_options {
    std::string db;
    std::vector<std::string> allowed_key_hosts;
    // The company of fake_key_server::url() and make_payload(), as a key_url and payload carry it.
    std::vector<std::string> companies{"Cobalt"};
    std::string ca_file;
    callback::verify_mode mode = callback::verify_mode::enforce;
    std::function<void(callback::app_settings&)> tweak;
};

// The common set-up of an in-process receiver test: a temp dir, a certificate, an HTTPS key
// server trusted through it, and options for a receiver that allows that key server. Test
// fixtures derive from ::testing::Test and this.
struct receiver_env {
    temp_dir dir;
    test_cert cert = make_cert(dir);
    fake_key_server keys{cert};
    std::string db = dir.file("var/cwhook.db");

    app_options options(std::function<void(callback::app_settings&)> tweak = {}) const
    {
        app_options o;
        o.db = db;
        o.allowed_key_hosts = {keys.host_entry()};
        o.ca_file = cert.cert;
        o.tweak = std::move(tweak);
        return o;
    }
};

class running_app {
public:
    explicit running_app(const app_options& o);
    ~running_app();
    boost::asio::ip::tcp::endpoint http() const;
    boost::asio::ip::tcp::endpoint https() const;
    callback::app& get() { return *app_; }
    std::uint64_t counter(std::string_view name, std::string_view labels = {}) const;
    void stop();

private:
    std::unique_ptr<callback::app> app_;
};

// Reads the database with a separate connection (as an operator would).
struct db_row {
    std::int64_t id = 0;
    std::string status;
    std::string verify_reason;
    std::int64_t deliveries = 0;
    std::string body;
    std::string client_addr;
    std::string headers;
    std::string message_id;
    std::string type;
    std::string action;
    std::int64_t entity_id = 0;
};
// The smallest daemon configuration: 127.0.0.1:0, company Cobalt, one allowlisted key host
// with its CA bundle, the database at db.
std::string config_for(const std::string& db, const std::string& key_host, const std::string& ca);

std::vector<db_row> query_events(const std::string& db, const std::string& where = "1=1");
std::int64_t count_rows(const std::string& db, const std::string& table, const std::string& where = "1=1");
std::string integrity_check(const std::string& db);

// The cwhook binary as a child process, stderr captured; ready once its listeners log.
// A TCP socket listening on 127.0.0.1:0 (as a service manager or a proxy's parent would make
// it to hand over); *port is the port it got. Close-on-exec; the caller closes it.
int listening_socket(std::uint16_t& port, bool nonblocking = false);

class child_process {
public:
    // listen_fds: sockets handed to the child as fds 3, 4, ... with LISTEN_FDS / LISTEN_PID set
    // (systemd socket activation); name them with LISTEN_FDNAMES in `env`.
    // program: another executable than cwhook (e.g. "/usr/sbin/nginx").
    child_process(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                  std::vector<int> listen_fds = {}, std::string program = {});
    ~child_process();

    // CWHOOK_ADMIN_LISTEN defaults to 127.0.0.1:0 here (tests run in parallel; the built-in
    // 127.0.0.1:9090 would collide) unless `env` sets it.
    // Waits for a log line containing `needle` (stderr); returns the line, or "" on timeout/exit.
    std::string wait_for_line(std::string_view needle, std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // The port of the first "listening (http)" line.
    std::uint16_t wait_for_http_port();
    void signal(int sig);
    // Waits for exit; returns the exit code (128+signal when killed), -1 on timeout.
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    int pid() const { return pid_; }
    std::string output();

private:
    void pump(std::chrono::milliseconds timeout);
    int pid_ = -1;
    int err_fd_ = -1;
    std::string captured_;
    std::size_t scanned_ = 0;
    std::optional<int> status_;
};

// One `cwhook serve` process on a configuration file, as a service manager runs it: started,
// and started again after kill9() (the same file, so the same database). While it runs a
// thread keeps its stderr drained: every request logs a line, and a full pipe would stall the
// daemon in the middle of a load. Its admin API takes `admin_token` (set as CWHOOK_ADMIN_TOKEN).
class instance {
public:
    static constexpr std::string_view admin_token = "instance-test-token";

    explicit instance(std::string config_file, std::map<std::string, std::string> env = {});
    ~instance();
    instance(const instance&) = delete;
    instance& operator=(const instance&) = delete;

    // Starts the daemon with its main listener on `port` (0: any free one; a restart passes
    // the port a load balancer knows) and returns once both listeners are up.
    void start(std::uint16_t port = 0);
    // SIGKILL, as a crash or an OOM kill; returns the exit status once the process is gone.
    int kill9();
    void signal(int sig);

    std::uint16_t port() const { return port_; }
    boost::asio::ip::tcp::endpoint endpoint() const;
    // One sample of its /metrics as rendered, e.g. cwhook_events_stored_total or
    // cwhook_reloads_total{result="applied"}; -1 when absent or unreachable.
    long long metric(std::string_view sample) const;
    int readyz() const;
    std::string output();

private:
    void stop_draining();

    std::string config_file_;
    std::map<std::string, std::string> env_;
    std::mutex mutex_; // process_ while the drain thread runs
    std::unique_ptr<child_process> process_;
    std::thread drain_;
    std::atomic<bool> draining_{false};
    std::uint16_t port_ = 0;
    std::uint16_t admin_port_ = 0;
};

// Debian's nginx in the foreground (master + one worker), everything under `root`. It inherits
// its listening socket (bound here to 127.0.0.1:0) through the NGINX variable, nginx's own
// hand-over mechanism, so there is no port race and no wait: connections queue until it
// accepts. `servers(port)` gives what goes in the http block after the temp paths every
// instance needs ("upstream ...", "server { listen 127.0.0.1:<port> ...; }").
class nginx_child {
public:
    static constexpr const char* binary = "/usr/sbin/nginx";

    // error_log: a file, or "stderr" (captured like the daemon's).
    nginx_child(const std::filesystem::path& root, const std::function<std::string(std::uint16_t port)>& servers,
                const std::string& error_log = "stderr", int worker_connections = 64);
    ~nginx_child(); // SIGTERM: the master stops its worker too
    nginx_child(const nginx_child&) = delete;
    nginx_child& operator=(const nginx_child&) = delete;

    std::uint16_t port() const { return port_; }
    child_process& process() { return *process_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> process_;
};

// The cwhook binary run to completion with stdout and stderr captured apart (stdout byte for
// byte) and stdin read from a file ("" = /dev/null). Killed after `timeout`.
struct command_result {
    int exit_code = -1; // 128+signal when killed
    std::string out;
    std::string err;
};
command_result run_cwhook(const std::vector<std::string>& args, const std::string& stdin_file = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

} // namespace cwhook::test
