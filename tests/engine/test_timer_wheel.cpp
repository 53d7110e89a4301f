// TimerWheel (driven by a ManualClock: no sleeping) and the clock helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "engine/clock.hpp"
#include "engine/timer_wheel.hpp"

namespace ringlink {
namespace {

constexpr uint64_t start_ms = 1'000'000;

uint64_t round_up(uint64_t deadline, uint64_t tick) {
  if (deadline <= start_ms) return start_ms;
  return start_ms + (deadline - start_ms + tick - 1) / tick * tick;
}

// --- exact firing times ------------------------------------------------------

struct DeadlineCase {
  uint64_t offset_ms;
  uint64_t fires_at_offset;  // rounded up to the 10 ms tick
};

TEST(TimerWheel, FiresAtDeadlineRoundedUpToTickNeverEarlyNeverMoreThanATickLate) {
  const DeadlineCase cases[] = {
      {0, 0},     {1, 10},     {9, 10},     {10, 10},     {11, 20},       {19, 20},
      {20, 20},   {639, 640},  {640, 640},  {641, 650},   {6399, 6400},   {12345, 12350},
  };
  for (const auto& c : cases) {
    TimerNode node;
    TimerWheel wheel(start_ms, 10, 64);  // 640 ms per round: several cases span rounds
    const uint64_t deadline = start_ms + c.offset_ms;
    wheel.schedule(node, deadline);
    ASSERT_TRUE(node.armed());
    EXPECT_EQ(wheel.due_ms(node), start_ms + c.fires_at_offset);
    std::vector<uint64_t> fired_at;
    for (uint64_t now = start_ms; now <= deadline + 20; ++now) {
      wheel.advance(now, [&](TimerNode& n) {
        EXPECT_EQ(&n, &node);
        EXPECT_FALSE(n.armed()) << "disarmed before its callback";
        fired_at.push_back(now);
      });
    }
    ASSERT_EQ(fired_at.size(), 1u) << "offset " << c.offset_ms;
    EXPECT_EQ(fired_at[0], start_ms + c.fires_at_offset) << "offset " << c.offset_ms;
    EXPECT_GE(fired_at[0], deadline);
    EXPECT_LT(fired_at[0] - deadline, 10u);
    EXPECT_EQ(wheel.size(), 0u);
  }
}

TEST(TimerWheel, PastDeadlineFiresOnNextAdvance) {
  TimerWheel wheel(start_ms, 10, 64);
  int fired = 0;
  EXPECT_EQ(wheel.advance(start_ms + 105, [&](TimerNode&) { ++fired; }), 0u);
  TimerNode late;
  TimerNode ancient;
  wheel.schedule(late, start_ms + 50);
  wheel.schedule(ancient, 0);  // before the wheel existed
  EXPECT_EQ(wheel.ms_until_next(start_ms + 105), 0);
  EXPECT_EQ(wheel.advance(start_ms + 105, [&](TimerNode&) { ++fired; }), 2u);
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, CancelDisarmsAndNeverFires) {
  TimerNode keep;
  TimerNode drop;
  TimerWheel wheel(start_ms, 10, 64);
  wheel.schedule(keep, start_ms + 30);
  wheel.schedule(drop, start_ms + 30);
  EXPECT_EQ(wheel.size(), 2u);
  wheel.cancel(drop);
  EXPECT_FALSE(drop.armed());
  EXPECT_EQ(wheel.size(), 1u);
  wheel.cancel(drop);  // not armed: no-op
  EXPECT_EQ(wheel.size(), 1u);
  std::vector<TimerNode*> fired;
  wheel.advance(start_ms + 1000, [&](TimerNode& n) { fired.push_back(&n); });
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], &keep);
  wheel.cancel(keep);  // already fired: no-op
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.ms_until_next(start_ms + 1000), -1);
}

