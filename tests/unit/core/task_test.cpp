#include "core/task.hpp"

#include "core/log.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>

namespace cwhook::task {
namespace {

namespace net = boost::asio;
using std::chrono::milliseconds;

// A loop that throws on its first `failures` runs and returns normally afterwards.
struct flaky_loop {
    int failures = 0;
    int runs = 0;

    net::awaitable<void> run()
    {
        ++runs;
        if (runs <= failures) {
            throw std::runtime_error("boom " + std::to_string(runs));
        }
        co_return;
    }
};

class Task : public ::testing::Test {
protected:
    void SetUp() override
    {
        log::set_sink([](std::string_view) {});
    }
    void TearDown() override { log::set_sink(nullptr); }

    policy restarting()
    {
        policy p;
        p.backoff = milliseconds(0);
        p.metrics = &metrics;
        return p;
    }

    std::uint64_t failures(std::string_view task)
    {
        return metrics.counter_value("cwhook_task_failures_total", "task=\"" + std::string(task) + "\"");
    }
    std::uint64_t restarts(std::string_view task)
    {
        return metrics.counter_value("cwhook_task_restarts_total", "task=\"" + std::string(task) + "\"");
    }

    net::io_context ioc;
    metrics::registry metrics;
};

// Each test runs the io_context until no work is left: the supervision is done exactly when
// the loop has returned normally or the stop callback ran.

TEST_F(Task, RestartsALoopThatThrows)
{
    flaky_loop loop{.failures = 1};
    spawn_supervised(
        ioc.get_executor(), "flaky", [&loop] { return loop.run(); }, restarting());
    ioc.run();
    EXPECT_EQ(loop.runs, 2);
    EXPECT_EQ(failures("flaky"), 1u);
    EXPECT_EQ(restarts("flaky"), 1u);
}

TEST_F(Task, KeepsRestartingWhileItFails)
{
    flaky_loop loop{.failures = 3};
    spawn_supervised(
        ioc.get_executor(), "flaky", [&loop] { return loop.run(); }, restarting());
    ioc.run();
    EXPECT_EQ(loop.runs, 4);
    EXPECT_EQ(failures("flaky"), 3u);
    EXPECT_EQ(restarts("flaky"), 3u);
}

TEST_F(Task, NormalEndIsNeitherFailureNorRestart)
{
    flaky_loop loop;
    spawn_supervised(
        ioc.get_executor(), "quiet", [&loop] { return loop.run(); }, restarting());
    ioc.run();
    EXPECT_EQ(loop.runs, 1);
    EXPECT_EQ(failures("quiet"), 0u);
    EXPECT_EQ(restarts("quiet"), 0u);
}

TEST_F(Task, StopPolicyCallsTheStopCallbackInsteadOfRestarting)
{
    flaky_loop loop{.failures = 5};
    std::optional<std::string> why;
    auto p = restarting();
    p.action = on_failure::stop;
    p.stop = [&why](const std::string& w) { why = w; };
    spawn_supervised(
        ioc.get_executor(), "accept", [&loop] { return loop.run(); }, p);
    ioc.run();
    ASSERT_TRUE(why);
    EXPECT_EQ(*why, "accept failed: boom 1");
    EXPECT_EQ(loop.runs, 1);
    EXPECT_EQ(failures("accept"), 1u);
    EXPECT_EQ(restarts("accept"), 0u);
}

TEST_F(Task, ThrowingFactoryIsAFailedRun)
{
    int calls = 0;
    flaky_loop loop;
    auto make = [&calls, &loop]() -> net::awaitable<void> {
        if (++calls == 1) {
            throw std::runtime_error("cannot start");
        }
        return loop.run();
    };
    spawn_supervised(ioc.get_executor(), "factory", make, restarting());
    ioc.run();
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(loop.runs, 1);
    EXPECT_EQ(failures("factory"), 1u);
    EXPECT_EQ(restarts("factory"), 1u);
}

TEST_F(Task, CountsWithoutARegistry)
{
    flaky_loop loop{.failures = 1};
    auto p = restarting();
    p.metrics = nullptr;
    spawn_supervised(
        ioc.get_executor(), "unmetered", [&loop] { return loop.run(); }, p);
    ioc.run();
    EXPECT_EQ(loop.runs, 2);
}

TEST(TaskRestartDelay, DoublesUpToTheCap)
{
    policy p;
    p.backoff = milliseconds(100);
    p.max_backoff = milliseconds(1000);
    EXPECT_EQ(restart_delay(p, 0), milliseconds(100));
    EXPECT_EQ(restart_delay(p, 1), milliseconds(200));
    EXPECT_EQ(restart_delay(p, 3), milliseconds(800));
    EXPECT_EQ(restart_delay(p, 4), milliseconds(1000));
    EXPECT_EQ(restart_delay(p, 60), milliseconds(1000));
}

} // namespace
} // namespace cwhook::task
