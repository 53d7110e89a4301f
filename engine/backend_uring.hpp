// The io_uring backend: completions straight from the kernel (see backend.hpp
// for the seam).
//
// - Accepting is one multishot accept per listener.
// - Each link has one multishot receive that picks its buffers from a
//   provided buffer ring. The ring's buffers are the engine's pool chunks, so
//   the chunk the kernel filled is handed to the reactor as is
//   (on_received_buffer): a message inside it reaches the handler without a
//   copy. Chunks go back to the pool when the link is done with them, and the
//   ring is refilled from the pool before every submission, up to a fill that
//   starts at 64 chunks and doubles (to uring_buffers) whenever a turn used
//   half of it or the ring ran dry, and halves (to 16) every quarter second in
//   which no turn used a quarter of it. Once the input has gone quiet, trim() hands the
//   pages of the chunks waiting in the ring back to the kernel: an idle
//   server's ring costs no memory, whatever the burst before it touched. When the ring ran
//   dry (-ENOBUFS ends the multishot) the link waits on a list and is re-armed
//   once buffers are back: nothing is lost (the bytes stay in the socket) and
//   nothing spins. Where the kernel has receive bundles (6.10), one
//   completion brings as many buffers as the socket had bytes for: they are
//   the ring's next entries from the first buffer's place, and reach the
//   reactor in order.
// - Sends are one sendmsg per link in flight (order kept), built by the
//   reactor in the link's send queue, which stays put until the completion.
//   All links' sends of a loop turn go to the kernel with the next wait: one
//   io_uring_enter per turn submits and waits together.
// - Other threads wake the loop through an eventfd the ring reads.
// - Closing a link cancels its requests; the reactor frees the link's memory
//   only once busy() says the kernel let go of it.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/buffer_pool.hpp"
#include "engine/fd.hpp"
#include "engine/socket.hpp"
#include "engine/wakeup.hpp"
#include "ringlink_config.hpp"

// liburing 2.3's headers predate receive bundles (Linux 6.10); the values
// are the kernel's ABI.
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

namespace ringlink {

class UringBackend {
 public:
  static constexpr const char* name() noexcept { return "io_uring"; }
  // send() only queues; the sink hears on_sent() at the completion.
  static constexpr bool inline_sends() noexcept { return false; }

  UringBackend() = default;
  ~UringBackend();
  UringBackend(const UringBackend&) = delete;
  UringBackend& operator=(const UringBackend&) = delete;

  // Sets up the ring, probes what the engine needs and registers the buffer
  // ring. On failure returns -errno and, in *why, what was missing.
  int open(ChunkPool& pool, std::string* why = nullptr) noexcept;
  // Cancels everything, waits (bounded) for the kernel to let go and tears
  // the ring down; chunks still in the buffer ring go back to the pool.
  void close() noexcept;
  void wake() noexcept { wakeup_.wake(); }

  int add_listener(int fd, std::uint32_t index) noexcept;
  int set_accepting(int fd, std::uint32_t index, bool on) noexcept;
  // Grows the per-link bookkeeping when `key` names a slot not seen before;
  // -ENOMEM when it cannot. Every other call taking a link's key needs the
  // link added first (remove_link() excepted: a refused link has no requests).
  int add_link(int fd, std::uint64_t key) noexcept;
  void remove_link(int fd, std::uint64_t key) noexcept;
  // Does the kernel still hold requests (and so memory) of the link in `slot`?
  bool busy(std::uint32_t slot) const noexcept { return slot < slots_.size() && (slots_[slot] & (s_recv | s_send)) != 0; }

  // Queues a sendmsg; `msg` and what it points to must stay put until the
  // sink's on_sent(). Returns -EINPROGRESS, or -errno when nothing was queued.
  // `zero_copy` (large payloads, see the zc_threshold flag): SENDMSG_ZC, and
  // on_sent() waits for the kernel's notification that it let go of the pages.
  ssize_t send(std::uint64_t key, int fd, msghdr& msg, bool zero_copy = false) noexcept;
  // The seam's synchronous write: a sendmsg from this thread, past the ring.
  // Safe only while no send of this link is in flight, which the caller
  // guarantees: a queued sendmsg may not have run yet (it is submitted with
  // the next wait, or parked in the kernel until the socket has room), and
  // nothing would order it against this one, so the peer could get the bytes
  // out of order. With none in flight the ring holds nothing of this link's
  // stream and these are simply its next bytes. The link's receive is
  // untouched: reading and writing a socket are independent.
  static ssize_t send_now(std::uint64_t, int fd, msghdr& msg) noexcept { return send_msg(fd, msg); }

