#include "engine/buffer_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

#include <mimalloc.h>

namespace ringlink {

namespace {

constexpr bool use_mimalloc = config::allocator == config::Allocator::mimalloc;
constexpr size_t chunk_alignment = 64;

// A per-thread number that is never reused (unlike pthread ids), to recognise the thread that
// owns a mimalloc heap even after that thread has exited and another took its id.
[[maybe_unused]] uint64_t thread_serial() noexcept {  // used by the mimalloc build only
  static std::atomic<uint64_t> next{1};
  thread_local const uint64_t serial = next.fetch_add(1, std::memory_order_relaxed);
  return serial;
}

}  // namespace

ChunkPool::ChunkPool(size_t max_chunks, size_t chunk_size, size_t max_cached) noexcept
    : chunk_size_(std::max<size_t>(chunk_size, 1)),
      max_chunks_(max_chunks),
      min_cached_(max_cached),
      max_cached_(max_cached) {
  const size_t raw = 2 * padding + chunk_size_;
  // A chunk of a page or more gets pages of its own, so drop_pages() can hand all of them
  // back without touching a neighbour. mimalloc's size classes round such sizes up anyway.
  alignment_ = chunk_size_ >= page_bytes() ? page_bytes() : chunk_alignment;
  alloc_bytes_ = (raw + alignment_ - 1) & ~(alignment_ - 1);
  front_ = padding;
  try {
    free_.reserve(max_cached_);
  } catch (...) {
    max_cached_ = min_cached_ = 0;  // no room for a free list: every release frees
  }
}

size_t ChunkPool::page_bytes() noexcept {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

ChunkPool::~ChunkPool() {
  for (const Cached& c : free_) free_chunk(c.data);
  free_.clear();
  cached_ = 0;
  if constexpr (use_mimalloc) {
    // mimalloc deletes a thread's extra heaps when the thread exits, so the heap may only be
    // touched from its own thread. mi_heap_delete (not destroy) keeps any chunk still in use
    // valid: a leak instead of a dangling pointer if the caller broke the contract.
    if (heap_ != nullptr && heap_thread_ == thread_serial()) mi_heap_delete(heap_);
    heap_ = nullptr;
  }
}

std::byte* ChunkPool::allocate_chunk() noexcept {
  void* base;
  if constexpr (use_mimalloc) {
    // A heap may only allocate on the thread that created it, and dies with that thread.
    // If the pool has moved to another thread (a reactor restarted on a new thread), start
    // a heap there and never touch the old one again: mimalloc reclaims it when its thread
    // exits, and chunks from it are still freed correctly by mi_free.
    if (const uint64_t me = thread_serial(); heap_ == nullptr || heap_thread_ != me) {
      mi_heap_t* heap = mi_heap_new();
      if (heap == nullptr) return nullptr;
      heap_ = heap;
      heap_thread_ = me;
    }
    base = mi_heap_malloc_aligned(heap_, alloc_bytes_, alignment_);
  } else {
    base = std::aligned_alloc(alignment_, alloc_bytes_);
  }
  return base != nullptr ? static_cast<std::byte*>(base) + front_ : nullptr;
}

void ChunkPool::free_chunk(std::byte* data) noexcept {
  void* base = base_of(data);
  if constexpr (use_mimalloc) {
    mi_free(base);  // any thread: mimalloc routes cross-thread frees itself
  } else {
    std::free(base);
  }
}

std::byte* ChunkPool::acquire() noexcept {
  if (in_use_ >= max_chunks_) return nullptr;
  std::byte* data;
  if (!free_.empty()) {
    data = free_.back().data;
    free_.pop_back();
    --cached_;
  } else {
    data = allocate_chunk();
    if (data == nullptr) return nullptr;
  }
  ++in_use_;
  high_water_ = std::max(high_water_, in_use_);
  return data;
}

void ChunkPool::release(std::byte* data) noexcept {
  if (data == nullptr) return;
  --in_use_;
  if (cached_ >= max_cached_) {
    free_chunk(data);
    return;
  }
  free_.push_back(Cached{data, false});  // within the reserved room: cached_ < max_cached_
  ++cached_;
}

size_t ChunkPool::drop_pages(std::byte* data) const noexcept {
  if (data == nullptr || alignment_ < page_bytes()) return 0;
  if (::madvise(base_of(data), alloc_bytes_, MADV_DONTNEED) != 0) return 0;
  return alloc_bytes_ / page_bytes();
}

size_t ChunkPool::trim(size_t low_water) noexcept {
  // The chunks stay cached: freeing them would let the allocator write its
  // free-list link into each, faulting a page back in per chunk. Without
  // their pages they cost address space only. The most recently released
  // (the top of the stack, taken first) stay warm up to `low_water`.
  size_t pages = 0;
  const size_t cold = free_.size() > low_water ? free_.size() - low_water : 0;
  for (size_t i = 0; i < cold; ++i) {
    Cached& c = free_[i];
    if (c.dropped) continue;
    pages += drop_pages(c.data);
    c.dropped = true;
  }
  return pages;
}

void ChunkPool::set_max_cached(size_t n) noexcept {
  n = std::max(n, min_cached_);
  if (n > free_.capacity()) {
    try {
      free_.reserve(n);
    } catch (...) {
      return;  // keep the room there is
    }
  }
  max_cached_ = n;
  while (free_.size() > max_cached_) {
    free_chunk(free_.back().data);
    free_.pop_back();
  }
  cached_ = free_.size();
}

}  // namespace ringlink
