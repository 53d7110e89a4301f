// Reference-counted byte buffers: encode once, queue on many links on many threads.
//
//   PayloadRef p = PayloadRef::allocate(n);     // empty (false) if memory ran out
//   if (!p) return SendResult::not_posted;
//   std::memcpy(p.data(), src, n);              // fill once, before sharing
//   // optional: store a pre-encoded frame header next to the bytes, once
//   p.frame_header_len() = encode_header(p.frame_header_storage(), ...);
//   for (auto& q : queues) q.try_push(PayloadRef{p});  // copy = one relaxed increment
//   // each holder drops its reference when done; the last one frees the memory
//
// Thread safety: references may be copied, moved and dropped on any thread. The bytes and
// the frame header are NOT synchronised: write them before the first copy is handed to
// another thread (the hand-off itself, e.g. a ring push, publishes them) and treat them as
// immutable afterwards.
//
// Memory: one allocation per payload, a small header followed by the bytes (16-byte
// aligned), from mimalloc when config::allocator is mimalloc (thread-safe: freeing on
// another thread than the allocating one is fine) and from malloc otherwise.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace ringlink {

class PayloadRef;

// The allocation header. Never constructed by users; reach it through a PayloadRef.
class Payload {
 public:
  static constexpr size_t max_frame_header = 14;  // 2 + 8 (length) + 4 (mask key)

  std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this) + data_offset; }
  const std::byte* data() const noexcept {
    return reinterpret_cast<const std::byte*>(this) + data_offset;
  }
  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return capacity_; }

 private:
  friend class PayloadRef;

  Payload(uint32_t size, uint32_t capacity) noexcept : size_(size), capacity_(capacity) {}

  static void destroy(Payload* p) noexcept;  // payload.cpp: the only place memory is freed

  std::atomic<uint32_t> refs_{1};
  uint32_t size_;
  uint32_t capacity_;
  uint8_t header_len_ = 0;
  uint8_t trailer_len_ = 0;
  std::byte frame_header_[max_frame_header]{};

 public:
  // Bytes from the start of the allocation to the data; keeps the data 16-byte aligned.
  static constexpr size_t data_offset = 32;
};

static_assert(sizeof(Payload) <= Payload::data_offset);

class PayloadRef {
 public:
  PayloadRef() noexcept = default;
  ~PayloadRef() { reset(); }

  PayloadRef(const PayloadRef& other) noexcept : p_(other.p_) { add_ref(); }
  PayloadRef(PayloadRef&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  PayloadRef& operator=(const PayloadRef& other) noexcept {
    if (p_ != other.p_) {
      PayloadRef copy(other);
      swap(copy);
    }
    return *this;
  }
  PayloadRef& operator=(PayloadRef&& other) noexcept {
    if (this != &other) {
      reset();
      p_ = std::exchange(other.p_, nullptr);
    }
    return *this;
  }

  // A payload of exactly `size` bytes (uninitialised), use_count() == 1. Returns an empty
  // reference when memory is exhausted or size exceeds 4 GiB - 1. Size 0 is valid.
  static PayloadRef allocate(size_t size) noexcept;
  // As allocate(size), followed by `trailer` (< 256) bytes that are not part of the
  // payload and never sent: the engine's own note about the bytes (a publication keeps
  // its topic and number there, so a link that drops the frame can tell which it lost).
  static PayloadRef allocate(size_t size, size_t trailer) noexcept;
  // As allocate(size), with the bytes copied from `bytes`.
  static PayloadRef copy_of(std::span<const std::byte> bytes) noexcept;

  explicit operator bool() const noexcept { return p_ != nullptr; }

  // Empty reference: nullptr / 0 / empty span.
  std::byte* data() const noexcept { return p_ != nullptr ? p_->data() : nullptr; }
  size_t size() const noexcept { return p_ != nullptr ? p_->size_ : 0; }
  std::span<std::byte> bytes() const noexcept { return {data(), size()}; }
  size_t capacity() const noexcept { return p_ != nullptr ? p_->capacity_ : 0; }

  // Shrinks (or regrows up to capacity()) the visible size; for a producer that allocated
  // a worst case and filled less. Only before the payload is shared. False if n > capacity.
  bool set_size(size_t n) noexcept {
    if (p_ == nullptr || n > p_->capacity_) return false;
    p_->size_ = static_cast<uint32_t>(n);
    return true;
  }

  // Precondition for the three below: *this is not empty.
  std::span<std::byte, Payload::max_frame_header> frame_header_storage() const noexcept {
    return std::span<std::byte, Payload::max_frame_header>(p_->frame_header_);
  }
  uint8_t& frame_header_len() const noexcept { return p_->header_len_; }
  // The stored header: the first frame_header_len() bytes of the storage.
  std::span<const std::byte> frame_header() const noexcept {
    return {p_->frame_header_, p_->header_len_};
  }

  // The trailer given to allocate(size, trailer); empty for other payloads.
  std::span<std::byte> trailer() const noexcept {
    return p_ != nullptr ? std::span<std::byte>(p_->data() + p_->capacity_, p_->trailer_len_) : std::span<std::byte>{};
  }

  // Approximate under concurrency (a relaxed read); 0 for an empty reference.
  uint32_t use_count() const noexcept {
    return p_ != nullptr ? p_->refs_.load(std::memory_order_relaxed) : 0;
  }

  void reset() noexcept {
    if (p_ == nullptr) return;
    // acq_rel: the releasing side publishes its last reads of the bytes; the freeing side
    // acquires everything the other holders did before it frees.
    if (p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Payload::destroy(p_);
    p_ = nullptr;
  }

  void swap(PayloadRef& other) noexcept { std::swap(p_, other.p_); }

  Payload* get() const noexcept { return p_; }

  // Raw hand-over for places that can only carry a pointer (a packed completion cookie):
  // detach() gives up this reference without dropping it; adopt() takes one back.
  [[nodiscard]] Payload* detach() noexcept { return std::exchange(p_, nullptr); }
  static PayloadRef adopt(Payload* p) noexcept {
    PayloadRef r;
    r.p_ = p;
    return r;
  }

  friend bool operator==(const PayloadRef& a, const PayloadRef& b) noexcept { return a.p_ == b.p_; }

 private:
  void add_ref() const noexcept {
    // Relaxed: a new reference can only be made from an existing one, which already keeps
    // the payload alive; no ordering with the bytes is needed here.
    if (p_ != nullptr) p_->refs_.fetch_add(1, std::memory_order_relaxed);
  }

  Payload* p_ = nullptr;
};

namespace testing_hooks {
// Called (if set) with each payload just before its memory is freed; for tests that count
// frees. Not for production use: it is one relaxed load per free.
using PayloadFreeHook = void (*)(const Payload*) noexcept;
void set_payload_free_hook(PayloadFreeHook hook) noexcept;
}  // namespace testing_hooks

}  // namespace ringlink
