// The per-connection RFC 6455 state machine, without I/O.
//
// Feed it received bytes; it answers one event per call and how many bytes
// it consumed. The caller acts on the event (deliver a message, send a pong,
// send a close) and calls again with the rest:
//
//   Session s{Role::server};
//   std::span<std::byte> in = received;
//   for (;;) {
//     SessionEvent ev = s.feed(in, hold_limit);
//     in = in.subspan(ev.consumed);
//     switch (ev.kind) {
//       case SessionEventKind::need_more: keep `in` (a partial frame held
//            for contiguity), read more, call again;
//       case SessionEventKind::message: deliver ev.opcode, ev.payload; break;
//       case SessionEventKind::ping:    send pong(ev.payload); break;
//       case SessionEventKind::pong:    break;
//       case SessionEventKind::close:   if (ev.reply) send close(ev.code, ev.reason);
//                                       then close the connection after flushing;
//       case SessionEventKind::fail:    send close(ev.code, ev.reason), close.
//     }
//   }
//
// Outgoing frames are the caller's: encode them with FrameEncoder and, in the
// client role, mask them with apply_mask. Call start_close() when sending a
// close frame of your own so that the peer's reply completes the handshake.
//
// Allocation: none per frame. A message that is not one whole frame inside
// one feed() input is assembled in one buffer owned by the session, bounded
// by max_message_size and released when it grew past a small size.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "protocol/codec.hpp"
#include "protocol/frame.hpp"
#include "protocol/utf8.hpp"
#include "ringlink_config.hpp"

namespace ringlink {

enum class Role : std::uint8_t { server, client };

enum class SessionEventKind : std::uint8_t {
  need_more,  // input exhausted, or the rest is a partial frame to keep (see feed)
  message,    // a whole text or binary message
  ping,       // a ping from the peer: answer with a pong carrying `payload`
  pong,       // a pong from the peer
  close,      // the peer's close frame (code 1005 when it carried none)
  fail,       // the peer broke the protocol: send close(code, reason), then close
};

enum class SessionState : std::uint8_t {
  open,       // messages flow both ways
  closing,    // we sent close (start_close) and wait for the peer's
  closed,     // close handshake done, or failed: every further byte is ignored
};

struct SessionEvent {
  SessionEventKind kind = SessionEventKind::need_more;
  Opcode opcode = Opcode::binary;     // message: text or binary
  // message/ping/pong payload. Points into the input given to feed() when
  // zero_copy, else into the session's assembly buffer. Valid until the next
  // feed() call and, when zero_copy, while the caller's buffer is unchanged.
  std::span<std::byte> payload{};
  bool zero_copy = false;
  std::uint16_t code = 0;             // close: peer's code; fail: code to send
  std::string_view reason{};          // close: peer's reason (valid as payload);
                                      // fail: a constant string
  bool reply = false;                 // close: the peer started it; echo a close
  // message: the payload is permessage-deflate data (RSV1 was set): inflate
  // it, and check text as UTF-8 afterwards (the session could not).
  bool compressed = false;
  bool rsv1_misuse = false;           // fail: RSV1 where RFC 7692 forbids it
  std::size_t consumed = 0;           // bytes of the input this call used
};

class Session {
 public:
  explicit Session(Role role, std::size_t max_message_size = config::max_message_size) noexcept;
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Decodes from the start of `in` up to the next event. A frame of at most
  // hold_limit bytes (header + payload) that is not wholly in `in` is not
  // consumed: need_more comes back with `consumed` stopping before it, so
  // the caller can keep those bytes and append the next read to them (the
  // frame then arrives as one zero-copy span). hold_limit 0 streams every
  // frame into the assembly buffer instead. `in` is unmasked in place.
  // hold_limit is capped at max_message_size + 14: a larger frame is refused
  // (1009) as soon as its first payload byte is seen, never held.
  // A fail event consumes all of `in`; so does every call once the session
  // is closed (need_more). With framing=wslay chunks are the decoder's
  // copies: a whole frame is handed out from there (zero_copy=false).
  SessionEvent feed(std::span<std::byte> in, std::size_t hold_limit = 0);

