#include "support/pg_cluster.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace {

using cwhook::test::pg_cluster;
using cwhook::test::pg_database;
using ::testing::HasSubstr;

int first_line_number(const std::string& file)
{
    std::ifstream in(file);
    int n = 0;
    in >> n;
    return n;
}

// The real user id of a process, from /proc/<pid>/status ("Uid: real effective saved fs").
int process_uid(int pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("Uid:", 0) == 0) {
            return std::stoi(line.substr(4));
        }
    }
    return -1;
}

TEST(PgCluster, SharedClusterAnswersSelectOne)
{
    EXPECT_EQ(pg_cluster::shared().psql("postgres", "SELECT 1"), "1");
}

TEST(PgCluster, ServerDoesNotRunAsRoot)
{
    auto& cluster = pg_cluster::shared();
    const auto data_dir = cluster.psql("postgres", "SELECT current_setting('data_directory')");
    const int postmaster = first_line_number(data_dir + "/postmaster.pid");
    ASSERT_GT(postmaster, 0);

    const int uid = process_uid(postmaster);
    ASSERT_GE(uid, 0);
    EXPECT_NE(uid, 0);
}

TEST(PgCluster, DatabasesAreDistinctAndDroppedAfter)
{
    auto& cluster = pg_cluster::shared();
    std::string names;
    {
        pg_database first;
        pg_database second;
        ASSERT_NE(first.name(), second.name());
        names = "'" + first.name() + "', '" + second.name() + "'";
        EXPECT_EQ(cluster.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname IN (" + names + ")"), "2");

        first.psql("CREATE TABLE only_here (v int); INSERT INTO only_here VALUES (1)");
        EXPECT_EQ(first.psql("SELECT count(*) FROM only_here"), "1");
        EXPECT_EQ(second.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"), "0");
    }
    EXPECT_EQ(cluster.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname IN (" + names + ")"), "0");
}

TEST(PgCluster, ConninfoAndUrlReachTheDatabase)
{
    pg_database db;
    EXPECT_EQ(db.conninfo(), "host=" + db.cluster().socket_dir() + " port=" + std::to_string(db.cluster().port()) +
                                 " user=postgres dbname=" + db.name());
    EXPECT_THAT(db.url(), ::testing::StartsWith("postgresql://postgres@%2F"));

    // psql takes them as they are (libpq parses them), without -h, -p or -U.
    EXPECT_EQ(db.cluster().psql(db.conninfo(), "SELECT current_database()"), db.name());
    EXPECT_EQ(db.cluster().psql(db.url(), "SELECT current_database() || ' ' || current_user"), db.name() + " postgres");
}

TEST(PgCluster, PsqlErrorThrowsWithTheServersMessage)
{
    pg_database db;
    try {
        db.psql("SELECT * FROM no_such_table");
        FAIL() << "psql did not fail";
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("psql"));
        EXPECT_THAT(e.what(), HasSubstr("relation \"no_such_table\" does not exist"));
    }
}

TEST(PgCluster, SharedClusterCannotBeStopped)
{
    auto& cluster = pg_cluster::shared();
    EXPECT_THROW(cluster.stop(), std::logic_error);
    EXPECT_THROW(cluster.restart(), std::logic_error);
    EXPECT_THROW(cluster.kill9(), std::logic_error);
    EXPECT_EQ(cluster.psql("postgres", "SELECT 1"), "1");
}

TEST(PgCluster, StopAndRestartKeepCommittedRows)
{
    auto cluster = pg_cluster::start({.durable = true});
    pg_database db(*cluster);
    db.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before stop')");

    cluster->stop(false);
    EXPECT_THROW(db.psql("SELECT 1"), std::runtime_error);
    cluster->restart();

    EXPECT_EQ(db.psql("SELECT v FROM kept"), "before stop");
}

// Without durable: fsync off loses nothing when only the server dies.
TEST(PgCluster, KilledServerRecoversCommittedRows)
{
    auto cluster = pg_cluster::start();
    pg_database db(*cluster);
    db.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before crash')");

    cluster->kill9();
    EXPECT_THROW(db.psql("SELECT 1"), std::runtime_error);
    cluster->restart();

    EXPECT_EQ(db.psql("SELECT v FROM kept"), "before crash");
}

TEST(PgCluster, DestructionStopsTheServerAndRemovesItsDirectory)
{
    auto cluster = pg_cluster::start();
    const std::filesystem::path root = cluster->socket_dir();
    const int postmaster = first_line_number(cluster->data_dir() + "/postmaster.pid");
    ASSERT_GT(postmaster, 0);
    // Readable once the postmaster has exited (it removes its lock file just before). The
    // syscall: glibc 2.36's <sys/pidfd.h> declares pidfd_open without extern "C".
    const int exited = static_cast<int>(::syscall(SYS_pidfd_open, postmaster, 0));
    ASSERT_GE(exited, 0);

    cluster.reset();

    EXPECT_FALSE(std::filesystem::exists(root));
    pollfd wait_for_exit{exited, POLLIN, 0};
    EXPECT_EQ(::poll(&wait_for_exit, 1, 60'000), 1);
    ::close(exited);
}

} // namespace