  // The reactor calls this when a link may read again (resumed): re-arms its
  // receive if it is not armed. Never reads inline; returns false.
  template <class Sink, class LinkT>
  bool read_pass(Sink& sink, LinkT& link, int fd, bool hangup) noexcept;

  // Submits what the turn queued and waits up to timeout_ms (-1: no limit)
  // for completions, in one io_uring_enter; then dispatches them.
  template <class Sink>
  int wait(int timeout_ms, Sink& sink) noexcept;

  // Called every quarter second while input comes. Lowers the ring's fill when the busiest turn
  // since the last call used a small part of it, and with `quiet` (little
  // input since) hands the pages of the chunks waiting in the ring back to
  // the kernel: it fills them with copy_to_user, which faults fresh pages in,
  // so an idle ring costs no memory. Returns the pages handed back. Never
  // with SQPOLL, whose kernel thread may be filling a chunk at that moment;
  // otherwise receives complete only inside this thread's io_uring_enter.
  std::size_t trim(bool quiet) noexcept;
  // Pool chunks in the buffer ring, waiting for the kernel to fill them.
  std::size_t lent_buffers() const noexcept { return buffers_.size() - free_ids_.size(); }
  // Times a receive found the ring empty (-ENOBUFS).
  std::uint64_t buffer_ring_empty() const noexcept { return ring_empty_; }

 private:
  // s_starved: the link's receive ended on -ENOBUFS; it waits for chunks.
  enum : std::uint8_t { s_recv = 1, s_send = 2, s_cancel = 4, s_starved = 8 };
  enum : std::uint64_t { op_recv = 1, op_send = 2, op_accept = 3, op_wake = 4, op_cancel = 5 };
  static constexpr unsigned op_shift = 56;
  static constexpr std::uint64_t low_mask = (1ull << op_shift) - 1;
  static constexpr std::uint16_t buffer_group = 0;
  static constexpr unsigned max_listeners = 8;
  static constexpr std::size_t min_fill = 16;  // trim() lowers the ring's fill no further

  static std::uint32_t slot_of(std::uint64_t key) noexcept { return static_cast<std::uint32_t>(key >> 32) & 0xFFFFFF; }
  std::uint64_t key_of(std::uint64_t user_data) const noexcept { return (user_data & low_mask) | reactor_bits_; }

  io_uring_sqe* get_sqe() noexcept;
  void arm_recv(int fd, std::uint64_t key) noexcept;
  void arm_accept(std::uint32_t index) noexcept;
  void arm_wake() noexcept;
  void cancel(std::uint64_t user_data) noexcept;
  void refill() noexcept;
  void grow_fill() noexcept;
  std::uint8_t& slot_state(std::uint32_t slot) noexcept { return slots_[slot]; }
  int grow_slots(std::uint32_t slot) noexcept;
  bool zc_room(std::uint32_t slot) noexcept;
  void forget_starved(std::uint32_t slot) noexcept;
  template <class Sink>
  void complete(Sink& sink, std::uint64_t user_data, int res, unsigned flags) noexcept;
  template <class Sink>
  void rearm_starved(Sink& sink) noexcept;
  template <class Sink>
  bool deliver(Sink& sink, std::uint64_t key, std::uint16_t first, int res, bool more) noexcept;

