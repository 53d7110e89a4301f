#include "engine/timer_wheel.hpp"

#include <algorithm>
#include <bit>

namespace ringlink {

TimerWheel::TimerWheel(uint64_t now_ms, uint32_t tick_ms, uint32_t slots)
    : start_ms_(now_ms),
      tick_ms_(std::max<uint32_t>(tick_ms, 1)),
      slot_count_(std::bit_ceil(std::max<size_t>(slots, 64))),
      mask_(slot_count_ - 1),
      slots_(std::make_unique<TimerNode[]>(slot_count_)),
      bitmap_(std::make_unique<uint64_t[]>(slot_count_ / 64)) {
  for (size_t i = 0; i < slot_count_; ++i) init_list(slots_[i]);
}

TimerWheel::~TimerWheel() {
  // Nodes live in their owners, which may outlive the wheel and cancel later: leave none
  // pointing into the sentinels about to be freed.
  for (size_t s = 0; s < slot_count_; ++s) {
    TimerNode& head = slots_[s];
    while (head.next != &head) unlink(*head.next);
  }
}

uint64_t TimerWheel::tick_of_deadline(uint64_t deadline_ms) const noexcept {
  if (deadline_ms <= start_ms_) return 0;
  const uint64_t since = deadline_ms - start_ms_;
  return since / tick_ms_ + (since % tick_ms_ != 0 ? 1 : 0);
}

uint64_t TimerWheel::tick_of_now(uint64_t now_ms) const noexcept {
  return now_ms <= start_ms_ ? 0 : (now_ms - start_ms_) / tick_ms_;
}

void TimerWheel::schedule(TimerNode& node, uint64_t deadline_ms) noexcept {
  cancel(node);
  // A deadline in the past goes into the cursor's slot, which the next advance() visits
  // whatever `now` it is given.
  const uint64_t tick = std::max(tick_of_deadline(deadline_ms), cursor_tick_);
  node.expiry_tick = tick;
  const size_t slot = tick & mask_;
  link_tail(slots_[slot], node);
  mark(slot);
  ++size_;
}

void TimerWheel::cancel(TimerNode& node) noexcept {
  if (!node.armed()) return;
  unlink(node);
  --size_;
  // If the node sat in an advance()'s due list rather than its slot, this finds the slot in
  // whatever state it is and keeps its bit exact all the same.
  clear_if_empty(node.expiry_tick & mask_);
}

size_t TimerWheel::next_nonempty(size_t from) const noexcept {
  const size_t words = slot_count_ / 64;
  size_t w = from / 64;
  uint64_t bits = bitmap_[w] & (~uint64_t{0} << (from % 64));
  // words + 1 looks: the starting word is seen twice, first above `from`, last in full
  // (its bits below `from` are the end of the circle).
  for (size_t i = 0; i <= words; ++i) {
    if (bits != 0) {
      const size_t slot = w * 64 + static_cast<size_t>(std::countr_zero(bits));
      return (slot - from) & mask_;
    }
    w = (w + 1) & (words - 1);
    bits = bitmap_[w];
  }
  return slot_count_;
}

void TimerWheel::collect_slot(size_t slot, uint64_t now_tick, TimerNode& due) noexcept {
  TimerNode& head = slots_[slot];
  for (TimerNode* n = head.next; n != &head;) {
    TimerNode* next = n->next;
    // Nodes of later rounds share the slot and stay.
    if (n->expiry_tick <= now_tick) {
      unlink(*n);
      link_tail(due, *n);
    }
    n = next;
  }
  clear_if_empty(slot);
}

void TimerWheel::collect_due(uint64_t now_ms, TimerNode& due) noexcept {
  const uint64_t now_tick = tick_of_now(now_ms);
  if (now_tick < cursor_tick_) return;  // time went backwards: nothing can be newly due
  // Ticks cursor..now_tick inclusive; the cursor's own slot again because nodes scheduled
  // with a past deadline since the last call were put there.
  const uint64_t span = now_tick - cursor_tick_ + 1;
  const size_t limit = span >= slot_count_ ? slot_count_ : static_cast<size_t>(span);
  const size_t start = cursor_tick_ & mask_;
  for (size_t off = 0; off < limit; ++off) {
    const size_t skip = next_nonempty((start + off) & mask_);
    if (skip == slot_count_) break;  // wheel empty
    off += skip;
    if (off >= limit) break;
    collect_slot((start + off) & mask_, now_tick, due);
  }
  // Set before any callback runs, so that nodes scheduled from callbacks land at or after
  // now_tick and wait for the next call.
  cursor_tick_ = now_tick;
}

int64_t TimerWheel::ms_until_next(uint64_t now_ms) const noexcept {
  if (size_ == 0) return -1;
  const size_t skip = next_nonempty(cursor_tick_ & mask_);
  // Armed but in no slot: only possible from inside an advance() callback, for nodes still
  // on its due list. They are due now.
  if (skip == slot_count_) return 0;
  // Every armed node has expiry_tick >= cursor_tick_, and a node in the slot `skip` steps
  // ahead has expiry_tick = cursor_tick_ + skip + k * slot_count_, k >= 0; nodes in later
  // slots are later still. So no node is due before this tick's start.
  const uint64_t due_ms = start_ms_ + (cursor_tick_ + skip) * tick_ms_;
  return due_ms > now_ms ? static_cast<int64_t>(due_ms - now_ms) : 0;
}

}  // namespace ringlink
