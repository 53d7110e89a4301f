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

  // hold_limit is ignored: wslay copies every byte it reads. Chunk data lies
  // in wslay's buffer and is to be read, not written. Answers error with
  // FrameError::none when the wslay context cannot be allocated.
  DecodeResult decode(std::span<std::byte> in, std::size_t hold_limit) noexcept;
  void reset() noexcept;
  // True when no frame is partly decoded (nothing would be lost by dropping
  // this decoder and starting a new one at the next byte).
  bool between_frames() const noexcept;

 private:
  // The implementation may add members here.
  wslay_frame_context* ctx_ = nullptr;  // created on first use: an idle link holds none
  struct RecvState;                     // wslay's user_data: must not move with *this
  RecvState* rs_ = nullptr;
  FrameError error_ = FrameError::none;  // sticky until reset()
};

class WslayEncoder {
 public:
  WslayEncoder() noexcept;
  ~WslayEncoder();
  WslayEncoder(WslayEncoder&&) noexcept;
  WslayEncoder& operator=(WslayEncoder&&) noexcept;
  WslayEncoder(const WslayEncoder&) = delete;
  WslayEncoder& operator=(const WslayEncoder&) = delete;

  // Returns 0 (nothing usable written) when the header cannot be encoded:
  // payload_length >= 2^63, or a control opcode with payload_length > 125.
  std::size_t encode_header(std::span<std::byte, max_frame_header> out,
                            const FrameHeader& h) noexcept;

 private:
  wslay_frame_context* ctx_ = nullptr;
  struct SendState;  // wslay's user_data: must not move with *this
  SendState* ss_ = nullptr;
};

}  // namespace ringlink
