// Frame-level types shared by both codecs (RFC 6455 section 5.2).
//
// A decoder turns bytes into FrameChunk values: the header of the frame the
// chunk belongs to plus a span of unmasked payload bytes. A frame whose
// payload arrives over several reads yields several chunks (first/last mark
// the ends). An encoder writes at most max_frame_header bytes of header and
// never touches the payload, so header and payload can leave in one gather
// write. Which codec is used is the `framing` flag; see codec.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ringlink {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

constexpr bool is_control(std::uint8_t opcode) noexcept { return (opcode & 0x8) != 0; }
constexpr bool is_known_opcode(std::uint8_t opcode) noexcept {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
}

// Close status codes (RFC 6455 section 7.4.1) the engine sends or reports.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;      // never sent: "close without code"
inline constexpr std::uint16_t abnormal = 1006;       // never sent: "no close frame at all"
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t try_again_later = 1013;
}  // namespace close_code

// True when `code` may appear in a close frame on the wire (RFC 6455 7.4,
// IANA registry): 1000-1003, 1007-1014, 3000-4999.
bool close_code_sendable(std::uint16_t code) noexcept;

inline constexpr std::size_t max_frame_header = 14;
inline constexpr std::size_t max_control_payload = 125;

using MaskKey = std::array<std::uint8_t, 4>;

struct FrameHeader {
  bool fin = true;
  std::uint8_t rsv = 0;        // RSV1..RSV3 as bits 2..0
  std::uint8_t opcode = 0;     // raw 4-bit value; may be an unknown opcode
  bool masked = false;
  MaskKey mask{};
  std::uint64_t payload_length = 0;
  std::uint8_t header_length = 0;  // bytes the header took on the wire (2..14)
};

// One piece of a frame's payload, already unmasked.
struct FrameChunk {
  FrameHeader header;              // of the frame this chunk belongs to
  std::span<std::byte> data;       // valid until the next decode() call or the
                                   // caller's buffer changes, whichever is first
  std::uint64_t offset = 0;        // position of data[0] inside the payload
  bool first = false;              // the header was decoded in this call
  bool last = false;               // data ends the frame's payload
};

enum class DecodeStatus : std::uint8_t {
  chunk,      // `chunk` holds a piece of a frame (possibly empty: zero-length frame)
  need_more,  // every byte given was consumed or kept; call again with more
  error,      // malformed framing; `error` says which; the connection must fail (1002)
};

enum class FrameError : std::uint8_t {
  none,
  length_msb_set,      // 64-bit length with the most significant bit set
  non_minimal_length,  // length encoded in more bytes than needed
  control_too_long,    // control frame payload over 125 bytes
  control_fragmented,  // control frame without FIN
};

const char* to_string(FrameError e) noexcept;

struct DecodeResult {
  DecodeStatus status = DecodeStatus::need_more;
  std::size_t consumed = 0;  // bytes of the input the caller may discard
  FrameChunk chunk{};
  FrameError error = FrameError::none;
};

// XORs `data` with `key`, as if data[0] sat at `offset` in the payload.
// Word at a time; used for both masking and unmasking.
void apply_mask(std::span<std::byte> data, const MaskKey& key, std::uint64_t offset) noexcept;

}  // namespace ringlink
