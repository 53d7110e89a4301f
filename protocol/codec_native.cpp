// The native codec. Structural checks (the FrameError values) are made at the
// same byte the wslay decoder makes them, so the two can be fuzzed against each
// other: the control-frame rules as soon as the first two bytes are there, the
// length rules as soon as the extended length is there, before the mask key.
// Everything semantic (RSV bits, opcodes, masking direction, fragment order)
// is left to the session: the header is reported as it was on the wire.
#include <algorithm>
#include <cstring>

#include "protocol/codec_native.hpp"

namespace ringlink {

namespace {

enum class HeaderParse : std::uint8_t { complete, incomplete, malformed };

std::uint8_t byte_at(std::span<const std::byte> in, std::size_t i) noexcept {
  return std::to_integer<std::uint8_t>(in[i]);
}

// Reads one frame header from the start of `in`. On `malformed`, `error`
// says why; on `incomplete` nothing is known yet.
HeaderParse parse_header(std::span<const std::byte> in, FrameHeader& h,
                         FrameError& error) noexcept {
  if (in.size() < 2) {
    return HeaderParse::incomplete;
  }
  const std::uint8_t b0 = byte_at(in, 0);
  const std::uint8_t b1 = byte_at(in, 1);
  h.fin = (b0 & 0x80) != 0;
  h.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x7);
  h.opcode = static_cast<std::uint8_t>(b0 & 0x0F);
  h.masked = (b1 & 0x80) != 0;
  const std::uint8_t len7 = b1 & 0x7F;

  // Checked on the 7-bit field, so a control frame that announces an
  // extended length fails here, before its extended length arrives.
  if (is_control(h.opcode)) {
    if (len7 > max_control_payload) {
      error = FrameError::control_too_long;
      return HeaderParse::malformed;
    }
    if (!h.fin) {
      error = FrameError::control_fragmented;
      return HeaderParse::malformed;
    }
  }

  std::size_t pos = 2;
  if (len7 == 126) {
    if (in.size() < 4) {
      return HeaderParse::incomplete;
    }
    h.payload_length = (std::uint64_t{byte_at(in, 2)} << 8) | byte_at(in, 3);
    if (h.payload_length < 126) {
      error = FrameError::non_minimal_length;
      return HeaderParse::malformed;
    }
    pos = 4;
  } else if (len7 == 127) {
    if (in.size() < 10) {
      return HeaderParse::incomplete;
    }
    std::uint64_t len = 0;
    for (std::size_t i = 2; i < 10; ++i) {
      len = (len << 8) | byte_at(in, i);
    }
    if ((len >> 63) != 0) {
      error = FrameError::length_msb_set;
      return HeaderParse::malformed;
    }
    if (len <= 0xFFFF) {
      error = FrameError::non_minimal_length;
      return HeaderParse::malformed;
    }
    h.payload_length = len;
    pos = 10;
  } else {
    h.payload_length = len7;
  }

  if (h.masked) {
    if (in.size() < pos + 4) {
      return HeaderParse::incomplete;
    }
    for (std::size_t i = 0; i < 4; ++i) {
      h.mask[i] = byte_at(in, pos + i);
    }
    pos += 4;
  } else {
    h.mask = MaskKey{};
  }
  h.header_length = static_cast<std::uint8_t>(pos);
  return HeaderParse::complete;
}

}  // namespace

