// The RFC 6455 session state machine. The decoder hands out chunks (a
// frame's header plus a piece of its payload); the session checks each
// header once, on its first chunk, then either passes a whole frame through
// as a span of the caller's buffer or copies pieces into the Assembly.
#include "protocol/session.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <new>

namespace ringlink {

namespace {

// An assembly buffer that grew past this is freed once its message has been
// delivered, so a link that once took a large message does not keep it.
constexpr std::uint32_t keep_capacity = 64 * 1024;
// First allocation for a message that is assembled: small messages split
// over reads need one allocation, large ones double from here.
constexpr std::uint32_t min_capacity = 512;

// Reasons sent with a fail event (constant strings, never built at run time).
namespace reason {
constexpr const char* reserved_bits = "reserved bits set without an extension";
constexpr const char* rsv1_without_deflate = "RSV1 set without permessage-deflate";
constexpr const char* rsv1_on_control = "RSV1 set on a control frame";
constexpr const char* rsv1_on_continuation = "RSV1 set on a continuation frame";
constexpr const char* unknown_opcode = "unknown opcode";
constexpr const char* unmasked = "client frame not masked";
constexpr const char* masked = "server frame masked";
constexpr const char* control_too_long = "control frame over 125 bytes";
constexpr const char* control_fragmented = "fragmented control frame";
constexpr const char* orphan_continuation = "continuation frame without a message";
constexpr const char* interleaved_data = "new data frame inside a fragmented message";
constexpr const char* too_big = "message too big";
constexpr const char* bad_text = "invalid UTF-8 in text message";
constexpr const char* close_one_byte = "close frame with a 1-byte payload";
constexpr const char* close_bad_code = "close code not allowed on the wire";
constexpr const char* close_bad_reason = "invalid UTF-8 in close reason";
constexpr const char* out_of_memory = "out of memory assembling a message";
}  // namespace reason

// The native decoder hands out spans of the caller's buffer; the wslay one
// spans of its own copy (valid until the next decode, i.e. the next feed()).
constexpr bool chunks_in_input = config::framing == config::Framing::native;

std::uint16_t load_be16(std::span<const std::byte> p) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}

}  // namespace

struct Session::Assembly {
  std::unique_ptr<std::byte[]> data;
  std::uint32_t size = 0;      // message bytes assembled so far
  std::uint32_t capacity = 0;
  std::uint8_t control_size = 0;
  bool control_open = false;   // a control frame is arriving in pieces
  std::array<std::byte, max_control_payload> control{};

  void drop_data() noexcept {
    data.reset();
    size = 0;
    capacity = 0;
  }
};

