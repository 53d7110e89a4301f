// The wslay frame codec: the same interface as the native one, over wslay's
// frame API (wslay_frame_recv / wslay_frame_send). wslay copies each payload
// piece into a buffer of its own, so chunks point into the decoder, not into
// the caller's buffer. Use it through codec.hpp (framing=wslay).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/frame.hpp"

struct wslay_frame_context;

namespace ringlink {

class WslayDecoder {
 public:
  WslayDecoder() noexcept;
  ~WslayDecoder();
  WslayDecoder(WslayDecoder&&) noexcept;
  WslayDecoder& operator=(WslayDecoder&&) noexcept;
  WslayDecoder(const WslayDecoder&) = delete;
  WslayDecoder& operator=(const WslayDecoder&) = delete;

  DecodeResult decode(std::span<std::byte> in, std::size_t hold_limit) noexcept;
  void reset() noexcept;

 private:
  // The implementation may add members here.
  wslay_frame_context* ctx_ = nullptr;  // created on first use: an idle link holds none
};

class WslayEncoder {
 public:
  WslayEncoder() noexcept;
  ~WslayEncoder();
  WslayEncoder(WslayEncoder&&) noexcept;
  WslayEncoder& operator=(WslayEncoder&&) noexcept;
  WslayEncoder(const WslayEncoder&) = delete;
  WslayEncoder& operator=(const WslayEncoder&) = delete;

  std::size_t encode_header(std::span<std::byte, max_frame_header> out,
                            const FrameHeader& h) noexcept;

 private:
  wslay_frame_context* ctx_ = nullptr;
};

}  // namespace ringlink
