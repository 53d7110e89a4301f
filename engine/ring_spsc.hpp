// Bounded single-producer single-consumer ring.
//
//   SpscRing<Frame> ring{256};                  // capacity rounded up to a power of two
//   if (!ring.valid()) { /* storage allocation failed: refuse the work */ }
//   // producer thread                          // consumer thread
//   if (!ring.try_push(std::move(f))) {...}     Frame f;  while (ring.try_pop(f)) {...}
//
// Exactly one thread may push and exactly one (possibly the same) may pop at a time; the
// ring never blocks, never allocates after construction and never throws. A failed
// try_push leaves its argument untouched, so the caller still owns it (backpressure).
//
// Layout: the producer's index and its cached copy of the consumer's index share one cache
// line; the consumer's index and its cached copy of the producer's share another; so in the
// common case each side touches only its own line and reads the other's index only when its
// cached copy says the ring looks full (producer) or empty (consumer). Indices grow without
// wrapping (64-bit) and are masked on use, so all `capacity()` slots are usable.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace ringlink {

template <typename T>
class alignas(64) SpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>, "ring elements must move without throwing");

 public:
  // `requested` is rounded up to a power of two (at least 1). On allocation failure the ring
  // is empty and full at once: valid() is false, every try_push fails, capacity() is 0.
  explicit SpscRing(size_t requested) noexcept {
    const size_t cap = std::bit_ceil(std::clamp<size_t>(requested, 1, size_t{1} << 40));
    slots_ = new (std::nothrow) Slot[cap];
    if (slots_ != nullptr) {
      capacity_ = cap;
      mask_ = cap - 1;
    }
  }

  ~SpscRing() {
    if (slots_ == nullptr) return;
    for (size_t r = read_idx_.load(std::memory_order_relaxed),
                w = write_idx_.load(std::memory_order_relaxed);
         r != w; ++r) {
      slot(r)->~T();
    }
    delete[] slots_;
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  bool valid() const noexcept { return slots_ != nullptr; }
  size_t capacity() const noexcept { return capacity_; }

  // Producer side.
  [[nodiscard]] bool try_push(T&& value) noexcept { return try_emplace(std::move(value)); }

  [[nodiscard]] bool try_push(const T& value) noexcept
    requires std::is_nothrow_copy_constructible_v<T>
  {
    return try_emplace(value);
  }

  template <typename... Args>
  [[nodiscard]] bool try_emplace(Args&&... args) noexcept {
    const size_t w = write_idx_.load(std::memory_order_relaxed);
    if (w - read_idx_cache_ == capacity_) {
      read_idx_cache_ = read_idx_.load(std::memory_order_acquire);
      if (w - read_idx_cache_ == capacity_) return false;
    }
    ::new (static_cast<void*>(slot(w))) T(std::forward<Args>(args)...);
    write_idx_.store(w + 1, std::memory_order_release);
    return true;
  }

  // Consumer side.
  [[nodiscard]] bool try_pop(T& out) noexcept {
    T* head = front();
    if (head == nullptr) return false;
    out = std::move(*head);
    pop();
    return true;
  }

  // The oldest element, or nullptr when empty; stays valid until pop(). Lets the consumer
  // look at (or partly consume) an element without moving it out.
  T* front() noexcept {
    const size_t r = read_idx_.load(std::memory_order_relaxed);
    if (r == write_idx_cache_) {
      write_idx_cache_ = write_idx_.load(std::memory_order_acquire);
      if (r == write_idx_cache_) return nullptr;
    }
    return slot(r);
  }

  // Destroys the oldest element. Precondition: front() returned non-null since the last pop().
  void pop() noexcept {
    const size_t r = read_idx_.load(std::memory_order_relaxed);
    slot(r)->~T();
    read_idx_.store(r + 1, std::memory_order_release);
  }

  // Either side, any thread: a snapshot that may be stale by the time it is used.
  size_t size_approx() const noexcept {
    // Reading the consumer index first guarantees w >= r (the producer index only grows).
    const size_t r = read_idx_.load(std::memory_order_acquire);
    const size_t w = write_idx_.load(std::memory_order_acquire);
    return std::min(w - r, capacity_);
  }
  bool empty_approx() const noexcept { return size_approx() == 0; }
  // Producer side: elements pushed so far. Any thread: elements popped so far
  // (a lower bound by the time it is used). Both only grow.
  size_t pushed() const noexcept { return write_idx_.load(std::memory_order_relaxed); }
  size_t popped() const noexcept { return read_idx_.load(std::memory_order_acquire); }

 private:
  struct Slot {
    alignas(T) std::byte raw[sizeof(T)];
  };

  T* slot(size_t index) const noexcept {
    return std::launder(reinterpret_cast<T*>(slots_[index & mask_].raw));
  }

  // Read-only after construction; shared by both sides.
  Slot* slots_ = nullptr;
  size_t capacity_ = 0;
  size_t mask_ = 0;

  alignas(64) std::atomic<size_t> write_idx_{0};
  size_t read_idx_cache_ = 0;  // producer's last view of read_idx_

  alignas(64) std::atomic<size_t> read_idx_{0};
  size_t write_idx_cache_ = 0;  // consumer's last view of write_idx_
};

}  // namespace ringlink
