// Hashed timer wheel with intrusive nodes: handshake, idle, ping and close timeouts.
//
//   struct Link { TimerNode timer; ... };       // embed a node; recover the owner from it
//   TimerWheel wheel{clock()};                  // 10 ms ticks, 4096 slots (~41 s per round)
//   wheel.schedule(link.timer, clock() + 5000); // O(1); re-schedules if already armed
//   wheel.cancel(link.timer);                   // O(1); no-op if not armed
//   // each reactor turn:
//   int64_t wait = wheel.ms_until_next(clock()); // -1: nothing armed (sleep indefinitely)
//   wheel.advance(clock(), [](TimerNode& n) { on_timeout(link_from(n)); });
//
// No allocation after construction, no scanning of all timers per turn, nothing thrown.
//
// Time and rounding. Time is split into ticks of tick_ms counted from the `now_ms` given to
// the constructor. A deadline is rounded UP to a tick boundary, and advance(now) fires a
// node only once `now` has reached that boundary; so a timer never fires before its
// deadline, and fires at most one tick after it provided advance() is called at least that
// often. A deadline already in the past fires on the next advance().
//
// Callbacks. advance() first collects every due node, then unlinks (disarms) each one just
// before calling on_expire(node). A callback may therefore re-schedule its own node, or
// schedule or cancel any other node, including one that is due in the same advance() (a
// cancelled one then does not fire). A node re-scheduled from a callback never fires again
// within the same advance(), even with a deadline in the past: it waits for the next call.
// Within one advance() nodes fire in tick order; nodes in the same tick in the order they
// were scheduled.
//
// Large time steps. If advance() is called after more than one full round
// (slots * tick_ms) has passed, it visits every non-empty slot once and fires everything
// that is due: nothing is lost or fired early, but nodes due in different rounds that share
// a slot fire in slot order, not strictly in deadline order.
//
// ms_until_next() is a lower bound found from a bitmap of non-empty slots (one 64-bit word
// per 64 slots): a node more than one round away can make it answer early (a harmless
// spurious wakeup), it never answers later than the moment the next node becomes due.
//
// Not thread-safe: one wheel per reactor, used on its thread. Destroying the wheel disarms
// every node still in it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ringlink {

struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  uint64_t expiry_tick = 0;  // owned by the wheel

  bool armed() const noexcept { return next != nullptr; }
};

class TimerWheel {
 public:
  // `slots` is rounded up to a power of two, at least 64; tick_ms of 0 is treated as 1.
  // Allocates the slot sentinels (slots * sizeof(TimerNode)) and the bitmap once, here;
  // like any allocation at reactor start, failure is not recoverable.
  explicit TimerWheel(uint64_t now_ms, uint32_t tick_ms = 10, uint32_t slots = 4096);
  ~TimerWheel();

  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms `node` to fire at the first advance() with now >= deadline_ms rounded up to a tick.
  // An armed node is moved (its old deadline is forgotten).
  void schedule(TimerNode& node, uint64_t deadline_ms) noexcept;
  // Disarms `node`; no-op if it is not armed.
  void cancel(TimerNode& node) noexcept;

  // Fires every node that is due at `now_ms` (see the header comment); returns how many.
  // `on_expire` is called as on_expire(TimerNode&). A `now_ms` earlier than a previous
  // call's fires nothing.
  template <typename F>
  size_t advance(uint64_t now_ms, F&& on_expire);

  // -1 when nothing is armed; otherwise ms (>= 0) that may pass before the next node becomes
  // due, possibly less than the real figure (see above), never more.
  int64_t ms_until_next(uint64_t now_ms) const noexcept;

  size_t size() const noexcept { return size_; }
  uint32_t tick_ms() const noexcept { return tick_ms_; }
  size_t slot_count() const noexcept { return slot_count_; }
  // When an armed node becomes due: its deadline rounded up to the tick (or, for a deadline
  // in the past, the last tick advance() reached).
  uint64_t due_ms(const TimerNode& node) const noexcept {
    return start_ms_ + node.expiry_tick * tick_ms_;
  }

 private:
  // A circular doubly-linked list with a sentinel: unlinking needs no knowledge of the list.
  static void init_list(TimerNode& head) noexcept { head.prev = head.next = &head; }
  static void link_tail(TimerNode& head, TimerNode& node) noexcept {
    node.prev = head.prev;
    node.next = &head;
    head.prev->next = &node;
    head.prev = &node;
  }
  static void unlink(TimerNode& node) noexcept {
    node.prev->next = node.next;
    node.next->prev = node.prev;
    node.prev = node.next = nullptr;
  }

  // The due list of one advance() call. It clears what a callback did not get to if the
  // callback unwinds, so no node is left pointing at a dead sentinel.
  struct DueList {
    explicit DueList(TimerWheel& w) noexcept : wheel(w) { init_list(head); }
    ~DueList() {
      while (head.next != &head) {
        TimerNode* n = head.next;
        unlink(*n);
        --wheel.size_;
      }
    }
    DueList(const DueList&) = delete;
    DueList& operator=(const DueList&) = delete;
    TimerWheel& wheel;
    TimerNode head;
  };

  // Moves every node due at `now_ms` onto `due` (in firing order) and moves the cursor.
  void collect_due(uint64_t now_ms, TimerNode& due) noexcept;
  void collect_slot(size_t slot, uint64_t now_tick, TimerNode& due) noexcept;
  uint64_t tick_of_deadline(uint64_t deadline_ms) const noexcept;  // rounds up
  uint64_t tick_of_now(uint64_t now_ms) const noexcept;            // rounds down
  void mark(size_t slot) noexcept { bitmap_[slot >> 6] |= uint64_t{1} << (slot & 63); }
  void clear_if_empty(size_t slot) noexcept {
    if (slots_[slot].next == &slots_[slot]) bitmap_[slot >> 6] &= ~(uint64_t{1} << (slot & 63));
  }
  // Offset (0..slot_count_-1) from `from` to the first non-empty slot, circularly, or
  // slot_count_ if all are empty.
  size_t next_nonempty(size_t from) const noexcept;

  uint64_t start_ms_;
  uint32_t tick_ms_;
  size_t slot_count_;
  size_t mask_;
  // Every armed node has expiry_tick >= cursor_tick_: the tick of the latest advance().
  uint64_t cursor_tick_ = 0;
  size_t size_ = 0;
  std::unique_ptr<TimerNode[]> slots_;  // sentinels; heap-allocated so they never move
  std::unique_ptr<uint64_t[]> bitmap_;  // bit set <=> slot list non-empty
};

template <typename F>
size_t TimerWheel::advance(uint64_t now_ms, F&& on_expire) {
  if (size_ == 0) {
    // Still move the cursor, so that deadlines already past are measured from now.
    const uint64_t now_tick = tick_of_now(now_ms);
    if (now_tick > cursor_tick_) cursor_tick_ = now_tick;
    return 0;
  }
  DueList due(*this);
  collect_due(now_ms, due.head);
  size_t fired = 0;
  while (due.head.next != &due.head) {
    TimerNode& node = *due.head.next;
    unlink(node);
    --size_;
    ++fired;
    on_expire(node);
  }
  return fired;
}

}  // namespace ringlink
