// Handoff: the reactor's side of InboundMode::workers. Messages leave the
// reactor through one single-producer ring per worker (a link always goes to
// the same worker, so its messages stay in order); a link that would
// overflow its ring, or that has more than its quota waiting, is parked
// until a worker makes room. No I/O and no link state here: the reactor
// decides what pausing means.
//
//   Handoff h(workers, quota);
//   const std::uint64_t seen = h.pops();        // before the check (see park)
//   if (h.must_wait(slot)) { pause; h.park(id); ask for space; h.recheck(seen); }
//   else h.push(slot, id, op, bytes);
//
// Threads: push/must_wait/park/take_waiting on the reactor thread; pop on
// the worker; notify_space from any thread.
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

  bool enabled() const noexcept { return !rings_.empty(); }
  unsigned worker_of(std::uint32_t slot) const noexcept {
    return static_cast<unsigned>(slot % rings_.size());
  }
  // A new link in `slot`: nothing of it is in a ring yet.
  void forget(std::uint32_t slot) noexcept;

  // Would one more message of `slot` overflow its ring or its quota?
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

  // Worker thread.
  bool pop(unsigned worker, InboundMessage& out) noexcept;

  // "A worker made room": set from any thread; notify_space() answers true
  // when it raised the flag (the caller then wakes the reactor once).
  bool notify_space() noexcept { return !space_.exchange(true, std::memory_order_acq_rel); }
  void set_space() noexcept { space_.store(true, std::memory_order_relaxed); }
  bool space_pending() const noexcept { return space_.load(std::memory_order_relaxed); }
  bool take_space() noexcept { return space_.exchange(false, std::memory_order_acq_rel); }

 private:
  // Per link slot: the ring's push count after the link's last message, and
  // how many it pushed since it last had none waiting.
  struct SlotRun {
    std::uint64_t last_push = 0;
    std::uint32_t run = 0;
  };

  std::uint32_t quota_;
  std::vector<std::unique_ptr<SpscRing<InboundMessage>>> rings_;
  std::vector<SlotRun> runs_;
  std::vector<LinkId> waiting_;
  std::atomic<bool> space_{false};
  std::atomic<std::uint64_t> pops_{0};  // seq_cst: pairs with the space request
};

}  // namespace ringlink
