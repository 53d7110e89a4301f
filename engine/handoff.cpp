#include "engine/handoff.hpp"

#include <cstring>
#include <new>

namespace ringlink {

Handoff::Handoff(unsigned workers, std::uint32_t quota, std::size_t ring_slots) : quota_(quota) {
  for (unsigned i = 0; i < workers; ++i) rings_.push_back(std::make_unique<SpscRing<InboundMessage>>(ring_slots));
}

void Handoff::forget(std::uint32_t slot) noexcept {
  if (slot < runs_.size()) runs_[slot] = SlotRun{};
}

bool Handoff::must_wait(std::uint32_t slot) const noexcept {
  if (!enabled()) return false;
  const auto& ring = *rings_[worker_of(slot)];
  if (ring.size_approx() >= ring.capacity()) return true;
  if (quota_ == 0 || slot >= runs_.size()) return false;
  const SlotRun& r = runs_[slot];
  // None of its messages left in the ring: its run starts again.
  return r.last_push > ring.popped() && r.run >= quota_;
}

Handoff::PushResult Handoff::push(std::uint32_t slot, LinkId id, Opcode op, std::span<const std::byte> payload) noexcept {
  if (!enabled()) return PushResult::full;
  auto& ring = *rings_[worker_of(slot)];
  if (quota_ > 0 && slot >= runs_.size()) {
    try {
      runs_.resize(slot + 1024);
    } catch (const std::bad_alloc&) {
      return PushResult::out_of_memory;
    }
  }
  InboundMessage msg;
  msg.id = id;
  msg.op = op;
  msg.payload = PayloadRef::allocate(payload.size());
  if (!msg.payload && !payload.empty()) return PushResult::out_of_memory;
  if (!payload.empty()) std::memcpy(msg.payload.data(), payload.data(), payload.size());
  if (!ring.try_push(std::move(msg))) return PushResult::full;
  if (quota_ > 0) {
    SlotRun& r = runs_[slot];
    if (r.last_push <= ring.popped()) r.run = 0;
    r.last_push = ring.pushed();
    ++r.run;
  }
  return PushResult::ok;
}

bool Handoff::park(LinkId id) noexcept {
  try {
    waiting_.push_back(id);
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

bool Handoff::pop(unsigned worker, InboundMessage& out) noexcept {
  if (worker >= rings_.size() || !rings_[worker]->try_pop(out)) return false;
  pops_.fetch_add(1);
  return true;
}

}  // namespace ringlink
