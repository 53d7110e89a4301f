// ChunkPool / ChunkLease and Payload / PayloadRef.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "engine/buffer_pool.hpp"
#include "engine/payload.hpp"

namespace ringlink {
namespace {

constexpr size_t small_chunk = 1024;

// --- ChunkPool ---------------------------------------------------------------

TEST(ChunkPool, AllocatesNothingUpFront) {
  ChunkPool pool(1000, small_chunk);
  EXPECT_EQ(pool.allocated(), 0u);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 0u);
  EXPECT_EQ(pool.high_water(), 0u);
  EXPECT_EQ(pool.max_chunks(), 1000u);
  EXPECT_EQ(pool.chunk_size(), small_chunk);
}

TEST(ChunkPool, DefaultChunkSizeComesFromConfig) {
  ChunkPool pool(1);
  EXPECT_EQ(pool.chunk_size(), config::chunk_size);
  EXPECT_EQ(pool.max_cached(), ChunkPool::default_max_cached);
}

TEST(ChunkPool, ReturnsNullAtCapAndRecoversAfterRelease) {
  ChunkPool pool(4, small_chunk);
  std::vector<std::byte*> chunks;
  for (int i = 0; i < 4; ++i) {
    std::byte* c = pool.acquire();
    ASSERT_NE(c, nullptr) << i;
    chunks.push_back(c);
  }
  EXPECT_EQ(std::set<std::byte*>(chunks.begin(), chunks.end()).size(), 4u) << "chunks must be distinct";
  EXPECT_EQ(pool.in_use(), 4u);
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pool.acquire(), nullptr);  // still flow control, not a state change
  EXPECT_EQ(pool.in_use(), 4u);

  pool.release(chunks.back());
  chunks.pop_back();
  EXPECT_EQ(pool.in_use(), 3u);
  EXPECT_EQ(pool.cached(), 1u);
  std::byte* again = pool.acquire();
  ASSERT_NE(again, nullptr);
  chunks.push_back(again);
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pool.high_water(), 4u);
  for (auto* c : chunks) pool.release(c);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 4u);
}

TEST(ChunkPool, ReusesMostRecentlyReleasedChunk) {
  ChunkPool pool(8, small_chunk);
  std::byte* a = pool.acquire();
  std::byte* b = pool.acquire();
  pool.release(a);
  EXPECT_EQ(pool.acquire(), a);  // warm in cache: LIFO
  EXPECT_EQ(pool.allocated(), 2u);
  pool.release(a);
  pool.release(b);
}

TEST(ChunkPool, ReleaseOfNullIsANoOp) {
  ChunkPool pool(1, small_chunk);
  pool.release(nullptr);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 0u);
}

TEST(ChunkPool, CacheIsCappedSoMemoryShrinksAfterBurst) {
  ChunkPool pool(100, small_chunk, /*max_cached=*/8);
  std::vector<std::byte*> burst;
  for (int i = 0; i < 100; ++i) burst.push_back(pool.acquire());
  ASSERT_EQ(std::count(burst.begin(), burst.end(), nullptr), 0);
  EXPECT_EQ(pool.allocated(), 100u);
  for (auto* c : burst) pool.release(c);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 8u);
  EXPECT_EQ(pool.allocated(), 8u);
  EXPECT_EQ(pool.high_water(), 100u);
}

TEST(ChunkPool, ZeroCacheFreesEveryRelease) {
  ChunkPool pool(4, small_chunk, /*max_cached=*/0);
  std::byte* c = pool.acquire();
  pool.release(c);
  EXPECT_EQ(pool.cached(), 0u);
  EXPECT_EQ(pool.allocated(), 0u);
}

// trim(): after a burst, the cached chunks' pages go back to the kernel, all
// but the `low_water` most recently released, which keep theirs. The chunks
// stay cached; one taken past the warm ones reads as zeros where the burst
// left its bytes: its old pages are gone.
TEST(ChunkPool, TrimHandsPagesBackDownToLowWater) {
  ChunkPool pool(64, config::chunk_size, /*max_cached=*/16);
  std::vector<std::byte*> burst;
  for (int i = 0; i < 10; ++i) {
    std::byte* c = pool.acquire();
    ASSERT_NE(c, nullptr);
    std::memset(c, 0xAB, pool.chunk_size());
    burst.push_back(c);
  }
  for (auto* c : burst) pool.release(c);
  ASSERT_EQ(pool.cached(), 10u);
  const size_t pages = pool.trim(/*low_water=*/3);
  EXPECT_GE(pages * 4096, 7 * pool.chunk_size()) << "the seven coldest chunks' pages";
  EXPECT_EQ(pool.cached(), 10u);
  EXPECT_EQ(pool.allocated(), 10u);
  EXPECT_EQ(pool.trim(3), 0u) << "pages already given back are not given again";
  std::vector<std::byte*> again;
  for (int i = 0; i < 4; ++i) again.push_back(pool.acquire());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(again[i][0], std::byte{0xAB}) << "warm chunk " << i;
  for (size_t k = 0; k < pool.chunk_size(); ++k) ASSERT_EQ(again[3][k], std::byte{0}) << k;
  std::memset(again[3] - ChunkPool::padding, 1, ChunkPool::padding + pool.chunk_size() + ChunkPool::padding);
  for (auto* c : again) pool.release(c);
}

