// Link: one WebSocket connection, owned by one reactor thread.
//
// Handler callbacks receive a Link&; call its methods on that reactor thread
// only (inside a callback, or from a command the reactor runs). From other
// threads, address the link by its LinkId through Server::send / close.
// Never keep a Link& or Link* past the callback: the slot is reused for
// another connection once the link is freed. Keep link.id() instead.
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

#include "engine/metrics.hpp"
#include "engine/payload.hpp"
#include "engine/timer_wheel.hpp"
#include "engine/types.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

class Reactor;
class LinkTable;
class SendQueue;
struct LinkAux;
class Session;
struct DeflateParams;

class Link {
 public:
  // The handle to keep, and to pass to other threads.
  LinkId id() const noexcept;
  LinkState state() const noexcept { return state_; }
  bool is_client() const noexcept { return (flags_ & f_client) != 0; }
  // permessage-deflate was negotiated: messages of at least
  // DeflateConfig::threshold bytes are sent compressed.
  bool compressed() const noexcept;  // its LinkAux holds the deflate state: no flag bit left
  // What was agreed for permessage-deflate; null when it is not in use.
  const DeflateParams* deflate_params() const noexcept;

  // Queues one message (a single frame; text must be valid UTF-8, the engine
  // does not check what it sends). Output is corked: the link's messages of
  // one loop turn leave together in one write at the turn's end, before the
  // reactor sleeps (or sooner, past the cork_high_water flag). The payload
  // is copied, so `payload` stays the caller's and may be reused as soon as
  // send returns.
  // An empty queue takes one message of any size; after that the byte cap
  // (ServerConfig::max_queued_bytes) and the send_ring_slots flag apply.
  // Results:
  //   queued         written or queued; it leaves unless the link closes first.
  //   backpressured  refused, nothing queued (policy reject, queue full):
  //                  keep the message or drop it; on_drain follows when the
  //                  queue empties. Pausing reading meanwhile (pause_reading)
  //                  is how a relay stays bounded and lossless.
  //   queued_dropping_older  queued, after dropping older unsent data frames
  //                  (policy drop_oldest).
  //   closed         not sent: the link is closing or closed, it is not open
  //                  yet, the queue was full under policy close_slow (the
  //                  link is now closing), a write failed, or `op` is close
  //                  or continuation (use close(); fragments are not
  //                  supported). Ping and pong are allowed.
  [[nodiscard]] SendResult send(std::span<const std::byte> payload, Opcode op = Opcode::binary);
  [[nodiscard]] SendResult send_text(std::string_view text);
  // Zero-copy: the payload buffer is shared (reference-counted) and freed when
  // the last link that queued it has written it. Used by broadcast. Do not
  // write the bytes after the first send. A header stored by
  // Server::make_frame_payload is used as is (server links), so `op` must be
  // the one it was made with. Same results as above.
  [[nodiscard]] SendResult send(PayloadRef payload, Opcode op = Opcode::binary);

  // Starts the close handshake (code must be sendable, e.g. 1000, 1001,
  // 3000-4999; others are replaced by 1000; `reason` is copied and cut to
  // what fits in a control frame). Queued frames are sent first; on_close
  // runs when the peer answers, or after close_timeout_ms. No-op when
  // already closing or closed.
  void close(std::uint16_t code = close_code::normal, std::string_view reason = {});
  // Drops the connection without a close handshake (the peer sees 1006).
  void abort();

  // Application flow control: stop/restart reading from the socket. TCP then
  // pushes back on the peer. Independent of the engine's own pauses (worker
  // ring full, rate limit, pool exhausted): reading resumes when no reason is
  // left. pause_reading takes effect at once: no further on_message for this
  // link until resume_reading, whose effect comes on the next loop turn (it
  // never calls back into the handler from inside the call).
  void pause_reading();
  void resume_reading();

  // One application timer per link: on_timer fires once after `ms`, on the
  // timer wheel's granularity (0 cancels; a new call replaces the old timer).
  void set_timer(std::uint32_t ms);

  // TCP_NODELAY for this link (ServerConfig::tcp_nodelay sets the default).
  void set_nodelay(bool on);
  // Bytes waiting in this link's send queue (frame headers included).
  std::size_t queued_bytes() const noexcept;
  // The application's pointer for this link, null at first (client links:
  // ConnectRequest::user_data). The engine never reads or frees it: free it
  // in on_close (or on_connect_failed).
  void*& user_data() noexcept { return user_data_; }
  // The implementation's reactor that owns this link (engine/reactor.hpp).
  Reactor& reactor() const noexcept { return *reactor_; }

  Link() = default;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

 private:
  friend class Reactor;
  friend class LinkTable;

  // What the link is doing besides its state, one bit each.
  enum Flag : std::uint16_t {
    f_client = 1 << 0,
    f_in_ready = 1 << 1,        // on the reactor's read-again list
    f_in_flush = 1 << 2,        // on the reactor's flush list
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
    f_tls = 1 << 15,            // bytes pass through a TLS session (Reactor::tls_of)
  };
  // Why reading is paused (any bit set: not reading).
  enum Pause : std::uint8_t {
    p_app = 1 << 0,
    p_handoff = 1 << 1,
    p_rate = 1 << 2,
    p_pool = 1 << 3,
    p_budget = 1 << 4,  // read its read_budget this turn; goes on next turn (not counted as paused)
    p_admission = 1 << 5,  // a TLS handshake step waiting for the turn's budget
  };

  bool has(Flag f) const noexcept { return (flags_ & f) != 0; }
  bool has_any(std::uint16_t mask) const noexcept { return (flags_ & mask) != 0; }
  void set(Flag f) noexcept { flags_ = static_cast<std::uint16_t>(flags_ | f); }
  void clear(Flag f) noexcept { flags_ = static_cast<std::uint16_t>(flags_ & ~f); }
  bool paused() const noexcept { return paused_ != 0; }
  bool is(LinkState s) const noexcept { return state_ == s; }
  bool closed() const noexcept { return state_ == LinkState::closed; }

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
  // When the current state's deadline began: the handshake's start, the
  // ping we sent (open), the close's start (closing).
  std::uint32_t mark_ms_ = 0;
  std::int32_t fd_ = -1;
  std::uint16_t flags_ = 0;
  std::uint16_t close_code_ = close_code::abnormal;  // reported to on_close
  std::uint8_t paused_ = 0;
  LinkState state_ = LinkState::closed;
  CloseReason close_reason_ = CloseReason::peer_eof;  // counted when the link ends
};

}  // namespace ringlink
