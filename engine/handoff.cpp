#include "engine/handoff.hpp"

#include <cstring>
#include <new>

namespace ringlink {

Handoff::Handoff(unsigned workers, std::uint32_t quota, std::size_t ring_slots)
    : quota_(quota), blocks_(workers > 0 && quota > 0 ? (max_slots_per_reactor >> block_bits) : 0) {
  for (unsigned i = 0; i < workers; ++i) rings_.push_back(std::make_unique<SpscRing<InboundMessage>>(ring_slots));
}

Handoff::~Handoff() {
  for (auto& b : blocks_) delete[] b.load();
}

Handoff::Counts* Handoff::make_counts(std::uint32_t slot) noexcept {
  if (Counts* c = counts(slot)) return c;
  const std::size_t b = slot >> block_bits;
  if (b >= blocks_.size()) return nullptr;
  Counts* block = new (std::nothrow) Counts[block_slots];
  if (block == nullptr) return nullptr;
  blocks_[b].store(block, std::memory_order_release);
  return &block[slot & (block_slots - 1)];
}

bool Handoff::must_wait(std::uint32_t slot) const noexcept {
  if (!enabled()) return false;
  const auto& ring = *rings_[worker_of(slot)];
  if (ring.size_approx() >= ring.capacity()) return true;
  if (quota_ == 0) return false;
  const Counts* c = counts(slot);
  return c != nullptr && c->pushed - c->done.load(std::memory_order_acquire) >= quota_;
}

void Handoff::done(std::uint32_t slot) noexcept {
  if (Counts* c = counts(slot)) c->done.fetch_add(1, std::memory_order_release);
  pops_.fetch_add(1);
}

Handoff::PushResult Handoff::push(std::uint32_t slot, LinkId id, Opcode op, std::span<const std::byte> payload) noexcept {
  if (!enabled()) return PushResult::full;
  auto& ring = *rings_[worker_of(slot)];
  Counts* c = nullptr;
  if (quota_ > 0 && (c = make_counts(slot)) == nullptr) return PushResult::out_of_memory;
  InboundMessage msg;
  msg.id = id;
  msg.op = op;
  msg.payload = PayloadRef::allocate(payload.size());
  if (!msg.payload && !payload.empty()) return PushResult::out_of_memory;
  if (!payload.empty()) std::memcpy(msg.payload.data(), payload.data(), payload.size());
  // Counted before the push: the worker may handle it (and count it done)
  // before try_push returns.
  if (c != nullptr) ++c->pushed;
  if (!ring.try_push(std::move(msg))) {
    if (c != nullptr) --c->pushed;
    return PushResult::full;
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
