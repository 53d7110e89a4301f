// The topic registry (server-wide, any thread) and a reactor's topic members
// (one thread): counts, caps, O(1) removal keeping every index right,
// sequence numbers, missed publications and gaps.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "engine/topic_members.hpp"
#include "engine/topics.hpp"

namespace ringlink {
namespace {

TEST(TopicName, Bounds) {
  EXPECT_FALSE(valid_topic(""));
  EXPECT_TRUE(valid_topic("a"));
  EXPECT_TRUE(valid_topic(std::string(255, 'x')));
  EXPECT_FALSE(valid_topic(std::string(256, 'x')));
  EXPECT_FALSE(valid_topic(std::string_view("a\0b", 3)));
}

struct Recorder : TopicRegistry::Observer {
  std::vector<std::string> events;
  void on_topic_added(const std::string& n) noexcept override { events.push_back("+" + n); }
  void on_topic_removed(const std::string& n) noexcept override { events.push_back("-" + n); }
};

TEST(TopicRegistry, CountsPerReactorAndForgetsAfterLastRelease) {
  TopicRegistry reg{2, 100};
  Recorder rec;
  reg.set_observer(&rec);
  std::uint64_t since = 0;
  auto a = reg.acquire("news", 0, &since);
  ASSERT_TRUE(a);
  EXPECT_EQ(since, 1u);
  auto b = reg.acquire("news", 1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(reg.topics(), 1u);
  std::vector<std::uint32_t> reactors;
  auto out = reg.publish("news", [&](const std::shared_ptr<Topic>&, std::uint64_t seq, TopicRegistry::Delivery d) {
    EXPECT_EQ(seq, 1u);
    reactors.push_back(d.reactor);
    return true;
  });
  EXPECT_EQ(out.seq, 1u);
  EXPECT_EQ(out.reached, 2u);
  EXPECT_EQ(reactors, (std::vector<std::uint32_t>{0, 1}));
  reg.release(*a, 0);
  reactors.clear();
  out = reg.publish("news", [&](const std::shared_ptr<Topic>&, std::uint64_t, TopicRegistry::Delivery d) {
    reactors.push_back(d.reactor);
    return true;
  });
  EXPECT_EQ(out.seq, 2u);
  EXPECT_EQ(reactors, (std::vector<std::uint32_t>{1}));
  reg.release(*b, 1);
  EXPECT_EQ(reg.topics(), 0u);
  EXPECT_FALSE(reg.find("news"));
  EXPECT_EQ(rec.events, (std::vector<std::string>{"+news", "-news"}));
  // Released more often than acquired: ignored, never negative.
  reg.release(*b, 1);
  EXPECT_EQ(reg.topics(), 0u);
}

TEST(TopicRegistry, PublishingToNoSubscribersDoesNothing) {
  TopicRegistry reg{1, 10};
  bool called = false;
  auto out = reg.publish("nobody", [&](auto&&...) {
    called = true;
    return true;
  });
  EXPECT_EQ(out.seq, 0u);
  EXPECT_FALSE(called);
  EXPECT_EQ(reg.published_unheard(), 1u);
  EXPECT_EQ(reg.topics(), 0u);
}

TEST(TopicRegistry, ServerCapRefusesNewTopicsOnlyAndCounts) {
  TopicRegistry reg{1, 3};
  std::vector<std::shared_ptr<Topic>> held;
  for (int i = 0; i < 3; ++i) held.push_back(reg.acquire("t" + std::to_string(i), 0));
  EXPECT_FALSE(reg.acquire("t3", 0));
  EXPECT_FALSE(reg.acquire("t4", 0));
  EXPECT_EQ(reg.refused_server_cap(), 2u);
  EXPECT_TRUE(reg.acquire("t0", 0));   // an existing topic takes more subscribers
  EXPECT_FALSE(reg.acquire("", 0));
  EXPECT_FALSE(reg.acquire(std::string(256, 'x'), 0));
}

TEST(TopicRegistry, MissedPublicationsAreToldWithTheNextOneThatGetsThere) {
  TopicRegistry reg{2, 10};
  auto t = reg.acquire("x", 0);
  (void)reg.acquire("x", 1);
  bool ring_full = true;
  for (int i = 0; i < 3; ++i) {
    auto out = reg.publish("x", [&](const std::shared_ptr<Topic>&, std::uint64_t, TopicRegistry::Delivery d) {
      return d.reactor == 0 || !ring_full;
    });
    EXPECT_EQ(out.reached, 1u);
    EXPECT_EQ(out.not_posted, 1u);
  }
  EXPECT_EQ(t->dropped.load(), 3u);
  ring_full = false;
  TopicRegistry::Delivery seen{};
  auto out = reg.publish("x", [&](const std::shared_ptr<Topic>&, std::uint64_t, TopicRegistry::Delivery d) {
    if (d.reactor == 1) seen = d;
    return true;
  });
  EXPECT_EQ(out.seq, 4u);
  EXPECT_EQ(seen.missed_first, 1u);
  EXPECT_EQ(seen.missed_count, 3u);
  reg.publish("x", [&](const std::shared_ptr<Topic>&, std::uint64_t, TopicRegistry::Delivery d) {
    if (d.reactor == 1) seen = d;
    return true;
  });
  EXPECT_EQ(seen.missed_count, 0u);
}

// Sequence numbers are unique and dense under concurrent publishers.
TEST(TopicRegistry, ConcurrentPublishersGetDistinctSequenceNumbers) {
  TopicRegistry reg{1, 10};
  auto t = reg.acquire("x", 0);
  std::vector<std::vector<std::uint64_t>> seqs(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int i = 0; i < 1000; ++i)
        seqs[k].push_back(reg.publish("x", [](auto&&...) { return true; }).seq);
    });
  for (auto& th : threads) th.join();
  std::vector<bool> seen(4001, false);
  for (auto& v : seqs) {
    for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);   // each publisher in order
    for (auto s : v) {
      ASSERT_LE(s, 4000u);
      EXPECT_FALSE(seen[s]);
      seen[s] = true;
    }
  }
}

