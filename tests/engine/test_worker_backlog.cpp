// WorkerBacklog: links served in turn, sparse links first, each link's own
// order kept, bounded.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "engine/worker_backlog.hpp"

namespace ringlink {
namespace {

LinkId link(std::uint32_t slot) { return LinkId(0, slot, 1); }

InboundMessage msg(std::uint32_t slot, std::uint32_t seq) {
  InboundMessage m;
  m.id = link(slot);
  m.payload = PayloadRef::allocate(sizeof seq);
  std::memcpy(m.payload.data(), &seq, sizeof seq);
  return m;
}

struct Served {
  std::uint32_t slot, seq;
  bool operator==(const Served&) const = default;
};

std::vector<Served> drain(WorkerBacklog& b) {
  std::vector<Served> out;
  InboundMessage m;
  while (b.next(m)) {
    std::uint32_t seq;
    std::memcpy(&seq, m.payload.data(), sizeof seq);
    out.push_back({m.id.slot(), seq});
  }
  return out;
}

void add(WorkerBacklog& b, std::uint32_t slot, std::uint32_t seq) {
  InboundMessage m = msg(slot, seq);
  ASSERT_TRUE(b.add(m));
  EXPECT_FALSE(m.payload) << "taken";
}

TEST(WorkerBacklog, ServesLinksInTurnKeepingEachLinksOrder) {
  WorkerBacklog b(64);
  for (std::uint32_t i = 0; i < 3; ++i) add(b, 1, i);  // a flooding link
  for (std::uint32_t i = 0; i < 3; ++i) add(b, 2, i);  // another
  EXPECT_EQ(b.size(), 6u);
  EXPECT_EQ(drain(b), (std::vector<Served>{{1, 0}, {2, 0}, {1, 1}, {2, 1}, {1, 2}, {2, 2}}));
  EXPECT_TRUE(b.empty());
}

// A link with nothing waiting goes ahead of the links with a backlog: one
// request of a sparse link waits for at most the message being served.
TEST(WorkerBacklog, ASparseLinkGoesAheadOfBacklogs) {
  WorkerBacklog b(64);
  for (std::uint32_t i = 0; i < 4; ++i) add(b, 1, i);
  InboundMessage m;
  ASSERT_TRUE(b.next(m));  // link 1's first; link 1 now has a backlog
  add(b, 7, 0);            // a sparse link's request arrives
  ASSERT_TRUE(b.next(m));
  EXPECT_EQ(m.id, link(7));
  EXPECT_EQ(drain(b), (std::vector<Served>{{1, 1}, {1, 2}, {1, 3}}));
}

// Links with a backlog share the worker evenly whatever their depth.
TEST(WorkerBacklog, ADeepBacklogDoesNotStarveAShallowOne) {
  WorkerBacklog b(256);
  for (std::uint32_t i = 0; i < 100; ++i) add(b, 1, i);
  for (std::uint32_t i = 0; i < 2; ++i) add(b, 2, i);
  const std::vector<Served> order = drain(b);
  ASSERT_EQ(order.size(), 102u);
  EXPECT_EQ(order[3], (Served{2, 1})) << "link 2 is done within its first two turns";
  std::uint32_t expect = 0;
  for (const Served& s : order)
    if (s.slot == 1) {
      EXPECT_EQ(s.seq, expect++);
    }
}

TEST(WorkerBacklog, BoundedAndReusableAfterDraining) {
  WorkerBacklog b(4);
  for (std::uint32_t i = 0; i < 4; ++i) add(b, i % 2, i);
  EXPECT_TRUE(b.full());
  InboundMessage m = msg(3, 9);
  EXPECT_FALSE(b.add(m)) << "full";
  EXPECT_TRUE(m.payload) << "a refused message stays with the caller";
  EXPECT_EQ(drain(b).size(), 4u);
  for (int round = 0; round < 3; ++round) {
    for (std::uint32_t i = 0; i < 4; ++i) add(b, i, i);
    EXPECT_EQ(drain(b).size(), 4u);
  }
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b.next(m));
}

// Same slot, another generation: another link, kept apart.
TEST(WorkerBacklog, LinksAreTellApartByGeneration) {
  WorkerBacklog b(8);
  InboundMessage old_link = msg(3, 0), new_link = msg(3, 1);
  new_link.id = LinkId(0, 3, 2);
  ASSERT_TRUE(b.add(old_link));
  ASSERT_TRUE(b.add(new_link));
  InboundMessage m;
  ASSERT_TRUE(b.next(m));
  EXPECT_EQ(m.id, link(3));
  ASSERT_TRUE(b.next(m));
  EXPECT_EQ(m.id, LinkId(0, 3, 2));
}

}  // namespace
}  // namespace ringlink
