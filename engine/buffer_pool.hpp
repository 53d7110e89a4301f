// Per-reactor pool of fixed-size, padded chunks: where reads land.
//
//   ChunkPool pool{/*max_chunks=*/4096};        // chunk_size defaults to config::chunk_size
//   std::byte* buf = pool.acquire();
//   if (buf == nullptr) { /* pool exhausted: stop reading this link, retry when chunks return */ }
//   ssize_t n = ::recv(fd, buf, pool.chunk_size(), 0);
//   ...
//   pool.release(buf);
//
//   ChunkLease lease = pool.acquire_lease();    // RAII: gives the chunk back when destroyed
//
// Padding: every chunk has `padding` writable bytes before data() and after
// data() + chunk_size(). A frame header split across two reads can be copied into the front
// padding so header and payload are contiguous, and a word-at-a-time unmask may read and
// write up to `padding` bytes past the end of the data without leaving the allocation.
// Chunk data is 64-byte aligned.
//
// Exhaustion is flow control, not an error: acquire() returns nullptr once max_chunks are
// in use (or the allocator fails); it never aborts and never prints.
//
// Memory follows demand: chunks are allocated on first need, never up front. Released
// chunks go onto a free list of at most `max_cached` (set_max_cached() lets the io_uring
// backend raise it to its ring's fill, so a busy turn's chunks are reused, not reallocated);
// beyond that they go back to the allocator. When the load goes away, trim(low_water) hands
// the pages of the cached chunks back to the kernel, down to `low_water` warm ones, and
// drop_pages() does the same for a chunk someone else holds empty (the io_uring buffer ring's):
// idle memory is what the links hold, not what a past burst touched. Chunks of at least a page
// are page aligned and own whole pages for this, so nothing else shares a page with them.
//
// Threading: single-threaded. acquire() and release() (and so ChunkLease destruction) must
// happen on one thread at a time, the reactor's; a chunk used by another thread must be
// handed back to that thread (e.g. through its command ring) to be released. With
// allocator=mimalloc the pool allocates from its own mimalloc heap. mimalloc heaps belong to
// the thread that creates them and are deleted when it exits, so the heap is created by the
// first acquire() that needs memory, on the thread that uses the pool, and a new one is made
// if the pool later runs on another thread: the pool may be constructed on one thread, run
// on another and destroyed on a third. The destructor frees every cached chunk, from any
// thread. Chunks still in use at destruction are a caller bug: they are not freed (they stay
// valid memory, leaked) rather than left dangling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "ringlink_config.hpp"

struct mi_heap_s;

namespace ringlink {

class ChunkLease;

class ChunkPool {
 public:
  static constexpr size_t padding = 64;
  static constexpr size_t default_max_cached = 64;

  explicit ChunkPool(size_t max_chunks, size_t chunk_size = config::chunk_size,
                     size_t max_cached = default_max_cached) noexcept;
  ~ChunkPool();

  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // Start of a chunk's data (chunk_size() bytes, padded both sides), or nullptr when
  // max_chunks() are in use or memory is exhausted.
  [[nodiscard]] std::byte* acquire() noexcept;
  // `data` must come from this pool's acquire() and not have been released; nullptr is a no-op.
  void release(std::byte* data) noexcept;

  [[nodiscard]] ChunkLease acquire_lease() noexcept;

  // Hands the pages of the cached chunks back to the kernel (their contents are garbage
  // anyway), all but the `low_water` most recently released, which stay warm for the next
  // reads. The chunks stay cached, costing address space only. Returns the pages handed
  // back. For when the load has gone away; the next use of a chunk faults its pages in.
  size_t trim(size_t low_water) noexcept;
  // Hands the pages of a chunk that is in use but holds nothing of value back to the kernel;
  // the chunk stays valid and reads as zeros. Returns the pages handed back (0 for chunks
  // smaller than a page, which share pages with others).
  size_t drop_pages(std::byte* data) const noexcept;
  // Raises (or lowers, never below the constructor's value) how many released chunks are kept.
  void set_max_cached(size_t n) noexcept;

  size_t chunk_size() const noexcept { return chunk_size_; }
  size_t max_chunks() const noexcept { return max_chunks_; }
  size_t max_cached() const noexcept { return max_cached_; }
  size_t in_use() const noexcept { return in_use_; }
  size_t high_water() const noexcept { return high_water_; }
  size_t cached() const noexcept { return cached_; }
  // Chunks currently allocated from the system: in_use() + cached().
  size_t allocated() const noexcept { return in_use_ + cached_; }

 private:
  // A cached chunk, and whether its pages went back to the kernel since its last use.
  struct Cached {
    std::byte* data;
    bool dropped;
  };

  static size_t page_bytes() noexcept;
  std::byte* allocate_chunk() noexcept;
  void free_chunk(std::byte* data) noexcept;
  std::byte* base_of(std::byte* data) const noexcept { return data - front_; }

  size_t chunk_size_;
  size_t max_chunks_;
  size_t min_cached_;
  size_t max_cached_;
  size_t alloc_bytes_;  // the allocation: padding + chunk_size + padding, rounded up
  size_t alignment_;    // 64, or a page for chunks of a page or more
  size_t front_;        // bytes from the allocation's start to data()
  size_t in_use_ = 0;
  size_t high_water_ = 0;
  size_t cached_ = 0;
  // The free list is kept outside the chunks so that all of a cached chunk's pages can go
  // back to the kernel. Its room is reserved up front (set_max_cached() grows it), so
  // release() never allocates.
  std::vector<Cached> free_;
  mi_heap_s* heap_ = nullptr;       // allocator=mimalloc only; created by the first acquire
  uint64_t heap_thread_ = 0;        // serial of the thread that created heap_
};

// Owns one chunk; returns it to its pool when destroyed. Move-only.
class ChunkLease {
 public:
  ChunkLease() noexcept = default;
  ChunkLease(ChunkPool& pool, std::byte* data) noexcept : pool_(&pool), data_(data) {}
  ~ChunkLease() { release(); }

  ChunkLease(ChunkLease&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)), data_(std::exchange(other.data_, nullptr)) {}
  ChunkLease& operator=(ChunkLease&& other) noexcept {
    if (this != &other) {
      release();
      pool_ = std::exchange(other.pool_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
  }
  ChunkLease(const ChunkLease&) = delete;
  ChunkLease& operator=(const ChunkLease&) = delete;

  // Gives the chunk back to its pool now (idempotent); the lease becomes empty.
  void release() noexcept {
    if (data_ != nullptr) pool_->release(data_);
    data_ = nullptr;
    pool_ = nullptr;
  }

  // Gives up ownership without returning the chunk; the caller must release it to pool().
  [[nodiscard]] std::byte* detach() noexcept {
    pool_ = nullptr;
    return std::exchange(data_, nullptr);
  }

  std::byte* get() const noexcept { return data_; }
  ChunkPool* pool() const noexcept { return pool_; }
  // The whole data area (chunk_size() bytes); empty for an empty lease.
  std::span<std::byte> span() const noexcept {
    return data_ != nullptr ? std::span<std::byte>(data_, pool_->chunk_size()) : std::span<std::byte>();
  }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  ChunkPool* pool_ = nullptr;
  std::byte* data_ = nullptr;
};

inline ChunkLease ChunkPool::acquire_lease() noexcept {
  std::byte* data = acquire();
  return data != nullptr ? ChunkLease(*this, data) : ChunkLease();
}

}  // namespace ringlink