bool close_code_sendable(std::uint16_t code) noexcept {
  // 1004 is reserved, 1005/1006/1015 are for reporting only, 1016-2999 are
  // unassigned or for extensions not negotiated here, 5000+ do not exist.
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

std::size_t write_close_payload(std::span<std::byte, max_control_payload> out, std::uint16_t code,
                                std::string_view reason) noexcept {
  // An unsendable code (1005, but also 1006, 1015, ...) must not reach the
  // wire: an empty body is the only correct close then.
  if (!close_code_sendable(code)) return 0;
  out[0] = static_cast<std::byte>(code >> 8);
  out[1] = static_cast<std::byte>(code & 0xFF);
  std::size_t n = reason.size();
  constexpr std::size_t room = max_control_payload - 2;
  if (n > room) {
    // Back up to the start of a code point so the cut reason stays UTF-8.
    n = room;
    while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  }
  if (n != 0) std::memcpy(out.data() + 2, reason.data(), n);  // reason may be a null view
  return n + 2;
}

Session::Session(Role role, std::size_t max_message_size) noexcept
    : max_message_size_(static_cast<std::uint32_t>(
          std::min<std::size_t>(max_message_size, std::numeric_limits<std::uint32_t>::max()))),
      role_(role) {}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

SessionEvent Session::fail_message(std::uint16_t code, const char* why) noexcept { return fail(code, why); }

bool Session::start_close() noexcept {
  if (state_ != SessionState::open) return false;
  state_ = SessionState::closing;
  return true;
}

void Session::release_buffers() noexcept {
  if (!assembly_) return;
  const bool data_busy = message_in_progress();
  if (!data_busy && !assembly_->control_open) {
    assembly_.reset();
  } else if (!data_busy) {
    assembly_->drop_data();
  }
}

std::size_t Session::buffered_bytes() const noexcept {
  return assembly_ ? std::size_t{assembly_->size} + assembly_->control_size : 0;
}

SessionEvent Session::fail(std::uint16_t code, const char* why) noexcept {
  state_ = SessionState::closed;
  assembly_.reset();  // the event carries no payload: nothing to keep
  SessionEvent ev;
  ev.kind = SessionEventKind::fail;
  ev.code = code;
  ev.reason = why;
  return ev;
}

SessionEvent Session::feed(std::span<std::byte> in, std::size_t hold_limit) {
  SessionEvent ev;
  if (state_ == SessionState::closed) {
    // The last event's payload (a close reason) is no longer needed.
    assembly_.reset();
    ev.consumed = in.size();
    return ev;
  }
  if (assembly_ && assembly_->capacity > keep_capacity && !message_in_progress()) {
    // Deferred to here because the message was handed out from this buffer.
    assembly_->drop_data();
  }
  // Holding more than a whole maximal message would only delay the 1009.
  hold_limit = std::min<std::size_t>(hold_limit, std::size_t{max_message_size_} + max_frame_header);

  std::size_t pos = 0;
  for (;;) {
    // Text is never held back: it is streamed and validated as it arrives,
    // so invalid UTF-8 fails at the first bad byte even when the frame is
    // incomplete. Holding (for a zero-copy span) is for binary frames.
    std::size_t hold = hold_limit;
    if (hold != 0 && pos < in.size() && decoder_.between_frames()) {
      const auto opcode = static_cast<std::uint8_t>(std::to_integer<unsigned>(in[pos]) & 0x0F);
      const bool text = opcode == static_cast<std::uint8_t>(Opcode::text) ||
                        (opcode == static_cast<std::uint8_t>(Opcode::continuation) && in_fragmented_ &&
                         message_opcode_ == Opcode::text);
      if (text) hold = 0;
    }
    const DecodeResult r = decoder_.decode(in.subspan(pos), hold);
    if (r.status == DecodeStatus::error) {
      ev = fail(close_code::protocol_error, to_string(r.error));
      break;
    }
    pos += r.consumed;
    if (r.status == DecodeStatus::need_more) break;

    const FrameChunk& c = r.chunk;
    if (c.first) {
      ev = check_header(c.header);
      if (ev.kind != SessionEventKind::need_more) break;
    }
    ev = is_control(c.header.opcode) ? on_control(c) : on_data(c);
    if (ev.kind != SessionEventKind::need_more) break;
    // A decoder that returns an empty, unfinished chunk without consuming
    // anything would spin here; treat it as waiting for more input.
    if (r.consumed == 0 && !c.last) break;
  }
  ev.consumed = ev.kind == SessionEventKind::fail ? in.size() : pos;
  return ev;
}

SessionEvent Session::check_header(const FrameHeader& h) noexcept {
  if ((h.rsv & 0x3) != 0) return fail(close_code::protocol_error, reason::reserved_bits);
  if (!is_known_opcode(h.opcode)) return fail(close_code::protocol_error, reason::unknown_opcode);
  if (role_ == Role::server && !h.masked) return fail(close_code::protocol_error, reason::unmasked);
  if (role_ == Role::client && h.masked) return fail(close_code::protocol_error, reason::masked);
  const bool rsv1 = (h.rsv & 0x4) != 0;
  if (rsv1) {
    // RFC 7692 section 6: RSV1 marks the first frame of a compressed
    // message, and only when the extension is in use.
    const char* why = !compression_ ? reason::rsv1_without_deflate
                      : is_control(h.opcode) ? reason::rsv1_on_control
                      : h.opcode == static_cast<std::uint8_t>(Opcode::continuation) ? reason::rsv1_on_continuation
                      : nullptr;
    if (why != nullptr) {
      SessionEvent ev = fail(close_code::protocol_error, why);
      ev.rsv1_misuse = true;
      return ev;
    }
  }
  if (is_control(h.opcode)) {
    // The decoder normally reports these two itself; kept so that the rule
    // holds whatever the codec.
    if (h.payload_length > max_control_payload) {
      return fail(close_code::protocol_error, reason::control_too_long);
    }
    if (!h.fin) return fail(close_code::protocol_error, reason::control_fragmented);
    if (h.opcode == static_cast<std::uint8_t>(Opcode::close) && h.payload_length == 1) {
      return fail(close_code::protocol_error, reason::close_one_byte);
    }
    return {};
  }
  const bool continuation = h.opcode == static_cast<std::uint8_t>(Opcode::continuation);
  if (continuation && !in_fragmented_) {
    return fail(close_code::protocol_error, reason::orphan_continuation);
  }
  if (!continuation && in_fragmented_) {
    return fail(close_code::protocol_error, reason::interleaved_data);
  }
  if (!continuation) message_compressed_ = rsv1;
  // Decided on the declared length, before any of the payload is taken in.
  if (h.payload_length > wire_limit() - message_size_) {
    return fail(close_code::message_too_big, reason::too_big);
  }
  return {};
}

SessionEvent Session::on_data(const FrameChunk& c) noexcept {
  const FrameHeader& h = c.header;
  const bool final_chunk = c.last && h.fin;
  if (c.first) {
    if (h.opcode != static_cast<std::uint8_t>(Opcode::continuation)) {
      message_opcode_ = static_cast<Opcode>(h.opcode);
      utf8_.reset();
      if (final_chunk) {
        // The fast path: a whole unfragmented message in one chunk.
        // Compressed text is checked once inflated, by the caller.
        if (message_opcode_ == Opcode::text && !message_compressed_ && !utf8_valid(c.data)) {
          return fail(close_code::invalid_payload, reason::bad_text);
        }
        SessionEvent ev;
        ev.kind = SessionEventKind::message;
        ev.opcode = message_opcode_;
        ev.payload = c.data;
        ev.zero_copy = chunks_in_input;
        ev.compressed = message_compressed_;
        return ev;
      }
    }
    message_size_ += static_cast<std::uint32_t>(h.payload_length);  // checked in check_header
    in_fragmented_ = in_fragmented_ || !h.fin;
  }

  const bool text = message_opcode_ == Opcode::text && !message_compressed_;
  if (!c.data.empty()) {
    // Checked as it arrives: a bad byte fails the link before the rest of
    // the message is read.
    if (text && !utf8_.feed(c.data)) return fail(close_code::invalid_payload, reason::bad_text);
    if (!append(c.data, h.fin)) return fail(close_code::internal_error, reason::out_of_memory);
  }
  if (!final_chunk) return {};

  if (text && !utf8_.finish()) return fail(close_code::invalid_payload, reason::bad_text);
  SessionEvent ev;
  ev.kind = SessionEventKind::message;
  ev.opcode = message_opcode_;
  ev.compressed = message_compressed_;
  if (assembly_) {
    ev.payload = std::span<std::byte>(assembly_->data.get(), assembly_->size);
    // The bytes stay where they are until the next feed(); only the count
    // goes, so buffered_bytes() reports the link as idle.
    assembly_->size = 0;
  }
  message_size_ = 0;
  in_fragmented_ = false;
  return ev;
}

bool Session::append(std::span<const std::byte> data, bool final_frame) noexcept {
  if (!assembly_) {
    assembly_.reset(new (std::nothrow) Assembly);
    if (!assembly_) return false;
  }
  Assembly& a = *assembly_;
  // Never past the limit: size + data <= message_size_ <= wire_limit().
  const std::uint64_t needed = std::uint64_t{a.size} + data.size();
  if (needed > message_size_) return false;  // a decoder handing out more than declared
  if (needed > a.capacity) {
    std::uint64_t target = std::max<std::uint64_t>({needed, std::uint64_t{a.capacity} * 2, min_capacity});
    // In the last frame the final size is known: allocate exactly that.
    if (final_frame) target = std::min<std::uint64_t>(target, message_size_);
    target = std::min<std::uint64_t>(target, wire_limit());
    auto grown = std::unique_ptr<std::byte[]>(new (std::nothrow) std::byte[target]);
    if (!grown) return false;
    if (a.size != 0) std::memcpy(grown.get(), a.data.get(), a.size);
    a.data = std::move(grown);
    a.capacity = static_cast<std::uint32_t>(target);
  }
  std::memcpy(a.data.get() + a.size, data.data(), data.size());
  a.size = static_cast<std::uint32_t>(needed);
  return true;
}

SessionEvent Session::on_control(const FrameChunk& c) noexcept {
  if (c.first && c.last) return control_event(c.header.opcode, c.data, chunks_in_input);
  // A control frame in pieces (split over reads): gather it, it is delivered
  // whole. check_header bounded it to 125 bytes.
  if (c.first) {
    if (!assembly_) {
      assembly_.reset(new (std::nothrow) Assembly);
      if (!assembly_) return fail(close_code::internal_error, reason::out_of_memory);
    }
    assembly_->control_size = 0;
    assembly_->control_open = true;
  }
  if (!assembly_ || !assembly_->control_open ||
      assembly_->control_size + c.data.size() > max_control_payload) {
    return fail(close_code::protocol_error, reason::control_too_long);
  }
  Assembly& a = *assembly_;
  if (!c.data.empty()) std::memcpy(a.control.data() + a.control_size, c.data.data(), c.data.size());
  a.control_size = static_cast<std::uint8_t>(a.control_size + c.data.size());
  if (!c.last) return {};
  a.control_open = false;
  const std::span<std::byte> payload(a.control.data(), a.control_size);
  a.control_size = 0;
  return control_event(c.header.opcode, payload, false);
}

SessionEvent Session::control_event(std::uint8_t opcode, std::span<std::byte> payload,
                                    bool zero_copy) noexcept {
  SessionEvent ev;
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::ping:
      ev.kind = SessionEventKind::ping;
      ev.payload = payload;
      ev.zero_copy = zero_copy;
      return ev;
    case Opcode::pong:
      ev.kind = SessionEventKind::pong;
      ev.payload = payload;
      ev.zero_copy = zero_copy;
      return ev;
    default:
      break;
  }
  // Close. A 1-byte body was refused at the header.
  ev.kind = SessionEventKind::close;
  ev.code = close_code::no_status;
  if (payload.size() >= 2) {
    ev.code = load_be16(payload);
    if (!close_code_sendable(ev.code)) return fail(close_code::protocol_error, reason::close_bad_code);
    const auto text = payload.subspan(2);
    if (!utf8_valid(text)) return fail(close_code::invalid_payload, reason::close_bad_reason);
    ev.reason = std::string_view(reinterpret_cast<const char*>(text.data()), text.size());
  }
  ev.reply = state_ == SessionState::open;
  state_ = SessionState::closed;
  return ev;
}

}  // namespace ringlink
