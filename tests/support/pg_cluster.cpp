// Design: every PostgreSQL program runs as a child made with fork and execve from an argv
// vector (never a shell line), with stdin /dev/null, stdout and stderr captured, every other
// descriptor closed (a postmaster that inherited a ctest pipe would keep ctest waiting for it)
// and the PG* variables left out of its environment (a developer's PGHOST or PGOPTIONS must not
// change what a test talks to). When this process is root, initdb, pg_ctl and so the server run
// as nobody:nogroup, which own the cluster directory; the clients run as root. The server
// listens only on a Unix socket in that mode-0700 directory, so trust authentication is open to
// its owner and root alone. Waits are for conditions (pg_ctl -w, a pidfd, the attach count of
// the server's shared memory), never for guessed times.
#include "support/pg_cluster.hpp"

#include "support/eventually.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;

namespace cwhook::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* state_env = "CWHOOK_TEST_PG";
constexpr const char* superuser = "postgres";
// pg_ctl -w -t: bounds only a server that never comes up or never goes down.
constexpr const char* pg_ctl_timeout = "120";

class unique_fd {
public:
    explicit unique_fd(int fd = -1) : fd_(fd) {}
    ~unique_fd() { reset(); }
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&&) = delete;
    int get() const { return fd_; }
    void reset()
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = -1;
    }

private:
    int fd_;
};

[[noreturn]] void throw_errno(const std::string& what)
{
    throw std::system_error(errno, std::generic_category(), what);
}

// Who runs initdb, pg_ctl and the server: this process's user, or nobody:nogroup when that is
// root (PostgreSQL refuses to run as root).
struct identity {
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
};

identity server_identity()
{
    // getpwnam and getgrnam are not thread-safe: called once, under the static's guard.
    static const identity id = [] {
        if (::geteuid() != 0) {
            return identity{};
        }
        const passwd* pw = ::getpwnam("nobody"); // NOLINT(concurrency-mt-unsafe)
        if (pw == nullptr) {
            throw std::runtime_error("pg_cluster: running as root, and there is no user `nobody` to run PostgreSQL "
                                     "as (it refuses root)");
        }
        const group* gr = ::getgrnam("nogroup"); // NOLINT(concurrency-mt-unsafe)
        return identity{true, pw->pw_uid, gr != nullptr ? gr->gr_gid : pw->pw_gid};
    }();
    return id;
}

struct child_result {
    int status = 0; // the exit code, or 128 + the signal that ended the child
    std::string out;
    std::string err;
};

std::string command_line(const std::vector<std::string>& argv)
{
    std::string line;
    for (const auto& arg : argv) {
        line += line.empty() ? "" : " ";
        line += arg;
    }
    return line;
}

std::vector<std::string> child_environment()
{
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        if (std::string_view(*e).substr(0, 2) != "PG") {
            env.emplace_back(*e);
        }
    }
    return env;
}

// Between fork and exec only async-signal-safe calls: the parent may have threads.
[[noreturn]] void child_fail(const char* what, const char* arg) noexcept
{
    for (const char* part : {"pg_cluster: ", what, arg, "\n"}) {
        if (::write(2, part, std::strlen(part)) < 0) {
            break;
        }
    }
    ::_exit(127);
}

// Runs argv[0] (an absolute path) to completion. as: the user to run as; cwd: its working
// directory (empty: ours).
child_result run(const std::vector<std::string>& argv, const identity& as = {}, const std::string& cwd = {})
{
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    const auto env = child_environment();
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (const auto& var : env) {
        envp.push_back(const_cast<char*>(var.c_str()));
    }
    envp.push_back(nullptr);

    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        throw_errno("pipe2");
    }
    unique_fd out_read(out[0]);
    unique_fd out_write(out[1]);
    if (::pipe2(err, O_CLOEXEC) != 0) {
        throw_errno("pipe2");
    }
    unique_fd err_read(err[0]);
    unique_fd err_write(err[1]);
    unique_fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null_in.get() < 0) {
        throw_errno("open /dev/null");
    }

    const pid_t pid = ::fork();
    if (pid < 0) {
        throw_errno("fork");
    }
    if (pid == 0) {
        if (::dup2(null_in.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 || ::dup2(err_write.get(), 2) < 0) {
            ::_exit(127);
        }
        ::close_range(3, ~0U, 0);
        if (as.switch_user && (::setgroups(0, nullptr) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0)) {
            child_fail("cannot switch to the server's user to run ", args[0]);
        }
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
            child_fail("cannot change to directory ", cwd.c_str());
        }
        ::execve(args[0], args.data(), envp.data());
        child_fail("cannot execute ", args[0]);
    }
    out_write.reset();
    err_write.reset();
    null_in.reset();

    child_result result;
    pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_pipes = 2;
    char buffer[4096];
    while (open_pipes > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                fds[i].fd = -1;
                --open_pipes;
            }
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw_errno("waitpid " + command_line(argv));
        }
    }
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

