// Handoff: the reactor's side of InboundMode::workers. Messages leave the
// reactor through one single-producer ring per worker (a link always goes to
// the same worker, so its messages stay in order); a link that would
// overflow its ring, or that has `quota` messages not yet handled (in the
// ring, or taken by the worker and waiting their turn in its backlog), is
// parked until a worker makes room. No I/O and no link state here: the
// reactor decides what pausing means.
//
//   Handoff h(workers, quota, ring_slots);
//   const std::uint64_t seen = h.pops();        // before the check (see park)
//   if (h.must_wait(slot)) { pause; h.park(id); ask for space; h.recheck(seen); }
//   else h.push(slot, id, op, bytes);
//   // worker: h.pop(w, m); ... handle m ...; h.done(m.id.slot());
//
// Threads: push/must_wait/park/take_waiting on the reactor thread; pop and
// done on the worker; notify_space from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/payload.hpp"
#include "engine/ring_spsc.hpp"
#include "engine/types.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

// A message handed to a worker thread.
struct InboundMessage {
  LinkId id;
  Opcode op = Opcode::binary;
  PayloadRef payload;
};

class Handoff {
 public:
  enum class PushResult : std::uint8_t { ok, full, out_of_memory };

  // workers == 0: hand-off unused (every call is a no-op or fails).
  Handoff(unsigned workers, std::uint32_t quota, std::size_t ring_slots);
  ~Handoff();
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  bool enabled() const noexcept { return !rings_.empty(); }
  unsigned worker_of(std::uint32_t slot) const noexcept {
    return static_cast<unsigned>(slot % rings_.size());
  }
  // Would one more message of `slot` overflow its ring or its quota? A slot
  // counts every message pushed for it and not yet done(), whichever link of
  // the slot it was for: a new link in a slot may wait for the last messages
  // of the one before (they are handled at once, the link being gone).
  bool must_wait(std::uint32_t slot) const noexcept;
  // Copies the payload into a message of its own and pushes it.
  PushResult push(std::uint32_t slot, LinkId id, Opcode op, std::span<const std::byte> payload) noexcept;

  // Parking. The pop counter is read before must_wait() and compared after
  // the space request is made: a worker that popped in between could not
  // see the request and will not wake us, so recheck() raises the flag.
  std::uint64_t pops() const noexcept { return pops_.load(); }
  [[nodiscard]] bool park(LinkId id) noexcept;   // false: out of memory
  void recheck(std::uint64_t pops_seen) noexcept {
    if (pops_.load() != pops_seen) space_.store(true, std::memory_order_relaxed);
  }
  std::vector<LinkId> take_waiting() noexcept {
    std::vector<LinkId> w;
    w.swap(waiting_);
    return w;
  }
  bool has_waiting() const noexcept { return !waiting_.empty(); }

  // Worker thread: take a message; once it is handled, say so (its slot's
  // quota counts it until then).
  bool pop(unsigned worker, InboundMessage& out) noexcept;
  void done(std::uint32_t slot) noexcept;

  // "A worker made room": set from any thread; notify_space() answers true
  // when it raised the flag (the caller then wakes the reactor once).
  bool notify_space() noexcept { return !space_.exchange(true, std::memory_order_acq_rel); }
  void set_space() noexcept { space_.store(true, std::memory_order_relaxed); }
  bool space_pending() const noexcept { return space_.load(std::memory_order_relaxed); }
  bool take_space() noexcept { return space_.exchange(false, std::memory_order_acq_rel); }

 private:
  // Per link slot, messages pushed (reactor only) and done (worker writes,
  // reactor reads), in blocks that never move once made: a worker may be
  // counting one while the reactor makes the next. Both only grow; their
  // difference is what the slot has waiting.
  static constexpr unsigned block_bits = 12;
  static constexpr std::size_t block_slots = std::size_t{1} << block_bits;
  struct Counts {
    std::uint32_t pushed = 0;
    std::atomic<std::uint32_t> done{0};
  };
  Counts* counts(std::uint32_t slot) const noexcept {
    const std::size_t b = slot >> block_bits;
    if (b >= blocks_.size()) return nullptr;
    Counts* block = blocks_[b].load(std::memory_order_acquire);
    return block != nullptr ? &block[slot & (block_slots - 1)] : nullptr;
  }
  Counts* make_counts(std::uint32_t slot) noexcept;  // null when out of memory

  std::uint32_t quota_;
  std::vector<std::unique_ptr<SpscRing<InboundMessage>>> rings_;
  // Sized once (max slots / block_slots) when a quota is set; blocks made on
  // a slot's first push, freed with the Handoff.
  std::vector<std::atomic<Counts*>> blocks_;
  std::vector<LinkId> waiting_;
  std::atomic<bool> space_{false};
  std::atomic<std::uint64_t> pops_{0};  // pops and dones; seq_cst: pairs with the space request
};

}  // namespace ringlink
