// The native frame codec: decodes headers in place from the caller's buffer,
// unmasks the payload in place a word at a time and hands out spans into that
// buffer; encodes a header into at most 14 bytes and leaves the payload alone.
// Use it through codec.hpp (FrameDecoder / FrameEncoder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/frame.hpp"

namespace ringlink {

class NativeDecoder {
 public:
  DecodeResult decode(std::span<std::byte> in, std::size_t hold_limit) noexcept;
  void reset() noexcept;
  // True when no frame is partly decoded (see WslayDecoder::between_frames).
  bool between_frames() const noexcept { return !in_frame_ && error_ == FrameError::none; }

 private:
  // The implementation may add members here.
  FrameHeader current_{};
  std::uint64_t remaining_ = 0;  // payload bytes of current_ not yet handed out
  bool in_frame_ = false;
  FrameError error_ = FrameError::none;  // sticky until reset()
};

class NativeEncoder {
 public:
  // Returns 0 (nothing usable written) when the header cannot be encoded:
  // payload_length >= 2^63, or a control opcode with payload_length > 125.
  std::size_t encode_header(std::span<std::byte, max_frame_header> out,
                            const FrameHeader& h) noexcept;
};

}  // namespace ringlink