std::string tail(const std::string& file, std::size_t max)
{
    std::ifstream in(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > max ? text.substr(text.size() - max) : text;
}

// Runs argv and returns its stdout; a failure throws with the command, its output and, when
// given, the end of the server log.
std::string run_checked(const std::vector<std::string>& argv, const identity& as = {}, const std::string& cwd = {},
                        const std::string& server_log = {})
{
    auto result = run(argv, as, cwd);
    if (result.status != 0) {
        std::string message = command_line(argv) + "\nfailed with exit status " + std::to_string(result.status);
        if (!result.err.empty()) {
            message += ":\n" + result.err;
        }
        if (!result.out.empty()) {
            message += "\n" + result.out;
        }
        if (!server_log.empty()) {
            message += "\n--- end of " + server_log + " ---\n" + tail(server_log, 4000);
        }
        throw std::runtime_error(message);
    }
    return std::move(result.out);
}

// A port number that no TCP listener here uses. It only names the socket file (the server has
// no TCP listener and its own socket directory), so another process taking it meanwhile is
// harmless.
int unused_port()
{
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.get() < 0) {
        throw_errno("socket");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw_errno("bind 127.0.0.1:0");
    }
    return ntohs(addr.sin_port);
}

// A value in a libpq keyword=value string: single-quoted, with \ escapes, where it has to be.
std::string conninfo_value(std::string_view value)
{
    if (!value.empty() && value.find_first_of(" \t\r\n'\\") == std::string_view::npos) {
        return std::string(value);
    }
    std::string quoted = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') {
            quoted += '\\';
        }
        quoted += c;
    }
    return quoted + "'";
}

std::string percent_encode(std::string_view text)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string encoded;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
            encoded += c;
        } else {
            encoded += '%';
            encoded += hex[u >> 4];
            encoded += hex[u & 0xF];
        }
    }
    return encoded;
}

// A string setting in postgresql.conf: single quotes, a quote doubled.
std::string conf_string(std::string_view value)
{
    std::string quoted = "'";
    for (const char c : value) {
        quoted += c;
        if (c == '\'') {
            quoted += '\'';
        }
    }
    return quoted + "'";
}

// From the server's lock file: the postmaster's pid (line 1) and the id of the System V
// shared memory segment every process of the cluster attaches to (line 7: key, id).
struct lock_file {
    pid_t pid = 0;
    int shm_id = -1;
};

lock_file read_lock_file(const std::string& data_dir)
{
    std::ifstream in(data_dir + "/postmaster.pid");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    lock_file lock;
    if (!lines.empty()) {
        lock.pid = static_cast<pid_t>(std::atoi(lines[0].c_str()));
    }
    if (lines.size() >= 7) {
        unsigned long key = 0;
        std::istringstream(lines[6]) >> key >> lock.shm_id;
    }
    if (lock.pid <= 0) {
        throw std::runtime_error("pg_cluster: no server runs in " + data_dir + " (no postmaster.pid)");
    }
    return lock;
}

bool shm_unattached(int shm_id)
{
    shmid_ds ds{};
    if (::shmctl(shm_id, IPC_STAT, &ds) != 0) {
        return errno == EINVAL || errno == EIDRM; // already removed
    }
    return ds.shm_nattch == 0;
}

// The syscall itself: glibc 2.36's <sys/pidfd.h> declares pidfd_open without extern "C".
int pidfd_open(pid_t pid)
{
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

bool is_zombie(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto end_of_name = stat.rfind(')');
    return end_of_name != std::string::npos && stat.compare(end_of_name, 3, ") Z") == 0;
}

bool process_alive(pid_t pid)
{
    return ::kill(pid, 0) == 0 && !is_zombie(pid);
}

// A cluster description (write_description): key=value lines.
std::map<std::string, std::string> description_fields(const std::string& file)
{
    std::ifstream in(file);
    std::map<std::string, std::string> fields;
    for (std::string line; std::getline(in, line);) {
        if (const auto eq = line.find('='); eq != std::string::npos) {
            fields[line.substr(0, eq)] = line.substr(eq + 1);
        }
    }
    return fields;
}

} // namespace