  io_uring ring_{};
  bool ring_open_ = false;
  ChunkPool* pool_ = nullptr;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::size_t buf_ring_bytes_ = 0;
  // Completions must not allocate: open() gives the buffer lists their full
  // size, add_link() the per-slot ones, and the lists that grow during a
  // turn are bounded by that room (free_ids_ by the buffer count).
  std::vector<std::byte*> buffers_;      // by buffer id; null: consumed, not refilled
  std::vector<std::uint8_t> cold_;       // by buffer id: its pages went back to the kernel
  // Where each buffer sits in the ring, and which buffer sits where: a bundle
  // names only its first buffer; the rest follow it in ring order.
  std::vector<std::uint16_t> id_at_;     // by ring position (masked)
  std::vector<std::uint16_t> pos_of_;    // by buffer id: its ring position (unmasked, 16-bit like the tail)
  std::uint16_t ring_tail_ = 0;          // our copy of the ring's tail
  bool bundles_ = false;
  std::vector<std::uint16_t> free_ids_;  // ids to refill
  std::vector<std::uint8_t> slots_;      // per link slot: s_* bits
  std::vector<std::int32_t> zc_results_; // by slot, for slots that sent zero-copy: a result until its notification
  bool zc_supported_ = false;
  // Links whose receive ended on -ENOBUFS: a bit in slots_, and their count.
  // No list: a list with room for every link would cost 16 bytes per link
  // for an event that is rare, and walking the slots when it happens is cheap.
  std::size_t starved_count_ = 0;
  std::array<int, max_listeners> listen_fds_{};
  std::array<bool, max_listeners> accept_armed_{};
  std::array<bool, max_listeners> accept_wanted_{};
  std::uint64_t reactor_bits_ = 0;
  std::uint64_t ring_empty_ = 0;
  std::size_t fill_target_ = 0;          // chunks to keep in the ring (grows with load)
  std::size_t taken_this_turn_ = 0;      // buffers completions took since the last refill
  std::size_t peak_turn_taken_ = 0;      // the most one turn took since the last trim()
  std::uint32_t in_flight_ = 0;          // requests the kernel holds (for close())
  Wakeup wakeup_;
  std::uint64_t wake_value_ = 0;          // the ring reads the eventfd into this
};

template <class Sink, class LinkT>
bool UringBackend::read_pass(Sink&, LinkT& link, int fd, bool) noexcept {
  const std::uint64_t key = link.id().raw();
  if (!(slot_state(slot_of(key)) & s_recv)) arm_recv(fd, key);
  return false;
}

template <class Sink>
int UringBackend::wait(int timeout_ms, Sink& sink) noexcept {
  refill();
  if (starved_count_ > 0) rearm_starved(sink);
  io_uring_cqe* cqe = nullptr;
  int r;
  if (timeout_ms < 0) {
    r = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
    r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  sink.begin_turn();
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) return r;
  // Dispatch what is there now; completions that handlers cause are seen at
  // the next turn, so one busy link cannot hold the loop.
  unsigned head;
  unsigned seen = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    complete(sink, cqe->user_data, cqe->res, cqe->flags);
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
  return static_cast<int>(seen);
}

template <class Sink>
void UringBackend::complete(Sink& sink, std::uint64_t user_data, int res, unsigned flags) noexcept {
  const std::uint64_t op = user_data >> op_shift;
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  switch (op) {
    case op_recv: {
      const std::uint64_t key = key_of(user_data);
      std::uint8_t& st = slot_state(slot_of(key));
      if (!more) {
        st &= static_cast<std::uint8_t>(~(s_recv | s_cancel));
        --in_flight_;
      }
      if ((flags & IORING_CQE_F_BUFFER) &&
          deliver(sink, key, static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT), res, more))
        return;
      auto* link = sink.link_for(key);
      if (link == nullptr) return;  // closed
      if (res == 0) {
        sink.on_read_end(*link, 0);
        return;
      }
      if (res == -ENOBUFS) {
        ++ring_empty_;
        grow_fill();
        if (!more && !(st & s_starved)) {
          st |= s_starved;
          ++starved_count_;
        }
        return;
      }
      // Cancelled because the link paused: if it resumed meanwhile, re-arm
      // now (on_readable does nothing for a link still paused).
      if (res == -ECANCELED) {
        sink.on_readable(*link, false);
        return;
      }
      sink.on_read_end(*link, res);
      return;
    }
    case op_send: {
      const std::uint64_t key = key_of(user_data);
      const std::uint32_t slot = slot_of(key);
      if (!(flags & IORING_CQE_F_NOTIF) && more) {  // zero copy: the notification follows
        zc_results_[slot] = res;
        return;
      }
      if (flags & IORING_CQE_F_NOTIF) res = zc_results_[slot];
      slot_state(slot) &= static_cast<std::uint8_t>(~s_send);
      --in_flight_;
      if (auto* link = sink.link_for(key)) sink.on_sent(*link, res);
      return;
    }
    case op_accept: {
      const auto index = static_cast<std::uint32_t>(user_data & low_mask);
      if (index >= max_listeners) return;
      if (!more) {
        accept_armed_[index] = false;
        --in_flight_;
      }
      if (res != -ECANCELED) sink.on_accepted(index, res);
      if (accept_wanted_[index] && !accept_armed_[index]) arm_accept(index);
      return;
    }
    case op_wake:
      --in_flight_;
      wakeup_.consumed();
      sink.on_wake();
      if (ring_open_) arm_wake();
      return;
    default:  // op_cancel: the request it targeted reports for itself
      --in_flight_;
      return;
  }
}

