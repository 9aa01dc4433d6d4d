// cwhook_test_pg: the ctest fixture around the PostgreSQL cluster a test run shares
// (Postgres.ClusterStart and Postgres.ClusterStop in tests/CMakeLists.txt).
//   cwhook_test_pg start <state-dir>   start a cluster, describe it in state-dir, leave it running
//   cwhook_test_pg stop <state-dir>    stop it and any cluster a crashed test left, remove them
#include "support/pg_cluster.hpp"

#include <exception>
#include <iostream>
#include <string_view>

int main(int argc, char** argv)
{
    using cwhook::test::pg_cluster;
    const std::string_view command = argc == 3 ? argv[1] : "";
    try {
        if (command == "start") {
            const auto conninfo = pg_cluster::start_fixture(argv[2]);
            std::cout << "postgres: " << conninfo << "\n";
            return 0;
        }
        if (command == "stop") {
            pg_cluster::stop_fixture(argv[2]);
            return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "cwhook_test_pg " << command << ": " << e.what() << "\n";
        return 1;
    }
    std::cerr << "usage: cwhook_test_pg start|stop <state-dir>\n";
    return 2;
}