pg_cluster::pg_cluster(std::string root, int port, options o)
    : root_(std::move(root)), port_(port), options_(std::move(o))
{
}

pg_cluster::~pg_cluster()
{
    destroy();
}

std::string pg_cluster::socket_dir() const
{
    return root_;
}

std::string pg_cluster::data_dir() const
{
    return root_ + "/data";
}

std::unique_ptr<pg_cluster> pg_cluster::start(options o)
{
    std::string root = (fs::temp_directory_path() / "cwhook-pg-XXXXXX").string();
    if (::mkdtemp(root.data()) == nullptr) {
        throw_errno("mkdtemp " + root);
    }
    std::unique_ptr<pg_cluster> cluster(new pg_cluster(root, unused_port(), std::move(o)));
    cluster->owner_pid_ = ::getpid(); // from here on its destructor removes the directory
    cluster->register_private();

    const identity as = server_identity();
    if (as.switch_user && ::chown(root.c_str(), as.uid, as.gid) != 0) {
        throw_errno("chown " + root);
    }
    // --no-sync even when durable: syncing initdb's files guards only against an OS crash right
    // after initdb, which no test can stage, and costs seconds on a busy disk.
    run_checked({cluster->bin("initdb"), "-D", cluster->data_dir(), "-U", superuser, "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-instructions", "--no-sync"},
                as, root);

    // Appended, so these settings win over initdb's (the last one in the file counts).
    std::ofstream conf(cluster->data_dir() + "/postgresql.conf", std::ios::app);
    conf << "\n# tests/support/pg_cluster.cpp: a Unix socket in the cluster's own directory, no TCP\n"
         << "listen_addresses = ''\n"
         << "port = " << cluster->port_ << "\n"
         << "unix_socket_directories = " << conf_string(root) << "\n"
         << "fsync = " << (cluster->options_.durable ? "on" : "off") << "\n";
    conf.close();
    if (!conf) {
        throw std::runtime_error("pg_cluster: cannot append to " + cluster->data_dir() + "/postgresql.conf");
    }
    cluster->start_server();
    return cluster;
}

pg_cluster& pg_cluster::shared()
{
    static const std::unique_ptr<pg_cluster> cluster = [] {
        std::unique_ptr<pg_cluster> found;
        if (const char* state = std::getenv(state_env); state != nullptr && *state != '\0') {
            found = read_description(std::string(state) + "/cluster");
            if (found != nullptr && !found->accepts_connections()) {
                found.reset();
            }
            if (found == nullptr) {
                std::cerr << "pg_cluster: " << state_env << "=" << state
                          << " describes no running cluster; starting one for this process\n";
            }
        }
        if (found == nullptr) {
            found = start();
        }
        found->shared_ = true;
        return found;
    }();
    return *cluster;
}

std::string pg_cluster::start_fixture(const std::string& state_dir)
{
    // The process that runs this one is the ctest run. While the run that wrote the description
    // is alive, its cluster is not stale: stopping it would fail that run's tests.
    const auto file = state_dir + "/cluster";
    if (const int run = std::atoi(description_fields(file)["run_pid"].c_str()); run > 0 && process_alive(run)) {
        throw std::runtime_error("the test run that started the cluster in " + state_dir + " (pid " +
                                 std::to_string(run) +
                                 ") is still going; wait for it to end, or use a build directory of your own");
    }
    stop_fixture(state_dir);
    fs::create_directories(state_dir);
    auto cluster = start();
    cluster->write_description(file, ::getppid());
    // Left running for the tests; stop_fixture stops it.
    cluster->owner_pid_ = 0;
    if (!cluster->marker_.empty()) {
        std::error_code ec;
        fs::remove(cluster->marker_, ec);
    }
    return cluster->conninfo();
}