TEST(TimerWheel, ScheduleOfArmedNodeMovesIt) {
  TimerNode node;
  TimerWheel wheel(start_ms, 10, 64);
  wheel.schedule(node, start_ms + 500);
  wheel.schedule(node, start_ms + 50);
  EXPECT_EQ(wheel.size(), 1u);
  int fired = 0;
  EXPECT_EQ(wheel.advance(start_ms + 49, [&](TimerNode&) { ++fired; }), 0u);
  EXPECT_EQ(wheel.advance(start_ms + 50, [&](TimerNode&) { ++fired; }), 1u);
  EXPECT_EQ(wheel.advance(start_ms + 600, [&](TimerNode&) { ++fired; }), 0u);
  EXPECT_EQ(fired, 1);
}

TEST(TimerWheel, PeriodicTimerReschedulesItselfFromCallback) {
  TimerNode node;
  TimerWheel wheel(start_ms, 10, 64);
  uint64_t deadline = start_ms + 25;
  wheel.schedule(node, deadline);
  std::vector<uint64_t> fired_at;
  for (uint64_t now = start_ms; now <= start_ms + 1000; ++now) {
    wheel.advance(now, [&](TimerNode& n) {
      EXPECT_EQ(now, round_up(deadline, 10));
      fired_at.push_back(now);
      deadline += 25;
      wheel.schedule(n, deadline);
    });
  }
  EXPECT_EQ(fired_at.size(), 40u);  // deadlines 25, 50, ..., 1000
  EXPECT_TRUE(node.armed());
  wheel.cancel(node);  // the node dies before the wheel
}

TEST(TimerWheel, CallbackMayCancelAnotherNodeDueInTheSameAdvance) {
  TimerNode first;
  TimerNode second;
  TimerNode third;
  TimerWheel wheel(start_ms, 10, 64);
  wheel.schedule(first, start_ms + 10);
  wheel.schedule(second, start_ms + 10);
  wheel.schedule(third, start_ms + 20);
  std::vector<TimerNode*> fired;
  const size_t n = wheel.advance(start_ms + 20, [&](TimerNode& node) {
    fired.push_back(&node);
    if (&node == &first) {
      wheel.cancel(second);  // due in this same call, not yet fired
      wheel.cancel(third);   // due in a later tick of this call
    }
  });
  EXPECT_EQ(n, 1u);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], &first);
  EXPECT_FALSE(second.armed());
  EXPECT_FALSE(third.armed());
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.ms_until_next(start_ms + 20), -1);
}

TEST(TimerWheel, RescheduleIntoThePastFromCallbackWaitsForNextAdvance) {
  TimerNode node;
  TimerWheel wheel(start_ms, 10, 64);
  wheel.schedule(node, start_ms);
  int fired = 0;
  auto again = [&](TimerNode& n) {
    ++fired;
    wheel.schedule(n, start_ms);  // long past: would loop forever if fired in the same call
  };
  EXPECT_EQ(wheel.advance(start_ms + 300, again), 1u);
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(node.armed());
  EXPECT_EQ(wheel.ms_until_next(start_ms + 300), 0);
  EXPECT_EQ(wheel.advance(start_ms + 300, again), 1u);
  EXPECT_EQ(fired, 2);
}

TEST(TimerWheel, FiresInTickOrderThenScheduleOrder) {
  std::array<TimerNode, 5> nodes;
  TimerWheel wheel(start_ms, 10, 64);
  const uint64_t deadlines[] = {start_ms + 45, start_ms + 12, start_ms + 41, start_ms + 18, start_ms + 3};
  for (size_t i = 0; i < nodes.size(); ++i) wheel.schedule(nodes[i], deadlines[i]);
  std::vector<size_t> order;
  wheel.advance(start_ms + 100, [&](TimerNode& n) { order.push_back(static_cast<size_t>(&n - nodes.data())); });
  // ticks: 4 -> 10 ms; 1, 3 -> 20 ms (scheduled 1 then 3); 0, 2 -> 50 ms (0 then 2)
  EXPECT_EQ(order, (std::vector<size_t>{4, 1, 3, 0, 2}));
}