// A chunk someone holds empty (the io_uring buffer ring's) can give its pages
// back too, and stays usable.
TEST(ChunkPool, DropPagesOfAChunkInUse) {
  ChunkPool pool(4);
  std::byte* c = pool.acquire();
  ASSERT_NE(c, nullptr);
  std::memset(c, 0x5A, pool.chunk_size());
  EXPECT_GT(pool.drop_pages(c), 0u);
  for (size_t k = 0; k < pool.chunk_size(); ++k) ASSERT_EQ(c[k], std::byte{0}) << k;
  std::memset(c, 0x11, pool.chunk_size());
  EXPECT_EQ(c[pool.chunk_size() - 1], std::byte{0x11});
  pool.release(c);
}

// Chunks smaller than a page share pages with their neighbours: nothing may
// be dropped, and their bytes stay.
TEST(ChunkPool, SmallChunksKeepTheirPages) {
  ChunkPool pool(4, small_chunk);
  std::byte* c = pool.acquire();
  ASSERT_NE(c, nullptr);
  std::memset(c, 0x77, small_chunk);
  EXPECT_EQ(pool.drop_pages(c), 0u);
  EXPECT_EQ(c[0], std::byte{0x77});
  pool.release(c);
  EXPECT_EQ(pool.trim(0), 0u);
  EXPECT_EQ(pool.cached(), 1u);
}

// The io_uring backend raises the cache to its ring's fill so a busy turn's
// chunks are reused; lowering it again frees the excess, never below the
// constructor's value.
TEST(ChunkPool, SetMaxCachedRaisesAndLowers) {
  ChunkPool pool(100, small_chunk, /*max_cached=*/4);
  pool.set_max_cached(32);
  std::vector<std::byte*> burst;
  for (int i = 0; i < 40; ++i) burst.push_back(pool.acquire());
  for (auto* c : burst) pool.release(c);
  EXPECT_EQ(pool.cached(), 32u);
  pool.set_max_cached(1);
  EXPECT_EQ(pool.max_cached(), 4u);
  EXPECT_EQ(pool.cached(), 4u);
  EXPECT_EQ(pool.allocated(), 4u);
}

TEST(ChunkPool, PaddingBothSidesIsWritableAndChunksDoNotOverlap) {
  ChunkPool pool(16, small_chunk);
  std::vector<std::byte*> chunks;
  for (int i = 0; i < 16; ++i) chunks.push_back(pool.acquire());
  // Fill each chunk's full extent (front padding, data, tail padding) with its own byte;
  // under ASan any byte outside the allocation is reported.
  const size_t extent = ChunkPool::padding + small_chunk + ChunkPool::padding;
  for (size_t i = 0; i < chunks.size(); ++i) {
    ASSERT_NE(chunks[i], nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(chunks[i]) % 64, 0u) << "data is cache-line aligned";
    std::memset(chunks[i] - ChunkPool::padding, static_cast<int>(i + 1), extent);
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    const std::byte* base = chunks[i] - ChunkPool::padding;
    for (size_t k = 0; k < extent; ++k) {
      ASSERT_EQ(base[k], static_cast<std::byte>(i + 1)) << "chunk " << i << " byte " << k;
    }
  }
  for (auto* c : chunks) pool.release(c);
}

TEST(ChunkPool, ConstructedOnOneThreadUsedOnAnotherDestroyedOnAThird) {
  // The reactor pattern: built by the main thread, run on the reactor thread, torn down by
  // the main thread after the reactor thread has exited.
  auto pool = std::make_unique<ChunkPool>(8, small_chunk);
  std::thread reactor([&] {
    std::byte* a = pool->acquire();
    std::byte* b = pool->acquire();
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    std::memset(a, 1, small_chunk);
    pool->release(a);
    pool->release(b);
  });
  reactor.join();
  EXPECT_EQ(pool->cached(), 2u);
  pool.reset();  // must free the cached chunks without touching the exited thread's heap
}