DecodeResult NativeDecoder::decode(std::span<std::byte> in, std::size_t hold_limit) noexcept {
  DecodeResult r;
  if (error_ != FrameError::none) {
    // A malformed stream stays malformed: the connection is being failed.
    r.status = DecodeStatus::error;
    r.error = error_;
    return r;
  }

  if (in_frame_) {
    if (in.empty()) {
      return r;
    }
    const std::uint64_t offset = current_.payload_length - remaining_;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
    std::span<std::byte> data = in.first(n);
    if (current_.masked) {
      apply_mask(data, current_.mask, offset);
    }
    remaining_ -= n;
    in_frame_ = remaining_ != 0;
    r.status = DecodeStatus::chunk;
    r.consumed = n;
    r.chunk = FrameChunk{current_, data, offset, false, !in_frame_};
    return r;
  }

  FrameHeader h;
  // The common frame: masked, 7-bit length, whole in `in`, and not a control
  // frame without FIN. It cannot be malformed, held or streamed, so it gives
  // what the general path below would, with a fraction of its branches.
  if (in.size() >= 6) {
    const std::uint8_t b0 = byte_at(in, 0);
    const std::uint8_t b1 = byte_at(in, 1);
    const std::uint8_t len7 = b1 & 0x7F;
    const bool control_without_fin = (b0 & 0x88) == 0x08;
    if ((b1 & 0x80) != 0 && len7 < 126 && in.size() - 6 >= len7 && !control_without_fin) {
      h.fin = (b0 & 0x80) != 0;
      h.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x7);
      h.opcode = static_cast<std::uint8_t>(b0 & 0x0F);
      h.masked = true;
      std::memcpy(h.mask.data(), in.data() + 2, h.mask.size());
      h.payload_length = len7;
      h.header_length = 6;
      std::span<std::byte> data = in.subspan(6, len7);
      apply_mask(data, h.mask, 0);
      r.status = DecodeStatus::chunk;
      r.consumed = 6 + std::size_t{len7};
      r.chunk = FrameChunk{h, data, 0, true, true};
      return r;
    }
  }

  FrameError err = FrameError::none;
  switch (parse_header(in, h, err)) {
    case HeaderParse::incomplete:
      // The caller keeps the partial header and offers it again with more.
      return r;
    case HeaderParse::malformed:
      error_ = err;
      r.status = DecodeStatus::error;
      r.error = err;
      return r;
    case HeaderParse::complete:
      break;
  }

  const std::size_t available = in.size() - h.header_length;
  // header_length <= 14 and payload_length < 2^63: the sum cannot wrap.
  const std::uint64_t frame_size = h.header_length + h.payload_length;
  if (frame_size <= hold_limit && available < h.payload_length) {
    return r;
  }
  // A non-empty frame's first chunk always carries payload: leaving the header
  // in the caller's buffer costs nothing and keeps first=true on real data.
  if (h.payload_length != 0 && available == 0) {
    return r;
  }

  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(h.payload_length, available));
  std::span<std::byte> data = in.subspan(h.header_length, n);
  if (h.masked) {
    apply_mask(data, h.mask, 0);
  }
  remaining_ = h.payload_length - n;
  in_frame_ = remaining_ != 0;
  if (in_frame_) {
    current_ = h;
  }
  r.status = DecodeStatus::chunk;
  r.consumed = h.header_length + n;
  r.chunk = FrameChunk{h, data, 0, true, !in_frame_};
  return r;
}

void NativeDecoder::reset() noexcept {
  current_ = FrameHeader{};
  remaining_ = 0;
  in_frame_ = false;
  error_ = FrameError::none;
}

std::size_t NativeEncoder::encode_header(std::span<std::byte, max_frame_header> out,
                                         const FrameHeader& h) noexcept {
  if ((h.payload_length >> 63) != 0 ||
      (is_control(h.opcode) && h.payload_length > max_control_payload)) {
    return 0;
  }
  out[0] = std::byte{static_cast<std::uint8_t>((h.fin ? 0x80 : 0x00) | ((h.rsv & 0x7) << 4) |
                                               (h.opcode & 0x0F))};
  const std::uint8_t mask_bit = h.masked ? 0x80 : 0x00;
  std::size_t pos = 2;
  if (h.payload_length < 126) {
    out[1] = std::byte{static_cast<std::uint8_t>(mask_bit | h.payload_length)};
  } else if (h.payload_length <= 0xFFFF) {
    out[1] = std::byte{static_cast<std::uint8_t>(mask_bit | 126)};
    out[2] = std::byte{static_cast<std::uint8_t>(h.payload_length >> 8)};
    out[3] = std::byte{static_cast<std::uint8_t>(h.payload_length)};
    pos = 4;
  } else {
    out[1] = std::byte{static_cast<std::uint8_t>(mask_bit | 127)};
    for (std::size_t i = 0; i < 8; ++i) {
      out[2 + i] = std::byte{static_cast<std::uint8_t>(h.payload_length >> (56 - 8 * i))};
    }
    pos = 10;
  }
  if (h.masked) {
    for (std::size_t i = 0; i < 4; ++i) {
      out[pos + i] = std::byte{h.mask[i]};
    }
    pos += 4;
  }
  return pos;
}

}  // namespace ringlink
