// LinkTable: a reactor's link slots. Slots live in blocks that never move,
// so another thread may read a slot's generation (Reactor::alive) while the
// reactor adds blocks; a freed slot's generation is bumped, so a LinkId kept
// past its link's end finds nothing instead of its successor.
//
//   LinkTable t;
//   Link* l = t.take(cap);          // null at the cap or out of memory
//   LinkId id{reactor, l->slot, generation};
//   t.release(*l);                  // id no longer matches
//
// No I/O: what a link holds is the reactor's to free before release().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/link.hpp"

namespace ringlink {

class LinkTable {
 public:
  static constexpr std::uint32_t block_bits = 10;  // 1024 links (112 KiB) per block
  static constexpr std::uint32_t block_size = 1u << block_bits;
  static constexpr std::uint32_t max_blocks = max_slots_per_reactor >> block_bits;

  LinkTable();
  ~LinkTable();
  LinkTable(const LinkTable&) = delete;
  LinkTable& operator=(const LinkTable&) = delete;

  // Any thread (acquire): the slot's link, or null when never handed out.
  Link* at(std::uint32_t slot) const noexcept {
    if (slot >= used_.load(std::memory_order_acquire)) return nullptr;
    Link* b = blocks_[slot >> block_bits].load(std::memory_order_acquire);
    return b ? &b[slot & (block_size - 1)] : nullptr;
  }
  // A free slot (a released one first), or null when `cap` slots are in use
  // or memory ran out.
  Link* take(std::uint32_t cap) noexcept;
  // Bumps the slot's generation (never to 0, the invalid one) and frees it.
  void release(Link& link) noexcept;
  // Slots ever handed out: every live link has a slot below this.
  std::uint32_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  // Slots that may be handed out before the next block is needed.
  std::uint32_t capacity() const noexcept { return (used() + block_size - 1) & ~(block_size - 1); }

  template <class F>
  void for_each_slot(F&& f) {
    for (std::uint32_t s = 0, n = used(); s < n; ++s)
      if (Link* l = at(s)) f(*l);
  }

 private:
  std::unique_ptr<std::atomic<Link*>[]> blocks_;
  // Slots ever handed out; other threads read it (at) to refuse ids whose
  // slot was never issued. Written by the owning thread only.
  std::atomic<std::uint32_t> used_{0};
  std::vector<std::uint32_t> free_slots_;   // capacity reserved per block: release never allocates
};

}  // namespace ringlink