TEST(ChunkPool, KeepsWorkingWhenMovedToANewThreadAfterTheFirstExited) {
  ChunkPool pool(8, small_chunk, /*max_cached=*/1);
  std::vector<std::byte*> held;  // chunks allocated on the first thread, still in use
  std::thread first([&] {
    for (int i = 0; i < 3; ++i) held.push_back(pool.acquire());
  });
  first.join();  // with mimalloc, this thread's heaps are gone now
  std::thread second([&] {
    // Needs fresh memory (the cache is empty) and frees chunks of the dead thread's heap.
    std::vector<std::byte*> mine;
    for (int i = 0; i < 4; ++i) mine.push_back(pool.acquire());
    for (auto* c : mine) {
      ASSERT_NE(c, nullptr);
      std::memset(c - ChunkPool::padding, 7, 2 * ChunkPool::padding + small_chunk);
    }
    for (auto* c : held) pool.release(c);
    for (auto* c : mine) pool.release(c);
  });
  second.join();
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 1u);
  EXPECT_EQ(pool.high_water(), 7u);
}

TEST(ChunkLease, ReturnsChunkWhenDestroyed) {
  ChunkPool pool(2, small_chunk);
  {
    ChunkLease lease = pool.acquire_lease();
    ASSERT_TRUE(lease);
    EXPECT_EQ(lease.pool(), &pool);
    EXPECT_EQ(lease.span().size(), small_chunk);
    EXPECT_EQ(pool.in_use(), 1u);
  }
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 1u);
}

TEST(ChunkLease, MoveTransfersOwnershipOnce) {
  ChunkPool pool(2, small_chunk);
  ChunkLease a = pool.acquire_lease();
  std::byte* raw = a.get();
  ChunkLease b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(pool.in_use(), 1u);
  ChunkLease c = pool.acquire_lease();
  EXPECT_EQ(pool.in_use(), 2u);
  c = std::move(b);  // c's own chunk goes back, b's moves in
  EXPECT_EQ(pool.in_use(), 1u);
  EXPECT_EQ(c.get(), raw);
  c.release();
  EXPECT_FALSE(c);
  EXPECT_EQ(pool.in_use(), 0u);
  c.release();  // idempotent
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(ChunkLease, ExhaustedPoolGivesEmptyLease) {
  ChunkPool pool(1, small_chunk);
  ChunkLease first = pool.acquire_lease();
  ChunkLease second = pool.acquire_lease();
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
  EXPECT_EQ(second.get(), nullptr);
  EXPECT_TRUE(second.span().empty());
}

TEST(ChunkLease, DetachHandsOwnershipBack) {
  ChunkPool pool(1, small_chunk);
  std::byte* raw = nullptr;
  {
    ChunkLease lease = pool.acquire_lease();
    raw = lease.detach();
    EXPECT_FALSE(lease);
  }
  EXPECT_EQ(pool.in_use(), 1u);  // the destroyed lease no longer owned it
  pool.release(raw);
  EXPECT_EQ(pool.in_use(), 0u);
}

// --- Payload -------------------------------------------------------------------

// Frees recorded through the test hook.
std::atomic<int> frees{0};
std::atomic<const Payload*> last_freed{nullptr};

void count_free(const Payload* p) noexcept {
  frees.fetch_add(1, std::memory_order_relaxed);
  last_freed.store(p, std::memory_order_relaxed);
}

class PayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    frees = 0;
    last_freed = nullptr;
    testing_hooks::set_payload_free_hook(&count_free);
  }
  void TearDown() override { testing_hooks::set_payload_free_hook(nullptr); }
};

TEST_F(PayloadTest, AllocateGivesAlignedBytesOfExactSize) {
  const size_t sizes[] = {0, 1, 15, 16, 125, 126, 65535, 65536, 1 << 20};
  for (size_t n : sizes) {
    PayloadRef p = PayloadRef::allocate(n);
    ASSERT_TRUE(p) << n;
    EXPECT_EQ(p.size(), n);
    EXPECT_EQ(p.bytes().size(), n);
    EXPECT_EQ(p.bytes().data(), p.data());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data()) % 16, 0u) << n;
    EXPECT_EQ(p.use_count(), 1u);
    EXPECT_EQ(p.frame_header_len(), 0);
    if (n > 0) {
      std::memset(p.data(), 0x5a, n);  // whole span writable (ASan checks the bounds)
    }
  }
  EXPECT_EQ(frees.load(), static_cast<int>(std::size(sizes)));
}

TEST_F(PayloadTest, OversizeAllocationIsAnEmptyRefNotACrash) {
  PayloadRef p = PayloadRef::allocate(size_t{1} << 33);
  EXPECT_FALSE(p);
  EXPECT_EQ(p.data(), nullptr);
  EXPECT_EQ(p.size(), 0u);
  EXPECT_EQ(p.use_count(), 0u);
  EXPECT_TRUE(p.bytes().empty());
}