void pg_cluster::stop_fixture(const std::string& state_dir)
{
    const fs::path dir(state_dir);
    std::vector<fs::path> descriptions;
    std::error_code ec;
    if (fs::exists(dir / "cluster", ec)) {
        descriptions.push_back(dir / "cluster");
    }
    for (const auto& entry : fs::directory_iterator(dir / "private", ec)) {
        descriptions.push_back(entry.path());
    }
    for (const auto& file : descriptions) {
        if (auto cluster = read_description(file.string())) {
            std::cerr << "pg_cluster: stopping the cluster in " << cluster->root_ << " (" << file.string() << ")\n";
            // Taken over: its destructor stops it and removes its directory.
            cluster->owner_pid_ = ::getpid();
        }
        fs::remove(file, ec);
    }
    fs::remove(dir / "private", ec); // only if empty
}

void pg_cluster::stop(bool immediate)
{
    refuse_if_shared("stop");
    if (!running_) {
        return;
    }
    run_checked({bin("pg_ctl"), "stop", "-w", "-t", pg_ctl_timeout, "-s", "-D", data_dir(), "-m",
                 immediate ? "immediate" : "fast"},
                server_identity(), root_, server_log());
    running_ = false;
}

void pg_cluster::restart()
{
    refuse_if_shared("restart");
    if (running_) {
        stop(false);
    }
    start_server();
}

void pg_cluster::kill9()
{
    refuse_if_shared("kill9");
    const auto lock = read_lock_file(data_dir());
    // A pidfd names the postmaster even if its number is reused, and turns readable when it dies.
    unique_fd postmaster(pidfd_open(lock.pid));
    if (postmaster.get() < 0) {
        throw_errno("pidfd_open " + std::to_string(lock.pid));
    }
    if (::kill(lock.pid, SIGKILL) != 0) {
        throw_errno("kill -9 " + std::to_string(lock.pid));
    }
    pollfd dead{postmaster.get(), POLLIN, 0};
    int ready = 0;
    while ((ready = ::poll(&dead, 1, 60'000)) < 0 && errno == EINTR) {
    }
    if (ready <= 0) {
        throw std::runtime_error("pg_cluster: postmaster " + std::to_string(lock.pid) + " still alive after SIGKILL");
    }
    // Its children notice its death and exit on their own. The next postmaster refuses to start
    // while any of them is still attached to the old shared memory, so wait for the last one.
    if (lock.shm_id >= 0 && !eventually([&] { return shm_unattached(lock.shm_id); })) {
        throw std::runtime_error("pg_cluster: processes of the killed server still run in " + data_dir());
    }
    // A postmaster not yet reaped (its parent is init, which may take its time) still answers
    // kill(pid, 0), and the next start would take it for a running server holding the data
    // directory and socket lock files. It is dead, so they go.
    if (is_zombie(lock.pid)) {
        std::error_code ec;
        fs::remove(data_dir() + "/postmaster.pid", ec);
        fs::remove(socket_dir() + "/.s.PGSQL." + std::to_string(port_) + ".lock", ec);
    }
    running_ = false;
}

std::string pg_cluster::conninfo(std::string_view db) const
{
    return "host=" + conninfo_value(socket_dir()) + " port=" + std::to_string(port_) + " user=" + superuser +
           " dbname=" + conninfo_value(db);
}

std::string pg_cluster::url(std::string_view db) const
{
    return std::string("postgresql://") + superuser + "@" + percent_encode(socket_dir()) + ":" + std::to_string(port_) +
           "/" + percent_encode(db);
}

std::string pg_cluster::create_database(std::string_view prefix) const
{
    if (prefix.empty() || prefix.size() > 30 ||
        prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string_view::npos) {
        throw std::invalid_argument("pg_cluster: database prefix '" + std::string(prefix) +
                                    "' is not 1-30 of a-z, 0-9 and _");
    }
    static std::atomic<unsigned> counter{0};
    thread_local std::mt19937 random(std::random_device{}());
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random()));
    // The pid and count say which process made it; the random part keeps a name that a crashed
    // earlier run left behind (same pid, same count) from colliding.
    std::string name =
        std::string(prefix) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" + suffix;
    run_checked({bin("createdb"), "-h", socket_dir(), "-p", std::to_string(port_), "-U", superuser, name});
    return name;
}

void pg_cluster::drop_database(std::string_view name) const
{
    run_checked({bin("dropdb"), "--force", "-h", socket_dir(), "-p", std::to_string(port_), "-U", superuser,
                 std::string(name)});
}

