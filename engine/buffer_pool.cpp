#include "engine/buffer_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

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
    : chunk_size_(std::max<size_t>(chunk_size, sizeof(FreeChunk))),
      max_chunks_(max_chunks),
      max_cached_(max_cached),
      alloc_bytes_((2 * padding + chunk_size_ + chunk_alignment - 1) & ~(chunk_alignment - 1)) {}

ChunkPool::~ChunkPool() {
  while (free_list_ != nullptr) {
    FreeChunk* next = free_list_->next;
    free_chunk(reinterpret_cast<std::byte*>(free_list_));
    free_list_ = next;
  }
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
    base = mi_heap_malloc_aligned(heap_, alloc_bytes_, chunk_alignment);
  } else {
    base = std::aligned_alloc(chunk_alignment, alloc_bytes_);
  }
  return base != nullptr ? static_cast<std::byte*>(base) + padding : nullptr;
}

void ChunkPool::free_chunk(std::byte* data) noexcept {
  void* base = data - padding;
  if constexpr (use_mimalloc) {
    mi_free(base);  // any thread: mimalloc routes cross-thread frees itself
  } else {
    std::free(base);
  }
}

std::byte* ChunkPool::acquire() noexcept {
  if (in_use_ >= max_chunks_) return nullptr;
  std::byte* data;
  if (free_list_ != nullptr) {
    data = reinterpret_cast<std::byte*>(free_list_);
    free_list_ = free_list_->next;
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
  free_list_ = ::new (static_cast<void*>(data)) FreeChunk{free_list_};
  ++cached_;
}

}  // namespace ringlink
