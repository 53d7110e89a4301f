// Link: one WebSocket connection, owned by one reactor thread.
//
// Handler callbacks receive a Link&; call its methods on that reactor thread
// only (inside a callback, or from a command the reactor runs). From other
// threads, address the link by its LinkId through Server::send / close.
//
//   void on_message(ringlink::Link& link, std::span<std::byte> p, ringlink::Opcode op) override {
//     if (link.send(p, op) == ringlink::SendResult::backpressured) link.pause_reading();
//   }
//   void on_drain(ringlink::Link& link) override { link.resume_reading(); }
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/payload.hpp"
#include "engine/timer_wheel.hpp"
#include "engine/types.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

class Reactor;
struct SendQueue;
struct LinkAux;
class Session;

class Link {
 public:
  LinkId id() const noexcept;
  LinkState state() const noexcept { return state_; }
  bool is_client() const noexcept { return (flags_ & f_client) != 0; }

  // Queues one message (a single frame). The payload is written at once when
  // the queue is empty and the socket takes it; whatever is left is copied,
  // so `payload` may be reused as soon as send returns.
  // Results: queued; backpressured (queue over its byte cap or slot count,
  // policy reject; on_drain follows); dropped (policy drop_oldest made room by
  // dropping older frames); closed (closing, closed, or not yet open).
  [[nodiscard]] SendResult send(std::span<const std::byte> payload, Opcode op = Opcode::binary);
  [[nodiscard]] SendResult send_text(std::string_view text);
  // Zero-copy: the payload buffer is shared (reference-counted) and freed when
  // the last link that queued it has written it. Used by broadcast.
  [[nodiscard]] SendResult send(PayloadRef payload, Opcode op = Opcode::binary);

  // Starts the close handshake (code must be sendable, e.g. 1000, 1001,
  // 3000-4999; others are replaced by 1000). Queued frames are sent first.
  // No-op when already closing or closed.
  void close(std::uint16_t code = close_code::normal, std::string_view reason = {});
  // Drops the connection without a close handshake (the peer sees 1006).
  void abort();

  // Application flow control: stop/restart reading from the socket. TCP then
  // pushes back on the peer. Independent of the engine's own pauses.
  void pause_reading();
  void resume_reading();

  // One application timer per link: on_timer fires after `ms` (0 cancels).
  void set_timer(std::uint32_t ms);

  void set_nodelay(bool on);
  std::size_t queued_bytes() const noexcept;
  void*& user_data() noexcept { return user_data_; }
  Reactor& reactor() const noexcept { return *reactor_; }

  Link() = default;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

 private:
  friend class Reactor;

  enum : std::uint16_t {
    f_client = 1 << 0,
    f_in_ready = 1 << 1,        // on the reactor's ready list (more to read)
    f_in_dirty = 1 << 2,        // on the reactor's flush list
    f_want_write = 1 << 3,      // socket was full: waiting for writability
    f_send_busy = 1 << 4,       // a send is in flight (completion backends)
    f_readable = 1 << 5,        // socket may hold unread bytes (edge consumed)
    f_close_after_flush = 1 << 6,
    f_write_shut = 1 << 7,      // SHUT_WR done: only draining the peer until EOF
    f_drain_wanted = 1 << 8,    // a send answered backpressured: call on_drain
    f_awaiting_pong = 1 << 9,
    f_nodelay = 1 << 10,
    f_in_pool_wait = 1 << 11,
    f_close_notified = 1 << 12, // on_close ran
    f_opened = 1 << 13,         // on_open ran
    f_hangup = 1 << 14,         // the peer's FIN (or an error) is waiting behind the data
  };
  // Why reading is paused (any bit set: not reading).
  enum : std::uint8_t {
    p_app = 1 << 0,
    p_handoff = 1 << 1,
    p_rate = 1 << 2,
    p_pool = 1 << 3,
  };

  // Ordered for size: an idle open link costs sizeof(Link) and nothing else
  // (no session, buffer, queue or side state), 112 bytes with 64-bit pointers.
  TimerNode timer_{};                 // one node for every timeout of the link
  Session* session_ = nullptr;        // only while a frame or message is in progress
  Reactor* reactor_ = nullptr;
  std::byte* rbuf_ = nullptr;         // pooled receive chunk, or null (idle)
  SendQueue* sendq_ = nullptr;        // null when nothing is queued
  LinkAux* aux_ = nullptr;            // handshake, rate limit, app timer: when used
  void* user_data_ = nullptr;
  std::uint32_t rstart_ = 0, rlen_ = 0;  // unconsumed bytes in rbuf_
  std::atomic<std::uint32_t> generation_{0};  // read by other threads to detect stale ids
  std::uint32_t slot_ = 0;
  std::uint32_t last_rx_ms_ = 0;      // reactor clock, modulo 2^32 (differences only)
  std::uint32_t mark_ms_ = 0;         // accept time / ping sent / close started
  std::int32_t fd_ = -1;
  std::uint16_t flags_ = 0;
  std::uint16_t close_code_ = close_code::abnormal;  // reported to on_close
  std::uint8_t paused_ = 0;
  LinkState state_ = LinkState::closed;
  std::uint8_t close_reason_ = 0;     // CloseReason for the metrics
};

}  // namespace ringlink
