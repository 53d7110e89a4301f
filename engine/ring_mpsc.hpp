// Bounded multi-producer single-consumer ring: how other threads hand commands to a reactor.
//
//   MpscRing<Command> inbox{1024};              // capacity rounded up to a power of two (>= 2)
//   // any thread                               // the owning reactor thread only
//   if (!inbox.try_push(std::move(cmd))) {      Command c;
//     /* full: report backpressure */           while (inbox.try_pop(c)) run(c);
//   }
//
// try_push never blocks and never allocates: it returns false when the ring is full and
// then leaves its argument untouched. try_pop must only ever be called from one thread.
//
// Design: every slot carries a sequence number (the bounded-queue scheme due to Dmitry
// Vyukov). A producer claims a position with one CAS on the shared enqueue index, writes the
// element, then publishes it by advancing the slot's sequence; the consumer reads the slot
// only once its sequence says "published for this lap". Consequence worth knowing: if a
// producer is descheduled between its claim and its publish, the consumer sees the ring as
// empty at that slot (elements pushed after it wait behind it) until that producer resumes.
// Nothing blocks; the elements are delivered in claim order once published.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace ringlink {

template <typename T>
class alignas(64) MpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>, "ring elements must move without throwing");

 public:
  // `requested` is rounded up to a power of two, at least 2 (with one slot a published
  // sequence number would equal the next lap's free sequence). On allocation failure
  // valid() is false, capacity() is 0 and every try_push fails.
  explicit MpscRing(size_t requested) noexcept {
    const size_t cap = std::bit_ceil(std::clamp<size_t>(requested, 2, size_t{1} << 40));
    cells_ = new (std::nothrow) Cell[cap];
    if (cells_ == nullptr) return;
    for (size_t i = 0; i < cap; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
    capacity_ = cap;
    mask_ = cap - 1;
  }

  // No producer may be running any more.
  ~MpscRing() {
    if (cells_ == nullptr) return;
    // Destroy what was pushed but never popped.
    for (size_t pos = dequeue_pos_.load(std::memory_order_relaxed);; ++pos) {
      Cell& cell = cells_[pos & mask_];
      if (cell.seq.load(std::memory_order_acquire) != pos + 1) break;
      std::launder(reinterpret_cast<T*>(cell.raw))->~T();
      cell.seq.store(pos + capacity_, std::memory_order_relaxed);
    }
    delete[] cells_;
  }

  MpscRing(const MpscRing&) = delete;
  MpscRing& operator=(const MpscRing&) = delete;

  bool valid() const noexcept { return cells_ != nullptr; }
  size_t capacity() const noexcept { return capacity_; }

  // Any thread.
  [[nodiscard]] bool try_push(T&& value) noexcept { return try_emplace(std::move(value)); }

  [[nodiscard]] bool try_push(const T& value) noexcept
    requires std::is_nothrow_copy_constructible_v<T>
  {
    return try_emplace(value);
  }

  template <typename... Args>
  [[nodiscard]] bool try_emplace(Args&&... args) noexcept {
    if (cells_ == nullptr) return false;
    size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    Cell* cell;
    for (;;) {
      cell = &cells_[pos & mask_];
      const size_t seq = cell->seq.load(std::memory_order_acquire);
      const auto lag = static_cast<std::intptr_t>(seq - pos);
      if (lag == 0) {
        // Free for this lap: claim it. Relaxed is enough for the index itself; the element
        // is published through the slot's sequence (release below).
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
        // `pos` was reloaded by the failed CAS.
      } else if (lag < 0) {
        // The slot still holds the element from the previous lap: the ring is full.
        return false;
      } else {
        // Another producer claimed this position since we read the index.
        pos = enqueue_pos_.load(std::memory_order_relaxed);
      }
    }
    ::new (static_cast<void*>(cell->raw)) T(std::forward<Args>(args)...);
    cell->seq.store(pos + 1, std::memory_order_release);
    return true;
  }

  // Consumer thread only.
  [[nodiscard]] bool try_pop(T& out) noexcept {
    if (cells_ == nullptr) return false;
    const size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    Cell& cell = cells_[pos & mask_];
    if (cell.seq.load(std::memory_order_acquire) != pos + 1) return false;  // empty or unpublished
    T* item = std::launder(reinterpret_cast<T*>(cell.raw));
    out = std::move(*item);
    item->~T();
    // Free the slot for the producer one lap ahead.
    cell.seq.store(pos + capacity_, std::memory_order_release);
    dequeue_pos_.store(pos + 1, std::memory_order_relaxed);
    return true;
  }

  // Any thread: a snapshot, counting claimed-but-unpublished elements too.
  size_t size_approx() const noexcept {
    const size_t r = dequeue_pos_.load(std::memory_order_acquire);
    const size_t w = enqueue_pos_.load(std::memory_order_acquire);
    return w > r ? std::min(w - r, capacity_) : 0;
  }
  bool empty_approx() const noexcept { return size_approx() == 0; }

 private:
  struct Cell {
    std::atomic<size_t> seq{0};
    alignas(T) std::byte raw[sizeof(T)];
  };

  // Read-only after construction.
  Cell* cells_ = nullptr;
  size_t capacity_ = 0;
  size_t mask_ = 0;

  alignas(64) std::atomic<size_t> enqueue_pos_{0};  // contended by producers
  alignas(64) std::atomic<size_t> dequeue_pos_{0};  // written by the consumer only
};

}  // namespace ringlink