TEST(TimerWheel, ManyTimersInOneSlotAcrossRounds) {
  constexpr uint64_t tick = 10;
  constexpr size_t slots = 64;
  constexpr size_t count = 1000;
  std::vector<TimerNode> nodes(count);
  TimerWheel wheel(start_ms, tick, slots);
  std::vector<uint64_t> deadline(count);
  for (size_t i = 0; i < count; ++i) {
    // All in slot 5: tick 5 + k * 64, minus 0..6 ms inside the tick.
    deadline[i] = start_ms + (5 + (i % 20) * slots) * tick - (i % 7);
    wheel.schedule(nodes[i], deadline[i]);
  }
  EXPECT_EQ(wheel.size(), count);
  std::vector<int> fires(count, 0);
  const uint64_t end = start_ms + (5 + 20 * slots) * tick;
  for (uint64_t now = start_ms; now <= end; ++now) {
    wheel.advance(now, [&](TimerNode& n) {
      const size_t i = static_cast<size_t>(&n - nodes.data());
      ++fires[i];
      EXPECT_EQ(now, round_up(deadline[i], tick)) << "node " << i;
    });
  }
  EXPECT_EQ(std::count(fires.begin(), fires.end(), 1), static_cast<long>(count));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, WrapsOverManyRoundsWithOneMsTicks) {
  TimerNode node;
  TimerWheel wheel(start_ms, 1, 64);
  const uint64_t deadline = start_ms + 64 * 100 + 7;
  wheel.schedule(node, deadline);
  uint64_t fired_at = 0;
  for (uint64_t now = start_ms; now <= deadline + 64; ++now) {
    const int64_t wait = wheel.ms_until_next(now);
    if (fired_at == 0) {
      ASSERT_GE(wait, 0);
      ASSERT_LE(now + static_cast<uint64_t>(wait), deadline) << "answered later than the expiry";
    }
    wheel.advance(now, [&](TimerNode&) {
      EXPECT_EQ(fired_at, 0u);
      fired_at = now;
    });
  }
  EXPECT_EQ(fired_at, deadline);
}

TEST(TimerWheel, JumpOfManyRoundsFiresEverythingDueAndNothingElse) {
  std::vector<TimerNode> nodes(300);
  TimerWheel wheel(start_ms, 10, 64);  // 640 ms rounds
  for (size_t i = 0; i < nodes.size(); ++i) wheel.schedule(nodes[i], start_ms + 1 + i * 97);
  const uint64_t now = start_ms + 10 * 640 + 5;  // ten rounds later
  size_t due = 0;
  for (size_t i = 0; i < nodes.size(); ++i) due += round_up(start_ms + 1 + i * 97, 10) <= now;
  size_t fired = wheel.advance(now, [&](TimerNode& n) {
    const size_t i = static_cast<size_t>(&n - nodes.data());
    EXPECT_LE(start_ms + 1 + i * 97, now);
  });
  EXPECT_EQ(fired, due);
  EXPECT_EQ(wheel.size(), nodes.size() - due);
  fired += wheel.advance(now + 300 * 97, [](TimerNode&) {});
  EXPECT_EQ(fired, nodes.size());
}

TEST(TimerWheel, MsUntilNextIsExactWithinARound) {
  TimerWheel wheel(start_ms, 10, 64);
  EXPECT_EQ(wheel.ms_until_next(start_ms), -1);
  TimerNode node;
  wheel.schedule(node, start_ms + 35);  // due at 40
  EXPECT_EQ(wheel.ms_until_next(start_ms), 40);
  EXPECT_EQ(wheel.ms_until_next(start_ms + 39), 1);
  EXPECT_EQ(wheel.ms_until_next(start_ms + 40), 0);
  EXPECT_EQ(wheel.ms_until_next(start_ms + 90), 0);  // overdue: never negative
  wheel.cancel(node);
  EXPECT_EQ(wheel.ms_until_next(start_ms), -1);
}

TEST(TimerWheel, MsUntilNextMayAnswerEarlyForFarNodes) {
  TimerNode far;
  TimerWheel wheel(start_ms, 10, 64);
  wheel.schedule(far, start_ms + 5 * 640 + 100);  // five rounds away, slot 10
  const int64_t wait = wheel.ms_until_next(start_ms);
  EXPECT_EQ(wait, 100);  // a spurious wakeup one slot-distance away, never later
  EXPECT_EQ(wheel.advance(start_ms + 100, [](TimerNode&) {}), 0u);
}

