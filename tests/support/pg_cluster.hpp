// A throwaway PostgreSQL cluster for tests: initdb into a fresh temp directory, a server that
// listens only on a Unix socket in that directory, and the server's own programs (pg_ctl,
// createdb, dropdb, psql) run as child processes: no libpq, nothing mocked. When the tests run
// as root the server runs as `nobody` (PostgreSQL refuses root).
// pg_cluster::shared() is the one cluster of a ctest run (the Postgres.ClusterStart fixture,
// see tests/CMakeLists.txt) or, in a test binary run by hand, of that process.
// Thread-safety: the const members may be called from any thread; start, stop, restart and
// kill9 from one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace cwhook::test {

// At namespace scope: a nested struct with member initializers cannot be a default argument
// inside its own class.
struct pg_cluster_options {
    // The server's fsync on. Off (the default) is faster and still survives a server crash
    // (kill9): only an operating-system crash could lose commits.
    bool durable = false;
    // Where initdb, pg_ctl, postgres, createdb, dropdb, psql and pg_isready are.
    std::string bin_dir = "/usr/lib/postgresql/15/bin";
};

class pg_cluster {
public:
    using options = pg_cluster_options;

    // initdb (superuser "postgres", trust authentication, UTF8, locale C.UTF-8) and pg_ctl start
    // -w on a port number nothing else uses (it names the socket file; there is no TCP listener).
    // Throws std::runtime_error with the failing command and its output.
    static std::unique_ptr<pg_cluster> start(options o = {});

    // The cluster every test may share: the one described in the state directory named by the
    // environment variable CWHOOK_TEST_PG when it accepts connections (never stopped here), or
    // else one of this process's own, started on first use and stopped at exit. stop, restart
    // and kill9 on it throw std::logic_error: other tests use it at the same time.
    static pg_cluster& shared();

    // The ctest fixture (cwhook_test_pg). start_fixture stops what an interrupted run left in
    // state_dir (and throws if the run that left it is still going), starts a cluster,
    // describes it there for shared(), leaves it running and returns its conninfo.
    // stop_fixture stops it and every private cluster a crashed test left behind, removing
    // their directories; nothing running is not an error.
    static std::string start_fixture(const std::string& state_dir);
    static void stop_fixture(const std::string& state_dir);

    // Stops the server (immediate mode) and removes its directory, also when a test failed.
    ~pg_cluster();
    pg_cluster(const pg_cluster&) = delete;
    pg_cluster& operator=(const pg_cluster&) = delete;

    // immediate: no shutdown checkpoint, crash recovery on the next start; else a fast shutdown.
    void stop(bool immediate = true);
    // Starts the server again on the same directory and port (stopping it first, fast, if it
    // runs); returns once it accepts connections, after any crash recovery.
    void restart();
    // SIGKILL to the postmaster, as in a crash; returns once it and its children are gone.
    void kill9();

    int port() const { return port_; }
    std::string socket_dir() const;
    std::string data_dir() const;

    // libpq keyword=value connection string:
    // "host=<socket_dir> port=<port> user=postgres dbname=<db>" (values quoted where needed).
    std::string conninfo(std::string_view db = "postgres") const;
    // The same as a URL, the socket directory percent-encoded as the host:
    // "postgresql://postgres@%2Ftmp%2Fcwhook-pg-ab12Cd:54321/<db>".
    std::string url(std::string_view db = "postgres") const;

    // Creates a database named <prefix>_<unique suffix> and returns the name. The prefix is
    // lower-case letters, digits and '_'.
    std::string create_database(std::string_view prefix = "t") const;
    // dropdb --force: its connections are closed first.
    void drop_database(std::string_view name) const;
    // Runs `sql` with psql -X -q -v ON_ERROR_STOP=1 -At -c against `db` and returns what it
    // printed (unaligned, tuples only, no command tags) without the final newline. Several
    // statements in `sql` run in one transaction and only the last one's rows are printed.
    // `db` is a database name, or a conninfo or URL that psql then takes as it is.
    std::string psql(std::string_view db, std::string_view sql) const;

private:
    pg_cluster(std::string root, int port, options o);
    static std::unique_ptr<pg_cluster> read_description(const std::string& file);
    // run_pid: the ctest run a fixture's cluster belongs to (0: none).
    void write_description(const std::string& file, int run_pid = 0) const;
    void register_private();
    std::string bin(std::string_view program) const;
    std::string server_log() const;
    void start_server();
    bool accepts_connections() const;
    void refuse_if_shared(std::string_view what) const;
    void destroy() noexcept;

    std::string root_; // holds data/, the socket and postgres.log
    int port_ = 0;
    options options_;
    int owner_pid_ = 0; // the process that stops it on destruction; 0: attached, never stopped
    bool running_ = false;
    bool shared_ = false;
    std::string marker_; // its description under CWHOOK_TEST_PG/private/ while it lives
};

// A database of its own for one test: created on construction, dropped (dropdb --force) on
// destruction. Not thread-safe: one owner; connect to it from anywhere.
class pg_database {
public:
    explicit pg_database(pg_cluster& cluster = pg_cluster::shared());
    ~pg_database();
    pg_database(const pg_database&) = delete;
    pg_database& operator=(const pg_database&) = delete;

    const std::string& name() const { return name_; }
    std::string conninfo() const { return cluster_.conninfo(name_); }
    std::string url() const { return cluster_.url(name_); }
    pg_cluster& cluster() { return cluster_; }
    // psql against this database (see pg_cluster::psql).
    std::string psql(std::string_view sql) const { return cluster_.psql(name_, sql); }

private:
    pg_cluster& cluster_;
    std::string name_;
};

} // namespace cwhook::test
