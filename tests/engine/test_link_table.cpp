// LinkTable through its public API: slot order, the cap, reuse of released
// slots, pointers that stay put while blocks are added, capacity and
// for_each_slot. (Generations are private to the table and the reactor;
// the reactor tests see them through LinkId.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "engine/link_table.hpp"

namespace ringlink {
namespace {

constexpr std::uint32_t no_cap = max_slots_per_reactor;

TEST(LinkTable, TakeHandsOutSlotsInOrder) {
  LinkTable t;
  EXPECT_EQ(t.used(), 0u);
  EXPECT_EQ(t.at(0), nullptr);         // no block yet
  Link* a = t.take(10);
  Link* b = t.take(10);
  Link* c = t.take(10);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(t.at(0), a);
  EXPECT_EQ(t.at(1), b);
  EXPECT_EQ(t.at(2), c);
  EXPECT_EQ(t.at(2), c);               // same pointer on every call
  EXPECT_EQ(t.used(), 3u);
  EXPECT_EQ(a->state(), LinkState::closed);
  EXPECT_EQ(a->user_data(), nullptr);
  EXPECT_EQ(t.at(LinkTable::block_size), nullptr);
  EXPECT_EQ(t.at(max_slots_per_reactor), nullptr);
}

// A slot never handed out has no link, even inside an allocated block, so
// an id made up for it is not alive.
TEST(LinkTable, AtIsNullForSlotNeverHandedOut) {
  LinkTable t;
  ASSERT_NE(t.take(no_cap), nullptr);
  EXPECT_EQ(t.at(1), nullptr);
  EXPECT_EQ(t.at(LinkTable::block_size - 1), nullptr);
}

TEST(LinkTable, TakeReturnsNullAtTheCap) {
  LinkTable t;
  ASSERT_NE(t.take(2), nullptr);
  ASSERT_NE(t.take(2), nullptr);
  EXPECT_EQ(t.take(2), nullptr);
  EXPECT_EQ(t.take(2), nullptr);
  EXPECT_EQ(t.used(), 2u);
  EXPECT_EQ(t.take(0), nullptr);
  EXPECT_NE(t.take(3), nullptr);       // a higher cap lets one more in
  EXPECT_EQ(t.used(), 3u);
}

TEST(LinkTable, ReleasedSlotIsTakenAgainFirst) {
  LinkTable t;
  Link* a = t.take(no_cap);
  Link* b = t.take(no_cap);
  Link* c = t.take(no_cap);
  ASSERT_NE(c, nullptr);
  t.release(*b);
  EXPECT_EQ(t.at(1), b);               // the slot keeps its link
  EXPECT_EQ(t.take(no_cap), b);
  EXPECT_EQ(t.used(), 3u);             // no new slot used

  t.release(*a);
  t.release(*c);
  std::set<Link*> again = {t.take(no_cap), t.take(no_cap)};
  EXPECT_EQ(again, (std::set<Link*>{a, c}));
  EXPECT_EQ(t.used(), 3u);
  Link* d = t.take(no_cap);            // then fresh slots again
  EXPECT_EQ(d, t.at(3));
  EXPECT_EQ(t.used(), 4u);
}

TEST(LinkTable, CapHoldsAfterReleases) {
  LinkTable t;
  std::vector<Link*> links;
  for (int i = 0; i < 4; ++i) links.push_back(t.take(4));
  ASSERT_EQ(std::count(links.begin(), links.end(), nullptr), 0);
  t.release(*links[1]);
  t.release(*links[3]);
  Link* x = t.take(4);
  Link* y = t.take(4);
  EXPECT_EQ(std::set<Link*>({x, y}), (std::set<Link*>{links[1], links[3]}));
  EXPECT_EQ(t.take(4), nullptr);       // four in use again
  EXPECT_EQ(t.used(), 4u);
}

TEST(LinkTable, PointersStayPutWhenBlocksAreAdded) {
  LinkTable t;
  const std::uint32_t n = LinkTable::block_size * 2 + 10;
  std::vector<Link*> links;
  for (std::uint32_t i = 0; i < n; ++i) {
    links.push_back(t.take(no_cap));
    ASSERT_NE(links.back(), nullptr) << i;
  }
  EXPECT_EQ(t.used(), n);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(t.at(i), links[i]) << i;
  EXPECT_EQ(std::set<Link*>(links.begin(), links.end()).size(), n);
  // Within a block, slots are neighbours.
  EXPECT_EQ(t.at(LinkTable::block_size - 1), t.at(0) + (LinkTable::block_size - 1));
  EXPECT_EQ(t.at(LinkTable::block_size + 5), t.at(LinkTable::block_size) + 5);
}

TEST(LinkTable, CapacityRoundsUpToBlocks) {
  LinkTable t;
  EXPECT_EQ(t.capacity(), 0u);
  ASSERT_NE(t.take(no_cap), nullptr);
  EXPECT_EQ(t.capacity(), LinkTable::block_size);
  while (t.used() < LinkTable::block_size) ASSERT_NE(t.take(no_cap), nullptr);
  EXPECT_EQ(t.capacity(), LinkTable::block_size);
  EXPECT_EQ(t.at(LinkTable::block_size), nullptr);
  ASSERT_NE(t.take(no_cap), nullptr);
  EXPECT_EQ(t.capacity(), 2 * LinkTable::block_size);
  EXPECT_NE(t.at(LinkTable::block_size), nullptr);
  // Releases do not give capacity back.
  t.release(*t.at(LinkTable::block_size));
  EXPECT_EQ(t.capacity(), 2 * LinkTable::block_size);
  EXPECT_EQ(t.used(), LinkTable::block_size + 1);
}

TEST(LinkTable, ForEachSlotVisitsEveryUsedSlotInOrder) {
  LinkTable t;
  std::vector<Link*> links;
  for (int i = 0; i < 5; ++i) links.push_back(t.take(no_cap));
  t.release(*links[1]);
  t.release(*links[4]);
  std::vector<Link*> seen;
  t.for_each_slot([&](Link& l) noexcept { seen.push_back(&l); });
  EXPECT_EQ(seen, links);              // released slots too: they are still slots

  LinkTable empty;
  int calls = 0;
  empty.for_each_slot([&](Link&) noexcept { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ringlink