TEST_F(PayloadTest, CopyCountsMoveDoesNotResetDrops) {
  PayloadRef a = PayloadRef::allocate(8);
  PayloadRef b = a;
  EXPECT_EQ(a.use_count(), 2u);
  EXPECT_TRUE(a == b);
  PayloadRef c = std::move(b);
  EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.use_count(), 2u);
  PayloadRef d;
  d = c;
  EXPECT_EQ(a.use_count(), 3u);
  PayloadRef& alias = d;
  d = alias;  // self copy-assignment keeps the count
  EXPECT_EQ(a.use_count(), 3u);
  c.reset();
  EXPECT_FALSE(c);
  EXPECT_EQ(a.use_count(), 2u);
  d = PayloadRef::allocate(4);  // d drops its share of a
  EXPECT_EQ(a.use_count(), 1u);
  EXPECT_EQ(frees.load(), 0);
  const Payload* raw = a.get();
  a.reset();
  EXPECT_EQ(frees.load(), 1);
  EXPECT_EQ(last_freed.load(), raw);
  a.reset();  // resetting an empty ref does nothing
  EXPECT_EQ(frees.load(), 1);
}

TEST_F(PayloadTest, FrameHeaderStoredOnceReadByAll) {
  PayloadRef p = PayloadRef::copy_of(std::as_bytes(std::span("hello", 5)));
  ASSERT_TRUE(p);
  EXPECT_EQ(std::memcmp(p.data(), "hello", 5), 0);
  auto storage = p.frame_header_storage();
  static_assert(decltype(storage)::extent == 14);
  storage[0] = std::byte{0x81};
  storage[1] = std::byte{0x05};
  p.frame_header_len() = 2;
  PayloadRef q = p;
  ASSERT_EQ(q.frame_header().size(), 2u);
  EXPECT_EQ(q.frame_header()[0], std::byte{0x81});
  EXPECT_EQ(q.frame_header()[1], std::byte{0x05});
  // The whole 14-byte area is usable (longest header: 2 + 8 length + 4 mask).
  std::memset(storage.data(), 0xee, storage.size());
  EXPECT_EQ(q.frame_header_storage()[13], std::byte{0xee});
}

TEST_F(PayloadTest, SetSizeStaysWithinCapacity) {
  PayloadRef p = PayloadRef::allocate(100);
  EXPECT_EQ(p.capacity(), 100u);
  EXPECT_TRUE(p.set_size(10));
  EXPECT_EQ(p.size(), 10u);
  EXPECT_TRUE(p.set_size(100));
  EXPECT_FALSE(p.set_size(101));
  EXPECT_EQ(p.size(), 100u);
  PayloadRef empty;
  EXPECT_FALSE(empty.set_size(0));
}

TEST_F(PayloadTest, DetachAndAdoptRoundTrip) {
  PayloadRef p = PayloadRef::allocate(3);
  Payload* raw = p.detach();
  EXPECT_FALSE(p);
  EXPECT_EQ(frees.load(), 0);
  PayloadRef back = PayloadRef::adopt(raw);
  EXPECT_EQ(back.use_count(), 1u);
  back.reset();
  EXPECT_EQ(frees.load(), 1);
}

TEST_F(PayloadTest, SharedAcrossThreadsFreedExactlyOnceAfterLastDrop) {
  constexpr int threads = 8;
  constexpr int copies_per_thread = 20'000;
  for (int round = 0; round < 20; ++round) {
    PayloadRef p = PayloadRef::allocate(64);
    ASSERT_TRUE(p);
    std::memset(p.data(), round, 64);
    const Payload* raw = p.get();
    std::atomic<int> bad_reads{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      // Each thread gets its own reference (like a link queue), copies and drops it many
      // times, reads the bytes, and drops it at a different moment from the others.
      pool.emplace_back([mine = PayloadRef(p), round, &bad_reads]() mutable {
        for (int i = 0; i < copies_per_thread; ++i) {
          PayloadRef tmp = mine;
          if (tmp.data()[i % 64] != static_cast<std::byte>(round)) bad_reads.fetch_add(1);
        }
        mine.reset();
      });
    }
    p.reset();  // the broadcaster lets go while the links still hold it
    for (auto& t : pool) t.join();
    EXPECT_EQ(bad_reads.load(), 0);
    EXPECT_EQ(frees.load(), round + 1) << "round " << round;
    EXPECT_EQ(last_freed.load(), raw);
  }
}

}  // namespace
}  // namespace ringlink