LinkId id(std::uint32_t slot, std::uint32_t gen = 1) { return LinkId{0, slot, gen}; }

TEST(TopicMembers, AddRemoveKeepsEveryIndexRight) {
  TopicRegistry reg{1, 1000};
  TopicMembers m{1000};
  std::vector<std::shared_ptr<Topic>> topics;
  for (int i = 0; i < 20; ++i) topics.push_back(reg.acquire("t" + std::to_string(i), 0));
  for (std::uint32_t l = 0; l < 30; ++l)
    for (auto& t : topics) ASSERT_EQ(m.add(id(l), t, 1), TopicMembers::Added::added);
  EXPECT_EQ(m.pairs(), 600u);
  EXPECT_EQ(m.add(id(3), topics[4], 1), TopicMembers::Added::duplicate);
  // Remove in a scattered order; every remaining pair must still be found.
  for (std::uint32_t l = 0; l < 30; l += 3)
    for (std::size_t i = 0; i < topics.size(); i += 2) EXPECT_TRUE(m.remove(id(l), topics[i].get()));
  EXPECT_FALSE(m.remove(id(0), topics[0].get()));
  for (std::uint32_t l = 0; l < 30; ++l)
    for (std::size_t i = 0; i < topics.size(); ++i)
      EXPECT_EQ(m.subscribed(id(l), topics[i].get()), !(l % 3 == 0 && i % 2 == 0)) << l << " " << i;
  for (auto& t : topics) {
    for (const auto& mem : *m.members(t.get())) EXPECT_TRUE(m.subscribed(mem.link, t.get()));
  }
  std::size_t released = 0;
  for (std::uint32_t l = 0; l < 30; ++l) m.remove_all(id(l), [&](Topic&) { ++released; });
  EXPECT_EQ(released, 600u - 100u);
  EXPECT_EQ(m.pairs(), 0u);
  EXPECT_EQ(m.topics(), 0u);
  EXPECT_EQ(m.members(topics[0].get()), nullptr);
}

TEST(TopicMembers, PerLinkCapAndStaleIds) {
  TopicRegistry reg{1, 1000};
  TopicMembers m{2};
  auto a = reg.acquire("a", 0), b = reg.acquire("b", 0), c = reg.acquire("c", 0);
  EXPECT_EQ(m.add(id(1), a, 1), TopicMembers::Added::added);
  EXPECT_EQ(m.add(id(1), b, 1), TopicMembers::Added::added);
  EXPECT_EQ(m.add(id(1), c, 1), TopicMembers::Added::link_cap);
  EXPECT_EQ(m.add(id(2), c, 1), TopicMembers::Added::added);
  EXPECT_EQ(m.topics_of(id(1)), 2u);
  // Another generation of slot 1 cannot take slot 1's pairs away.
  EXPECT_FALSE(m.remove(id(1, 2), a.get()));
  EXPECT_FALSE(m.subscribed(id(1, 2), a.get()));
  EXPECT_TRUE(m.remove(id(1), a.get()));
  EXPECT_EQ(m.add(id(1), c, 1), TopicMembers::Added::added);
}

TEST(TopicMembers, GapsMergeWhenContiguousAndIgnoreWhatCameBeforeJoining) {
  TopicRegistry reg{1, 10};
  TopicMembers m{10};
  auto t = reg.acquire("t", 0);
  ASSERT_EQ(m.add(id(1), t, 5), TopicMembers::Added::added);
  m.note_lost(id(1), t.get(), 2, 2);       // before it joined
  EXPECT_FALSE(m.any_gaps());
  m.note_lost(id(1), t.get(), 3, 4);       // 3..6: 5 and 6 count
  m.note_lost(id(1), t.get(), 7);
  m.note_lost(id(1), t.get(), 10);         // not contiguous: a second gap
  auto g = m.take_gaps(id(1), t.get());
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].first, 5u);
  EXPECT_EQ(g[0].count, 3u);
  EXPECT_EQ(g[1].first, 10u);
  EXPECT_EQ(g[1].count, 1u);
  EXPECT_FALSE(m.any_gaps());
  m.note_lost(id(2), t.get(), 1);          // not a member
  EXPECT_FALSE(m.any_gaps());
  m.note_lost(id(1), t.get(), 11);
  EXPECT_TRUE(m.remove(id(1), t.get()));
  EXPECT_FALSE(m.any_gaps());              // leaving forgets its gaps
}

TEST(TopicMembers, TooManyGapsStretchTheLastOneNeverMissingALoss) {
  TopicRegistry reg{1, 10};
  TopicMembers m{10};
  auto t = reg.acquire("t", 0);
  ASSERT_EQ(m.add(id(1), t, 1), TopicMembers::Added::added);
  const std::uint64_t n = TopicMembers::max_gaps + 5;
  for (std::uint64_t i = 0; i < n; ++i) m.note_lost(id(1), t.get(), 1 + 2 * i);   // every other one
  auto g = m.take_gaps(id(1), t.get());
  ASSERT_EQ(g.size(), TopicMembers::max_gaps);
  std::vector<int> covered(2 * n + 2, 0);
  for (const auto& x : g)
    for (std::uint64_t k = x.first; k < x.first + x.count; ++k) covered[k]++;
  for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(covered[1 + 2 * i], 1);
}

}  // namespace
}  // namespace ringlink