  // We are sending a close frame: a later close from the peer completes the
  // handshake (reply=false). Returns false when a close was already sent or
  // the session is closed; the caller must not send another close then.
  bool start_close() noexcept;

  // permessage-deflate is in use: RSV1 may mark the first frame of a data
  // message (delivered with `compressed`). Off: RSV1 fails with 1002.
  void set_compression(bool on) noexcept { compression_ = on; }
  bool compression() const noexcept { return compression_; }

  // The caller found the last message bad (it did not inflate, or was not
  // UTF-8 once inflated): the session is closed and the fail event to act
  // on is returned. `why` must be a constant string.
  SessionEvent fail_message(std::uint16_t code, const char* why) noexcept;

  SessionState state() const noexcept { return state_; }
  Role role() const noexcept { return role_; }

  // Frees the assembly buffer when no message is being assembled (idle links
  // hold no buffer). Invalidates the payload of the last event.
  void release_buffers() noexcept;

  // Bytes held in the assembly buffer right now.
  std::size_t buffered_bytes() const noexcept;

  // True between messages of an open session: no frame partly decoded, no
  // message being assembled. A session at rest holds nothing a new
  // Session{role} would not, so an engine may drop it (after
  // release_buffers) and start a fresh one at the next byte: idle links then
  // need no session at all.
  bool at_rest() const noexcept {
    return state_ == SessionState::open && !message_in_progress() && decoder_.between_frames();
  }

 private:
  struct Assembly;

  // Each returns a need_more event when there is nothing to report yet.
  SessionEvent check_header(const FrameHeader& h) noexcept;
  SessionEvent on_data(const FrameChunk& c) noexcept;
  SessionEvent on_control(const FrameChunk& c) noexcept;
  SessionEvent control_event(std::uint8_t opcode, std::span<std::byte> payload,
                             bool zero_copy) noexcept;
  SessionEvent fail(std::uint16_t code, const char* reason) noexcept;
  bool append(std::span<const std::byte> data, bool final_frame) noexcept;
  bool message_in_progress() const noexcept { return in_fragmented_ || message_size_ != 0; }
  // The most wire bytes the current message may have. Compressed, a message
  // whose inflated size is within max_message_size may be a little larger
  // on the wire (deflate's stored blocks: 5 bytes per 64 KiB, plus a few);
  // its inflated size is the caller's to cap.
  std::uint64_t wire_limit() const noexcept {
    const std::uint64_t m = max_message_size_;
    return message_compressed_ ? std::min<std::uint64_t>(m + m / 4096 + 64, 0xFFFFFFFFu) : m;
  }

  // Ordered for size: 40 bytes of native decoder + 24 here = 64.
  FrameDecoder decoder_{};
  std::unique_ptr<Assembly> assembly_;   // allocated on first fragmented/partial message
  Utf8Validator utf8_{};                 // the current text message, fed as it arrives
  std::uint32_t message_size_ = 0;       // declared payload bytes of the current message
  std::uint32_t max_message_size_;       // the constructor's value, capped at 4 GiB - 1
  Role role_;
  SessionState state_ = SessionState::open;
  Opcode message_opcode_ = Opcode::binary;
  bool in_fragmented_ : 1 = false;       // a data frame without FIN was seen
  bool compression_ : 1 = false;         // permessage-deflate negotiated
  bool message_compressed_ : 1 = false;  // the current message had RSV1
};

// Writes a close frame payload (2-byte code + reason, reason cut to fit 123
// bytes at a UTF-8 boundary) into `out` and returns its length; returns 0
// (empty body) for close_code::no_status, and for every other code that
// close_code_sendable() refuses (1006, 1015, ...), which must not be sent.
std::size_t write_close_payload(std::span<std::byte, max_control_payload> out, std::uint16_t code,
                                std::string_view reason) noexcept;

}  // namespace ringlink
