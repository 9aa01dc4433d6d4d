#include "manage/sync.hpp"

#include <gtest/gtest.h>

namespace cwhook::manage {
namespace {

const std::string receiver = "https://hooks.example.com/callbacks?recordId=";

subscription want(std::string type, std::string level, std::int64_t object_id, std::string description = "d",
                  std::string url = receiver)
{
    return {std::move(type), std::move(level), object_id, std::move(url), std::move(description)};
}

callback have(std::int64_t id, std::string type, std::string level, std::int64_t object_id, bool inactive = false,
              std::string description = "d", std::string url = receiver)
{
    callback c;
    c.id = id;
    c.type = std::move(type);
    c.level = std::move(level);
    c.object_id = object_id;
    c.inactive = inactive;
    c.description = std::move(description);
    c.url = std::move(url);
    return c;
}

TEST(SyncPlan, MissingSubscriptionIsCreated)
{
    const auto p = make_plan({want("ticket", "owner", 1)}, {}, false);
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_EQ(p.items[0].what, action::create);
    EXPECT_TRUE(p.has_changes());
}

TEST(SyncPlan, MatchingActiveEntryIsUnchanged)
{
    const auto p = make_plan({want("ticket", "owner", 1)}, {have(7, "Ticket", "OWNER", 1)}, false);
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_EQ(p.items[0].what, action::unchanged);
    EXPECT_EQ(p.items[0].actual->id, 7);
    EXPECT_FALSE(p.has_changes());
}

TEST(SyncPlan, InactiveEntryIsReenabled)
{
    const auto p = make_plan({want("ticket", "owner", 1)}, {have(7, "ticket", "owner", 1, true)}, false);
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_EQ(p.items[0].what, action::reenable);
    EXPECT_FALSE(p.items[0].new_description);
}

TEST(SyncPlan, DescriptionDriftIsAnUpdate)
{
    const auto p = make_plan({want("ticket", "owner", 1, "new")}, {have(7, "ticket", "owner", 1, false, "old")}, false);
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_EQ(p.items[0].what, action::update);
    EXPECT_EQ(p.items[0].new_description.value(), "new");
}

TEST(SyncPlan, ReenableCarriesADescriptionChange)
{
    const auto p = make_plan({want("ticket", "owner", 1, "new")}, {have(7, "ticket", "owner", 1, true, "old")}, false);
    EXPECT_EQ(p.items[0].what, action::reenable);
    EXPECT_EQ(p.items[0].new_description.value(), "new");
}

TEST(SyncPlan, DifferentObjectIdOrUrlIsADifferentSubscription)
{
    const auto p =
        make_plan({want("ticket", "board", 5)},
                  {have(7, "ticket", "board", 6), have(8, "ticket", "board", 5, false, "d", receiver + "x")}, false);
    EXPECT_EQ(p.count(action::create), 1u);
    EXPECT_EQ(p.count(action::unchanged), 0u);
}

TEST(SyncPlan, ExtraEntryOfOursIsDeletedOnlyWithPrune)
{
    const std::vector<callback> actual{have(7, "ticket", "owner", 1), have(8, "company", "owner", 1)};
    const auto keep = make_plan({want("ticket", "owner", 1)}, actual, false);
    ASSERT_EQ(keep.count(action::remove), 1u);
    EXPECT_EQ(keep.count(action::remove, true), 0u);
    EXPECT_FALSE(keep.has_changes());

    const auto prune = make_plan({want("ticket", "owner", 1)}, actual, true);
    EXPECT_EQ(prune.count(action::remove, true), 1u);
    EXPECT_TRUE(prune.has_changes());
}

TEST(SyncPlan, OtherIntegrationsAreNeverTouched)
{
    const auto p = make_plan({want("ticket", "owner", 1)},
                             {have(7, "ticket", "owner", 1),
                              have(9, "ticket", "owner", 1, false, "theirs", "https://other.example/hook?recordId=")},
                             true);
    EXPECT_EQ(p.count(action::remove), 0u);
    EXPECT_EQ(p.items.size(), 1u);
}

TEST(SyncPlan, SameEndpointWithAnotherQueryIsOurs)
{
    const auto p =
        make_plan({want("ticket", "owner", 1)},
                  {have(9, "ticket", "status", 3, false, "d", "https://hooks.example.com/callbacks?id=")}, true);
    EXPECT_EQ(p.count(action::remove, true), 1u);
}

TEST(SyncPlan, DuplicatesPreferTheActiveEntryAndTheRestAreExtra)
{
    const auto p = make_plan({want("ticket", "owner", 1)},
                             {have(7, "ticket", "owner", 1, true), have(8, "ticket", "owner", 1, false)}, true);
    ASSERT_EQ(p.count(action::unchanged), 1u);
    for (const auto& i : p.items) {
        if (i.what == action::unchanged) {
            EXPECT_EQ(i.actual->id, 8);
        }
        if (i.what == action::remove) {
            EXPECT_EQ(i.actual->id, 7);
        }
    }
}

TEST(SyncPlan, EmptyDesiredTouchesNothingEvenWithPrune)
{
    const auto p = make_plan({}, {have(7, "ticket", "owner", 1)}, true);
    EXPECT_TRUE(p.items.empty());
}

TEST(SyncPlan, ActionNames)
{
    EXPECT_EQ(to_string(action::reenable), "re-enable");
    EXPECT_EQ(to_string(action::remove), "delete");
}

} // namespace
} // namespace cwhook::manage
