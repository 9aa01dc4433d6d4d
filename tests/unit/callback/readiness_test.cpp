#include "callback/readiness.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace cwhook::callback {
namespace {

using namespace std::chrono_literals;

// A probe the test completes by hand, and a clock it moves by hand.
struct fixture {
    std::vector<readiness_cache::done_fn> started;
    bool accept = true;
    readiness_cache::clock::time_point now{};
    readiness_cache cache{[this](readiness_cache::done_fn done) {
                              if (!accept) {
                                  return false;
                              }
                              started.push_back(std::move(done));
                              return true;
                          },
                          1000ms, [this] { return now; }};

    std::vector<result<void>> answers;
    void ask()
    {
        cache.check([this](result<void> r) { answers.push_back(r); });
    }
};

TEST(ReadinessCache, ConcurrentChecksShareOneProbe)
{
    fixture f;
    for (int i = 0; i < 10; ++i) {
        f.ask();
    }
    ASSERT_EQ(f.started.size(), 1u);
    EXPECT_TRUE(f.answers.empty());
    f.started[0](result<void>{});
    ASSERT_EQ(f.answers.size(), 10u);
    for (const auto& a : f.answers) {
        EXPECT_TRUE(a);
    }
    EXPECT_EQ(f.cache.probes(), 1u);
}

TEST(ReadinessCache, OutcomeIsReusedUntilItIsOlderThanTheTtl)
{
    fixture f;
    f.ask();
    f.started[0](result<void>{});
    f.now += 999ms;
    f.ask();
    EXPECT_EQ(f.started.size(), 1u);
    EXPECT_EQ(f.answers.size(), 2u);
    f.now += 1ms;
    f.ask();
    EXPECT_EQ(f.started.size(), 2u);
    EXPECT_EQ(f.answers.size(), 2u);
    f.started[1](result<void>{});
    EXPECT_EQ(f.answers.size(), 3u);
    EXPECT_EQ(f.cache.probes(), 2u);
}

TEST(ReadinessCache, FailureIsCachedAndThenProbedAgain)
{
    fixture f;
    f.ask();
    f.started[0](make_error_code(errc::storage_busy));
    f.ask();
    ASSERT_EQ(f.answers.size(), 2u);
    EXPECT_EQ(f.answers[1].error(), make_error_code(errc::storage_busy));
    EXPECT_EQ(f.started.size(), 1u);
    f.now += 1s;
    f.ask();
    f.started[1](result<void>{});
    ASSERT_EQ(f.answers.size(), 3u);
    EXPECT_TRUE(f.answers[2]);
}

TEST(ReadinessCache, RefusedProbeAnswersQueueFullAndIsNotCached)
{
    fixture f;
    f.accept = false;
    f.ask();
    ASSERT_EQ(f.answers.size(), 1u);
    EXPECT_EQ(f.answers[0].error(), make_error_code(errc::storage_queue_full));
    f.accept = true;
    f.ask();
    EXPECT_EQ(f.started.size(), 1u); // tried again at once
    f.started[0](result<void>{});
    EXPECT_TRUE(f.answers.back());
}

} // namespace
} // namespace cwhook::callback
