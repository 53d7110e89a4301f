#include "engine/payload.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include <mimalloc.h>

#include "ringlink_config.hpp"

namespace ringlink {

namespace {

std::atomic<testing_hooks::PayloadFreeHook> free_hook{nullptr};

// The mi_* calls sit in the discarded branch when allocator=system, so that build neither
// emits nor links them (only the header is needed).
void* raw_alloc(size_t bytes) noexcept {
  if constexpr (config::allocator == config::Allocator::mimalloc) {
    return mi_malloc_aligned(bytes, 16);
  } else {
    return std::aligned_alloc(16, (bytes + 15) & ~size_t{15});
  }
}

void raw_free(void* p) noexcept {
  if constexpr (config::allocator == config::Allocator::mimalloc) {
    mi_free(p);
  } else {
    std::free(p);
  }
}

}  // namespace

void testing_hooks::set_payload_free_hook(PayloadFreeHook hook) noexcept {
  free_hook.store(hook, std::memory_order_release);
}

void Payload::destroy(Payload* p) noexcept {
  if (auto hook = free_hook.load(std::memory_order_relaxed); hook != nullptr) hook(p);
  p->~Payload();
  raw_free(p);
}

PayloadRef PayloadRef::allocate(size_t size) noexcept {
  if (size > std::numeric_limits<uint32_t>::max()) return {};
  void* mem = raw_alloc(Payload::data_offset + size);
  if (mem == nullptr) return {};
  const auto n = static_cast<uint32_t>(size);
  return adopt(::new (mem) Payload(n, n));
}

PayloadRef PayloadRef::allocate(size_t size, size_t trailer) noexcept {
  if (trailer > std::numeric_limits<uint8_t>::max() || size > std::numeric_limits<uint32_t>::max() - trailer) return {};
  void* mem = raw_alloc(Payload::data_offset + size + trailer);
  if (mem == nullptr) return {};
  const auto n = static_cast<uint32_t>(size);
  Payload* p = ::new (mem) Payload(n, n);  // capacity = size: set_size never reaches the trailer
  p->trailer_len_ = static_cast<uint8_t>(trailer);
  return adopt(p);
}

PayloadRef PayloadRef::copy_of(std::span<const std::byte> bytes) noexcept {
  PayloadRef r = allocate(bytes.size());
  if (r && !bytes.empty()) std::memcpy(r.data(), bytes.data(), bytes.size());
  return r;
}

}  // namespace ringlink