std::string pg_cluster::psql(std::string_view db, std::string_view sql) const
{
    std::vector<std::string> argv = {bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t"};
    const bool connection_string =
        db.find('=') != std::string_view::npos || db.starts_with("postgresql://") || db.starts_with("postgres://");
    if (!connection_string) {
        argv.insert(argv.end(), {"-h", socket_dir(), "-p", std::to_string(port_), "-U", superuser});
    }
    argv.insert(argv.end(), {"-d", std::string(db), "-c", std::string(sql)});
    auto out = run_checked(argv);
    if (!out.empty() && out.back() == '\n') {
        out.pop_back();
    }
    return out;
}

std::string pg_cluster::bin(std::string_view program) const
{
    return (fs::path(options_.bin_dir) / program).string();
}

std::string pg_cluster::server_log() const
{
    return root_ + "/postgres.log";
}

void pg_cluster::start_server()
{
    run_checked({bin("pg_ctl"), "start", "-w", "-t", pg_ctl_timeout, "-s", "-D", data_dir(), "-l", server_log()},
                server_identity(), root_, server_log());
    running_ = true;
}

bool pg_cluster::accepts_connections() const
{
    return run({bin("pg_isready"), "-q", "-h", socket_dir(), "-p", std::to_string(port_), "-U", superuser, "-d",
                "postgres"})
               .status == 0;
}

void pg_cluster::refuse_if_shared(std::string_view what) const
{
    if (shared_) {
        throw std::logic_error("pg_cluster::" + std::string(what) +
                               " on the shared cluster, which other tests use: start one of your own");
    }
}

// Under ctest a cluster describes itself in the fixture's state directory while it lives, so
// that Postgres.ClusterStop stops it if the test that started it crashed.
void pg_cluster::register_private()
{
    const char* state = std::getenv(state_env);
    std::error_code ec;
    if (state == nullptr || *state == '\0' || !fs::is_directory(state, ec)) {
        return;
    }
    const auto dir = fs::path(state) / "private";
    fs::create_directories(dir, ec);
    marker_ = (dir / fs::path(root_).filename()).string();
    write_description(marker_);
}

void pg_cluster::write_description(const std::string& file, int run_pid) const
{
    const auto temporary = file + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << "root=" << root_ << "\n"
            << "port=" << port_ << "\n"
            << "durable=" << (options_.durable ? 1 : 0) << "\n"
            << "bin_dir=" << options_.bin_dir << "\n";
        if (run_pid > 0) {
            out << "run_pid=" << run_pid << "\n";
        }
        if (!out.flush()) {
            throw std::runtime_error("pg_cluster: cannot write " + temporary);
        }
    }
    fs::rename(temporary, file);
}

std::unique_ptr<pg_cluster> pg_cluster::read_description(const std::string& file)
{
    auto fields = description_fields(file);
    if (fields["root"].empty() || fields["port"].empty() || fields["bin_dir"].empty()) {
        return nullptr;
    }
    options o;
    o.durable = fields["durable"] == "1";
    o.bin_dir = fields["bin_dir"];
    std::unique_ptr<pg_cluster> cluster(new pg_cluster(fields["root"], std::atoi(fields["port"].c_str()), o));
    cluster->running_ = true; // as far as anyone knows; never stopped unless taken over
    return cluster;
}

void pg_cluster::destroy() noexcept
{
    // Attached clusters are someone else's; a forked child of the owner must not stop them either.
    if (owner_pid_ != ::getpid()) {
        return;
    }
    try {
        std::error_code ec;
        if (running_ && fs::exists(data_dir() + "/postmaster.pid", ec)) {
            const auto result =
                run({bin("pg_ctl"), "stop", "-w", "-t", pg_ctl_timeout, "-s", "-D", data_dir(), "-m", "immediate"},
                    server_identity(), root_);
            if (result.status != 0) {
                std::cerr << "pg_cluster: pg_ctl stop in " << root_ << ": " << result.err;
            }
        }
        fs::remove_all(root_, ec);
        if (!marker_.empty()) {
            fs::remove(marker_, ec);
        }
    } catch (const std::exception& e) {
        std::cerr << "pg_cluster: " << e.what() << "\n";
    }
}

pg_database::pg_database(pg_cluster& cluster) : cluster_(cluster), name_(cluster.create_database()) {}

pg_database::~pg_database()
{
    try {
        cluster_.drop_database(name_);
    } catch (const std::exception& e) {
        std::cerr << "pg_database: " << e.what() << "\n";
    }
}

} // namespace cwhook::test