// Hands the buffers of one receive completion to the link, in order: the
// first, and with a bundle the ring's next entries after it, each but the
// last filled to the brim. Returns false when the completion carried no
// bytes (its buffers go back; the caller reads `res`).
template <class Sink>
bool UringBackend::deliver(Sink& sink, std::uint64_t key, std::uint16_t first, int res, bool more) noexcept {
  const std::size_t chunk = pool_->chunk_size();
  std::size_t left = res > 0 ? static_cast<std::size_t>(res) : 0;
  const std::size_t count = std::max<std::size_t>(1, (left + chunk - 1) / chunk);
  if (count > 1) sink.on_bundle(count);
  const unsigned mask = static_cast<unsigned>(buffers_.size() - 1);
  const std::uint16_t pos = pos_of_[first];
  auto* link = sink.link_for(key);
  bool go_on = true;
  for (std::size_t k = 0; k < count; ++k) {
    const std::uint16_t id = id_at_[(pos + k) & mask];
    std::byte* data = buffers_[id];
    buffers_[id] = nullptr;
    free_ids_.push_back(id);
    ++taken_this_turn_;
    if (data == nullptr) continue;
    // Closed, before or by what it read: its bytes are of no use.
    if (left == 0 || link == nullptr || sink.link_for(key) != link) {
      pool_->release(data);
      continue;
    }
    const std::size_t n = std::min(left, chunk);
    left -= n;
    // A link that pauses on the way keeps the rest (stashed, in order).
    go_on = sink.on_received_buffer(*link, data, n) && go_on;
  }
  if (res <= 0) return false;
  if (link == nullptr || sink.link_for(key) != link) return true;
  // Not the caller's `st`: the handler may have added links, and add_link()
  // may have moved slots_.
  std::uint8_t& st = slot_state(slot_of(key));
  if (!go_on) {
    // Paused: stop the kernel filling buffers for a link that cannot take
    // them; resuming re-arms through read_pass().
    if ((st & (s_recv | s_cancel)) == s_recv) {
      st |= s_cancel;
      cancel((op_recv << op_shift) | (key & low_mask));
    }
    return true;
  }
  if (!more && !(st & s_recv)) sink.on_readable(*link, false);  // re-arms
  return true;
}

template <class Sink>
void UringBackend::rearm_starved(Sink& sink) noexcept {
  if (free_ids_.size() == buffers_.size()) return;  // still dry: wait for chunks
  // Re-arming may close links or add new ones (which may move slots_), so
  // each slot is looked up afresh; the links it reaches were starved before
  // the walk began, or are new and armed already.
  for (std::uint32_t slot = 0; slot < slots_.size() && starved_count_ > 0; ++slot) {
    if (!(slots_[slot] & s_starved)) continue;
    slots_[slot] &= static_cast<std::uint8_t>(~s_starved);
    --starved_count_;
    auto* link = sink.link_in_slot(slot);
    if (link == nullptr) continue;
    if (!(slots_[slot] & s_recv)) sink.on_readable(*link, false);
  }
}

}  // namespace ringlink
