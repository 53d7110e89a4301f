// SpscRing and MpscRing: single-thread semantics for both (typed tests), then concurrent
// stress that checks order, loss and duplication.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/ring_mpsc.hpp"
#include "engine/ring_spsc.hpp"

namespace ringlink {
namespace {

// Counts live instances so tests can see that rings destroy exactly what they hold.
struct Tracked {
  static inline int live = 0;
  int value = 0;
  Tracked() noexcept { ++live; }
  explicit Tracked(int v) noexcept : value(v) { ++live; }
  Tracked(Tracked&& o) noexcept : value(o.value) { ++live; }
  Tracked& operator=(Tracked&& o) noexcept {
    value = o.value;
    return *this;
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { --live; }
};

template <typename Ring>
class RingTest : public ::testing::Test {};

using RingTypes = ::testing::Types<SpscRing<int>, MpscRing<int>>;
TYPED_TEST_SUITE(RingTest, RingTypes);

template <typename T>
struct Rebind;
template <typename T>
struct Rebind<SpscRing<T>> {
  template <typename U>
  using type = SpscRing<U>;
};
template <typename T>
struct Rebind<MpscRing<T>> {
  template <typename U>
  using type = MpscRing<U>;
};

TYPED_TEST(RingTest, EmptyRingPopsNothing) {
  TypeParam ring(8);
  ASSERT_TRUE(ring.valid());
  int out = -1;
  EXPECT_FALSE(ring.try_pop(out));
  EXPECT_EQ(out, -1);
  EXPECT_EQ(ring.size_approx(), 0u);
}

TYPED_TEST(RingTest, FillsToCapacityThenRefuses) {
  TypeParam ring(8);
  ASSERT_EQ(ring.capacity(), 8u);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(ring.try_push(int{i})) << i;
  EXPECT_EQ(ring.size_approx(), 8u);
  EXPECT_FALSE(ring.try_push(99));
  EXPECT_EQ(ring.size_approx(), 8u);
  int out = -1;
  ASSERT_TRUE(ring.try_pop(out));
  EXPECT_EQ(out, 0);
  EXPECT_TRUE(ring.try_push(8));  // one slot freed, one push fits
  EXPECT_FALSE(ring.try_push(100));
  for (int want = 1; want <= 8; ++want) {
    ASSERT_TRUE(ring.try_pop(out));
    EXPECT_EQ(out, want);
  }
  EXPECT_FALSE(ring.try_pop(out));
  EXPECT_EQ(ring.size_approx(), 0u);
}

TYPED_TEST(RingTest, WrapsAroundManyLapsInFifoOrder) {
  TypeParam ring(4);
  int next_in = 0;
  int next_out = 0;
  // Batches of 1..4 so every offset in the ring is crossed many times.
  for (int lap = 0; lap < 1000; ++lap) {
    const int batch = 1 + lap % 4;
    for (int i = 0; i < batch; ++i) ASSERT_TRUE(ring.try_push(int{next_in++}));
    for (int i = 0; i < batch; ++i) {
      int out = -1;
      ASSERT_TRUE(ring.try_pop(out));
      ASSERT_EQ(out, next_out++);
    }
  }
  EXPECT_EQ(next_out, next_in);
}

TYPED_TEST(RingTest, MoveOnlyElementsSurviveAndFailedPushKeepsArgument) {
  using Ring = typename Rebind<TypeParam>::template type<std::unique_ptr<int>>;
  Ring ring(2);
  ASSERT_TRUE(ring.try_push(std::make_unique<int>(1)));
  ASSERT_TRUE(ring.try_push(std::make_unique<int>(2)));
  auto extra = std::make_unique<int>(3);
  EXPECT_FALSE(ring.try_push(std::move(extra)));
  ASSERT_NE(extra, nullptr);  // the ring did not take it
  EXPECT_EQ(*extra, 3);
  std::unique_ptr<int> out;
  ASSERT_TRUE(ring.try_pop(out));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 1);
  ASSERT_TRUE(ring.try_pop(out));
  EXPECT_EQ(*out, 2);
}

TYPED_TEST(RingTest, DestructorDestroysUnpoppedElements) {
  using Ring = typename Rebind<TypeParam>::template type<Tracked>;
  Tracked::live = 0;
  {
    Ring ring(8);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(ring.try_push(Tracked{i}));
    EXPECT_EQ(Tracked::live, 5);
    Tracked out;
    ASSERT_TRUE(ring.try_pop(out));
    EXPECT_EQ(out.value, 0);
    EXPECT_EQ(Tracked::live, 5);  // four in the ring + `out`
  }
  EXPECT_EQ(Tracked::live, 0);
}

TYPED_TEST(RingTest, EmplaceConstructsInPlace) {
  using Ring = typename Rebind<TypeParam>::template type<std::pair<int, long>>;
  Ring ring(2);
  ASSERT_TRUE(ring.try_emplace(7, 70L));
  std::pair<int, long> out;
  ASSERT_TRUE(ring.try_pop(out));
  EXPECT_EQ(out.first, 7);
  EXPECT_EQ(out.second, 70L);
}

struct CapacityCase {
  size_t requested;
  size_t spsc;
  size_t mpsc;
};

TEST(RingCapacity, RoundsUpToPowerOfTwo) {
  const CapacityCase cases[] = {
      {0, 1, 2}, {1, 1, 2}, {2, 2, 2}, {3, 4, 4}, {4, 4, 4}, {5, 8, 8}, {1000, 1024, 1024}, {1024, 1024, 1024},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(SpscRing<int>(c.requested).capacity(), c.spsc) << c.requested;
    EXPECT_EQ(MpscRing<int>(c.requested).capacity(), c.mpsc) << c.requested;
  }
}

TEST(SpscRing, CapacityOneAlternates) {
  SpscRing<int> ring(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(ring.try_push(int{i}));
    ASSERT_FALSE(ring.try_push(int{i}));
    int out = -1;
    ASSERT_TRUE(ring.try_pop(out));
    ASSERT_EQ(out, i);
  }
}

TEST(SpscRing, FrontAndPopPeekWithoutMoving) {
  SpscRing<int> ring(4);
  EXPECT_EQ(ring.front(), nullptr);
  ASSERT_TRUE(ring.try_push(5));
  ASSERT_TRUE(ring.try_push(6));
  int* head = ring.front();
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(*head, 5);
  *head = 50;  // the consumer may edit the element it holds (partial send progress)
  EXPECT_EQ(*ring.front(), 50);
  ring.pop();
  ASSERT_NE(ring.front(), nullptr);
  EXPECT_EQ(*ring.front(), 6);
  ring.pop();
  EXPECT_EQ(ring.front(), nullptr);
}

// --- concurrency -----------------------------------------------------------

constexpr auto watchdog = std::chrono::seconds(30);  // a hang fails instead of blocking CI

TEST(SpscRingStress, TwoThreadsKeepOrderWithoutLoss) {
  constexpr uint64_t items = 1'000'000;
  SpscRing<uint64_t> ring(64);  // small, so the ring is full and empty often
  std::atomic<bool> give_up{false};
  const auto start = std::chrono::steady_clock::now();

  std::thread producer([&] {
    for (uint64_t i = 0; i < items;) {
      if (ring.try_push(uint64_t{i})) {
        ++i;
      } else if (give_up.load(std::memory_order_relaxed)) {
        return;
      } else {
        std::this_thread::yield();
      }
    }
  });

  uint64_t expected = 0;
  uint64_t out = 0;
  bool in_order = true;
  while (expected < items) {
    if (ring.try_pop(out)) {
      if (out != expected) {
        in_order = false;
        break;
      }
      ++expected;
    } else if (std::chrono::steady_clock::now() - start > watchdog) {
      break;
    } else {
      std::this_thread::yield();
    }
  }
  give_up.store(true);
  producer.join();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("spsc stress: %llu items in %lld ms\n", static_cast<unsigned long long>(items),
              static_cast<long long>(ms.count()));
  EXPECT_TRUE(in_order) << "got " << out << " expected " << expected;
  EXPECT_EQ(expected, items);
  EXPECT_FALSE(ring.try_pop(out));
}

TEST(MpscRingStress, FourProducersOneConsumerPerProducerOrderNoLossNoDup) {
  constexpr unsigned producers = 4;
  constexpr uint32_t per_producer = 200'000;
  MpscRing<uint64_t> ring(1024);
  std::atomic<bool> go{false};
  std::atomic<bool> give_up{false};
  std::atomic<uint64_t> full_retries{0};

  std::vector<std::thread> threads;
  for (unsigned p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      uint64_t retries = 0;
      for (uint32_t seq = 0; seq < per_producer;) {
        // Item = producer in the high half, its sequence number in the low half.
        if (ring.try_push((uint64_t{p} << 32) | seq)) {
          ++seq;
        } else if (give_up.load(std::memory_order_relaxed)) {
          break;
        } else {
          ++retries;
          std::this_thread::yield();
        }
      }
      full_retries.fetch_add(retries, std::memory_order_relaxed);
    });
  }

  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  std::vector<uint32_t> next(producers, 0);
  uint64_t received = 0;
  uint64_t item = 0;
  std::string failure;
  while (received < uint64_t{producers} * per_producer && failure.empty()) {
    if (!ring.try_pop(item)) {
      if (std::chrono::steady_clock::now() - start > watchdog) {
        failure = "watchdog expired";
        break;
      }
      std::this_thread::yield();
      continue;
    }
    const auto p = static_cast<unsigned>(item >> 32);
    const auto seq = static_cast<uint32_t>(item);
    if (p >= producers) {
      failure = "unknown producer " + std::to_string(p);
    } else if (seq != next[p]) {
      // seq < next: duplicate; seq > next: a loss or reordering.
      failure = "producer " + std::to_string(p) + ": got " + std::to_string(seq) + " expected " +
                std::to_string(next[p]);
    } else {
      ++next[p];
      ++received;
    }
  }
  give_up.store(true);
  for (auto& t : threads) t.join();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("mpsc stress: %llu items in %lld ms, %llu full retries\n",
              static_cast<unsigned long long>(received), static_cast<long long>(ms.count()),
              static_cast<unsigned long long>(full_retries.load()));

  EXPECT_EQ(failure, "");
  for (unsigned p = 0; p < producers; ++p) EXPECT_EQ(next[p], per_producer) << "producer " << p;
  EXPECT_FALSE(ring.try_pop(item)) << "extra item after all were received";
  EXPECT_EQ(ring.size_approx(), 0u);
}

TEST(MpscRingStress, ProducersRacingForTheLastSlotsNeverOverfill) {
  // No consumer: of many concurrent pushes exactly capacity() may succeed.
  MpscRing<int> ring(64);
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (ring.try_push(int{i})) accepted.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 64);
  EXPECT_EQ(ring.size_approx(), 64u);
  int out;
  int popped = 0;
  while (ring.try_pop(out)) ++popped;
  EXPECT_EQ(popped, 64);
}

}  // namespace
}  // namespace ringlink