TEST(TimerWheel, TimeGoingBackwardsFiresNothing) {
  TimerNode node;
  TimerWheel wheel(start_ms, 10, 64);
  wheel.advance(start_ms + 100, [](TimerNode&) {});
  wheel.schedule(node, start_ms + 150);
  EXPECT_EQ(wheel.advance(start_ms + 50, [](TimerNode&) {}), 0u);
  EXPECT_TRUE(node.armed());
  EXPECT_EQ(wheel.advance(start_ms + 150, [](TimerNode&) {}), 1u);
}

TEST(TimerWheel, DestructionDisarmsRemainingNodes) {
  TimerNode outlives;
  {
    TimerWheel wheel(start_ms, 10, 64);
    wheel.schedule(outlives, start_ms + 1000);
  }
  EXPECT_FALSE(outlives.armed());
}

TEST(TimerWheel, SlotCountRoundsUpAndZeroTickIsOneMs) {
  TimerWheel a(0, 0, 100);
  EXPECT_EQ(a.slot_count(), 128u);
  EXPECT_EQ(a.tick_ms(), 1u);
  TimerWheel b(0, 10, 1);
  EXPECT_EQ(b.slot_count(), 64u);
}

// --- property test against a reference model --------------------------------
//
// Random schedule / cancel / advance (small steps and multi-round jumps) on a ManualClock,
// with callbacks that re-schedule and cancel. The model: a node is due at its deadline
// rounded up to the tick, or at the last advance()'s tick if that is later; advance(now)
// fires exactly the nodes due <= now that were armed when it started and not cancelled
// before their turn.
TEST(TimerWheelProperty, MatchesReferenceModel) {
  constexpr uint64_t tick = 10;
  constexpr size_t slots = 64;
  constexpr size_t count = 256;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    std::mt19937_64 rng(seed);
    auto uniform = [&](int64_t lo, int64_t hi) {
      return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    ManualClock clock(start_ms);
    MonotonicMs now_fn = clock.source();
    std::array<TimerNode, count> nodes;
    TimerWheel wheel(now_fn(), tick, slots);
    std::vector<int64_t> due(count, -1);  // model: due ms while armed, else -1
    std::vector<uint64_t> deadline(count, 0);
    std::multiset<uint64_t> dues;
    uint64_t model_cursor = 0;
    size_t total_fired = 0;

    auto model_schedule = [&](size_t id, uint64_t d) {
      if (due[id] >= 0) dues.erase(dues.find(static_cast<uint64_t>(due[id])));
      const uint64_t t = std::max(d <= start_ms ? 0 : (d - start_ms + tick - 1) / tick, model_cursor);
      due[id] = static_cast<int64_t>(start_ms + t * tick);
      deadline[id] = d;
      dues.insert(static_cast<uint64_t>(due[id]));
    };
    auto model_cancel = [&](size_t id) {
      if (due[id] < 0) return;
      dues.erase(dues.find(static_cast<uint64_t>(due[id])));
      due[id] = -1;
    };
    auto random_deadline = [&](uint64_t now) {
      const int64_t r = uniform(0, 99);
      if (r < 10) return static_cast<uint64_t>(static_cast<int64_t>(now) - uniform(0, 200));  // past
      if (r < 80) return now + static_cast<uint64_t>(uniform(0, 600));  // within a round
      return now + static_cast<uint64_t>(uniform(600, 20'000));          // rounds away
    };

    for (int step = 0; step < 20'000; ++step) {
      const uint64_t now = now_fn();
      const int64_t op = uniform(0, 99);
      if (op < 45) {
        const auto id = static_cast<size_t>(uniform(0, count - 1));
        const uint64_t d = random_deadline(now);
        wheel.schedule(nodes[id], d);
        model_schedule(id, d);
      } else if (op < 60) {
        const auto id = static_cast<size_t>(uniform(0, count - 1));
        wheel.cancel(nodes[id]);
        model_cancel(id);
      } else {
        clock.advance(op < 95 ? static_cast<uint64_t>(uniform(0, 120))
                              : static_cast<uint64_t>(uniform(640, 5000)));
        const uint64_t t = now_fn();
        const uint64_t now_tick = (t - start_ms) / tick;
        const bool within_round = now_tick - model_cursor + 1 < slots;
        model_cursor = std::max(model_cursor, now_tick);
        std::set<size_t> expected;
        for (size_t id = 0; id < count; ++id) {
          if (due[id] >= 0 && static_cast<uint64_t>(due[id]) <= t) expected.insert(id);
        }
        std::set<size_t> fired;
        uint64_t last_due = 0;
        const size_t n = wheel.advance(t, [&](TimerNode& node) {
          const auto id = static_cast<size_t>(&node - nodes.data());
          ASSERT_TRUE(expected.count(id)) << "seed " << seed << " step " << step << ": node " << id
                                          << " fired unexpectedly (due " << due[id] << ", now " << t << ")";
          ASSERT_FALSE(node.armed());
          ASSERT_LE(deadline[id], t) << "fired early";
          ASSERT_TRUE(fired.insert(id).second) << "fired twice";
          if (within_round) {
            ASSERT_GE(static_cast<uint64_t>(due[id]), last_due) << "out of tick order";
          }
          last_due = static_cast<uint64_t>(due[id]);
          expected.erase(id);
          model_cancel(id);
          const int64_t action = uniform(0, 9);
          if (action < 2) {  // periodic-style re-arm, possibly into the past
            const uint64_t d = random_deadline(t);
            wheel.schedule(node, d);
            model_schedule(id, d);
          } else if (action < 3) {  // cancel someone else, maybe one due in this call
            const auto other = static_cast<size_t>(uniform(0, count - 1));
            wheel.cancel(nodes[other]);
            model_cancel(other);
            expected.erase(other);
          }
        });
        ASSERT_EQ(n, fired.size());
        ASSERT_TRUE(expected.empty()) << "seed " << seed << " step " << step << ": " << expected.size()
                                      << " due nodes did not fire, first " << *expected.begin();
        total_fired += n;
      }
      // After every operation: size and the ms_until_next lower bound.
      const uint64_t t = now_fn();
      ASSERT_EQ(wheel.size(), dues.size()) << "seed " << seed << " step " << step;
      const int64_t wait = wheel.ms_until_next(t);
      if (dues.empty()) {
        ASSERT_EQ(wait, -1);
      } else {
        ASSERT_GE(wait, 0);
        ASSERT_LE(t + static_cast<uint64_t>(wait), std::max(t, *dues.begin()))
            << "seed " << seed << " step " << step << ": later than the next expiry";
      }
      for (size_t id = 0; id < count; ++id) ASSERT_EQ(nodes[id].armed(), due[id] >= 0) << id;
    }
    EXPECT_GT(total_fired, 2000u) << "the test must exercise firing";
  }
}

// --- clocks -----------------------------------------------------------------

TEST(Clock, SteadyClockIsMonotonicAndConsistent) {
  const uint64_t a = steady_now_ns();
  const uint64_t b = steady_now_ns();
  EXPECT_LE(a, b);
  const uint64_t ms = steady_now_ms();
  EXPECT_GE(ms, a / 1'000'000);
  EXPECT_LE(ms, steady_now_ns() / 1'000'000);
}

TEST(Clock, MonotonicMsAcceptsFunctionsLambdasAndManualClocks) {
  MonotonicMs real;  // defaults to steady_now_ms
  const uint64_t before = steady_now_ms();
  EXPECT_GE(real(), before);

  MonotonicMs fn = steady_now_ms;
  EXPECT_GE(fn(), before);

  MonotonicMs fixed = []() noexcept -> uint64_t { return 42; };
  EXPECT_EQ(fixed(), 42u);

  ManualClock manual(500);
  MonotonicMs m = manual.source();
  EXPECT_EQ(m(), 500u);
  manual.advance(25);
  EXPECT_EQ(m(), 525u);
  manual.set(7);
  EXPECT_EQ(m(), 7u);
  EXPECT_EQ(manual.now_ns(), 7'000'000u);

  ManualClock::global().set(99);
  MonotonicMs g = &ManualClock::global_now_ms;
  EXPECT_EQ(g(), 99u);
  ManualClock::global().advance(1);
  EXPECT_EQ(g(), 100u);
}

}  // namespace
}  // namespace ringlink
