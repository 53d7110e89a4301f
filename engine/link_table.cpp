#include "engine/link_table.hpp"

#include <new>

namespace ringlink {

LinkTable::LinkTable() : blocks_(new std::atomic<Link*>[max_blocks]) {
  for (std::uint32_t i = 0; i < max_blocks; ++i) blocks_[i].store(nullptr, std::memory_order_relaxed);
}

LinkTable::~LinkTable() {
  for (std::uint32_t i = 0; i < max_blocks; ++i) delete[] blocks_[i].load(std::memory_order_relaxed);
}

Link* LinkTable::take(std::uint32_t cap) noexcept {
  if (!free_slots_.empty()) {
    const std::uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return at(s);
  }
  const std::uint32_t s = used();
  if (s >= cap || s >= max_slots_per_reactor) return nullptr;
  if ((s & (block_size - 1)) == 0) {
    try {
      free_slots_.reserve(s + block_size);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    Link* b = new (std::nothrow) Link[block_size];
    if (b == nullptr) return nullptr;
    for (std::uint32_t i = 0; i < block_size; ++i) {
      b[i].slot_ = s + i;
      b[i].generation_.store(1, std::memory_order_relaxed);
    }
    blocks_[s >> block_bits].store(b, std::memory_order_release);
  }
  used_.store(s + 1, std::memory_order_release);
  return at(s);
}

void LinkTable::release(Link& l) noexcept {
  const std::uint32_t g = l.generation_.load(std::memory_order_relaxed) + 1;
  l.generation_.store(g == 0 ? 1 : g, std::memory_order_release);
  free_slots_.push_back(l.slot_);  // within the capacity reserved in take()
}

}  // namespace ringlink
