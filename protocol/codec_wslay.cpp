// The wslay codec: wslay_frame_recv / wslay_frame_send behind the codec
// interface.
//
// Decoding. wslay reads through a callback into a 4 KiB buffer of its own and
// would happily read ahead into the next frames. The callback here stops at
// the end of the frame wslay is on, for two reasons: wslay's iocb carries
// neither the mask key nor the header length, so the callback keeps a copy of
// the header bytes it serves (which must belong to the current frame), and
// `consumed` then never covers bytes of a frame wslay has not reached.
// wslay 1.1.1 makes every structural check RFC 6455 asks of a framer (control
// frames: 7-bit length <= 125 and FIN; 16-bit lengths >= 126; 64-bit lengths
// >= 65536 with the top bit clear) but reports them all as WSLAY_ERR_PROTO, so
// the FrameError is read back from the saved header bytes.
//
// Encoding. wslay builds the header and hands it to the send callback, which
// copies it out; the payload stays with the caller. Two quirks of
// wslay_frame_send shape the code: its context only returns to "next header"
// once payload_length payload bytes went through the callback, and it never
// clears its "mask the payload" flag once a masked frame was sent. Unmasked
// payload is passed through by length only (wslay forwards the pointer to the
// callback without reading it); after a masked header the context is dropped
// and the next header starts from a fresh one.
#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "protocol/codec_wslay.hpp"

namespace ringlink {

namespace {

// Bytes of header implied by its first two bytes (2..14).
std::size_t header_size(std::uint8_t b1) noexcept {
  const std::uint8_t len7 = b1 & 0x7F;
  const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  return 2 + ext + ((b1 & 0x80) != 0 ? 4 : 0);
}

// Which rule a header wslay rejected broke, in the order the native decoder
// checks them. `have` bytes of the header are known (at least 2).
FrameError classify(const std::uint8_t* hdr, std::size_t have) noexcept {
  const std::uint8_t len7 = hdr[1] & 0x7F;
  if (is_control(hdr[0] & 0x0F)) {
    if (len7 > max_control_payload) {
      return FrameError::control_too_long;
    }
    if ((hdr[0] & 0x80) == 0) {
      return FrameError::control_fragmented;
    }
  }
  if (len7 == 126 && have >= 4) {
    return FrameError::non_minimal_length;
  }
  if (len7 == 127 && have >= 10) {
    return (hdr[2] & 0x80) != 0 ? FrameError::length_msb_set : FrameError::non_minimal_length;
  }
  return FrameError::none;
}

}  // namespace

// Lives on the heap because wslay keeps a pointer to it as user_data, and the
// decoder itself may move.
struct WslayDecoder::RecvState {
  // The input of the decode() in progress.
  const std::byte* in = nullptr;
  std::size_t left = 0;
  std::size_t served = 0;

  // The frame wslay is reading, as seen by the callback.
  std::uint8_t hdr[max_frame_header] = {};
  std::size_t hdr_have = 0;
  std::size_t hdr_need = 2;  // 2 until the first two bytes tell the rest
  bool header_done = false;
  std::uint64_t payload_left = 0;  // payload bytes not yet served to wslay

  std::uint64_t delivered = 0;  // payload bytes of that frame handed out as chunks
  bool frame_open = false;      // header bytes taken, last chunk not yet handed out

  void start_frame() noexcept {
    hdr_have = 0;
    hdr_need = 2;
    header_done = false;
    payload_left = 0;
  }

  void take(std::uint8_t* buf, std::size_t n) noexcept {
    std::memcpy(buf, in, n);
    in += n;
    left -= n;
    served += n;
  }

  void header_grew() noexcept {
    if (hdr_have == 2 && hdr_need == 2) {
      hdr_need = header_size(hdr[1]);
    }
    if (hdr_have < hdr_need) {
      return;
    }
    header_done = true;
    const std::uint8_t len7 = hdr[1] & 0x7F;
    if (len7 == 126) {
      payload_left = (std::uint64_t{hdr[2]} << 8) | hdr[3];
    } else if (len7 == 127) {
      payload_left = 0;
      for (std::size_t i = 2; i < 10; ++i) {
        payload_left = (payload_left << 8) | hdr[i];
      }
    } else {
      payload_left = len7;
    }
  }

  // Serves header bytes, then payload bytes, never past the end of the frame.
  std::size_t serve(std::uint8_t* buf, std::size_t len) noexcept {
    std::size_t n = 0;
    while (n < len && left > 0) {
      if (!header_done) {
        const std::size_t k = std::min({len - n, left, hdr_need - hdr_have});
        std::memcpy(hdr + hdr_have, in, k);
        take(buf + n, k);
        n += k;
        hdr_have += k;
        frame_open = true;
        header_grew();
      } else if (payload_left > 0) {
        const std::size_t k = static_cast<std::size_t>(
            std::min<std::uint64_t>(payload_left, std::min(len - n, left)));
        take(buf + n, k);
        n += k;
        payload_left -= k;
      } else if (n == 0) {
        // wslay finished the previous frame and asks for the next header.
        start_frame();
      } else {
        break;
      }
    }
    return n;
  }
};

namespace {

ssize_t no_send(const std::uint8_t*, std::size_t, int, void*) { return -1; }

int no_genmask(std::uint8_t*, std::size_t, void*) { return -1; }

}  // namespace

WslayDecoder::WslayDecoder() noexcept = default;

WslayDecoder::~WslayDecoder() {
  if (ctx_ != nullptr) {
    wslay_frame_context_free(ctx_);
  }
  delete rs_;
}

WslayDecoder::WslayDecoder(WslayDecoder&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)),
      rs_(std::exchange(other.rs_, nullptr)),
      error_(std::exchange(other.error_, FrameError::none)) {}

WslayDecoder& WslayDecoder::operator=(WslayDecoder&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) {
      wslay_frame_context_free(ctx_);
    }
    delete rs_;
    ctx_ = std::exchange(other.ctx_, nullptr);
    rs_ = std::exchange(other.rs_, nullptr);
    error_ = std::exchange(other.error_, FrameError::none);
  }
  return *this;
}

DecodeResult WslayDecoder::decode(std::span<std::byte> in, std::size_t /*hold_limit*/) noexcept {
  DecodeResult r;
  if (error_ != FrameError::none) {
    r.status = DecodeStatus::error;
    r.error = error_;
    return r;
  }
  if (ctx_ == nullptr) {
    if (rs_ == nullptr) {
      rs_ = new (std::nothrow) RecvState{};
    }
    constexpr auto recv_callback = [](std::uint8_t* buf, std::size_t len, int /*flags*/,
                                      void* user_data) -> ssize_t {
      const std::size_t served = static_cast<RecvState*>(user_data)->serve(buf, len);
      // wslay_frame_recv turns any return <= 0 into WSLAY_ERR_WANT_READ.
      return served == 0 ? -1 : static_cast<ssize_t>(served);
    };
    static constexpr wslay_frame_callbacks callbacks{no_send, recv_callback, no_genmask};
    if (rs_ == nullptr || wslay_frame_context_init(&ctx_, &callbacks, rs_) != 0) {
      ctx_ = nullptr;
      r.status = DecodeStatus::error;  // out of memory: FrameError::none
      return r;
    }
  }

  rs_->in = in.data();
  rs_->left = in.size();
  rs_->served = 0;
  wslay_frame_iocb iocb{};
  const ssize_t n = wslay_frame_recv(ctx_, &iocb);
  r.consumed = rs_->served;
  rs_->in = nullptr;
  rs_->left = 0;

  if (n == WSLAY_ERR_WANT_READ) {
    return r;
  }
  if (n < 0) {
    error_ = classify(rs_->hdr, rs_->hdr_have);
    r.status = DecodeStatus::error;
    r.error = error_;
    return r;
  }

  FrameHeader h;
  h.fin = iocb.fin != 0;
  h.rsv = iocb.rsv;
  h.opcode = iocb.opcode;
  h.masked = iocb.mask != 0;
  h.payload_length = iocb.payload_length;
  h.header_length = static_cast<std::uint8_t>(rs_->hdr_need);
  if (h.masked) {
    std::memcpy(h.mask.data(), rs_->hdr + rs_->hdr_need - 4, 4);
  }

  r.status = DecodeStatus::chunk;
  r.chunk.header = h;
  // wslay calls its buffer read-only; the span is mutable only because the
  // native decoder's are. Writing into it changes nothing wslay relies on.
  r.chunk.data = std::span<std::byte>(
      reinterpret_cast<std::byte*>(const_cast<std::uint8_t*>(iocb.data)), static_cast<std::size_t>(n));
  r.chunk.offset = rs_->delivered;
  r.chunk.first = rs_->delivered == 0;
  rs_->delivered += static_cast<std::uint64_t>(n);
  r.chunk.last = rs_->delivered == h.payload_length;
  if (r.chunk.last) {
    rs_->delivered = 0;
    rs_->frame_open = false;
  }
  return r;
}

bool WslayDecoder::between_frames() const noexcept {
  return error_ == FrameError::none && (rs_ == nullptr || !rs_->frame_open);
}

void WslayDecoder::reset() noexcept {
  // wslay has no way to rewind a context; the next decode() makes a new one.
  if (ctx_ != nullptr) {
    wslay_frame_context_free(ctx_);
    ctx_ = nullptr;
  }
  if (rs_ != nullptr) {
    *rs_ = RecvState{};
  }
  error_ = FrameError::none;
}

struct WslayEncoder::SendState {
  std::byte* out = nullptr;
  std::size_t written = 0;
  bool header_sent = false;
  MaskKey mask{};
};

namespace {

ssize_t no_recv(std::uint8_t*, std::size_t, int, void*) { return -1; }

}  // namespace

WslayEncoder::WslayEncoder() noexcept = default;

WslayEncoder::~WslayEncoder() {
  if (ctx_ != nullptr) {
    wslay_frame_context_free(ctx_);
  }
  delete ss_;
}

WslayEncoder::WslayEncoder(WslayEncoder&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), ss_(std::exchange(other.ss_, nullptr)) {}

WslayEncoder& WslayEncoder::operator=(WslayEncoder&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) {
      wslay_frame_context_free(ctx_);
    }
    delete ss_;
    ctx_ = std::exchange(other.ctx_, nullptr);
    ss_ = std::exchange(other.ss_, nullptr);
  }
  return *this;
}

std::size_t WslayEncoder::encode_header(std::span<std::byte, max_frame_header> out,
                                        const FrameHeader& h) noexcept {
  if (ctx_ == nullptr) {
    if (ss_ == nullptr) {
      ss_ = new (std::nothrow) SendState{};
    }
    constexpr auto send_callback = [](const std::uint8_t* data, std::size_t len, int /*flags*/,
                                      void* user_data) -> ssize_t {
      auto* ss = static_cast<SendState*>(user_data);
      if (!ss->header_sent) {
        // wslay hands the whole header over in one call; it is at most 14 bytes.
        const std::size_t n = std::min(len, max_frame_header);
        std::memcpy(ss->out, data, n);
        ss->written = n;
        ss->header_sent = true;
      }
      // Payload: accepted unread, the caller sends it.
      return static_cast<ssize_t>(len);
    };
    constexpr auto genmask_callback = [](std::uint8_t* buf, std::size_t len,
                                         void* user_data) -> int {
      const auto* ss = static_cast<const SendState*>(user_data);
      if (len != ss->mask.size()) {
        return -1;
      }
      std::memcpy(buf, ss->mask.data(), len);
      return 0;
    };
    static constexpr wslay_frame_callbacks callbacks{send_callback, no_recv, genmask_callback};
    if (ss_ == nullptr || wslay_frame_context_init(&ctx_, &callbacks, ss_) != 0) {
      ctx_ = nullptr;
      return 0;
    }
  }
  ss_->out = out.data();
  ss_->written = 0;
  ss_->header_sent = false;
  ss_->mask = h.mask;

  // Never dereferenced: for an unmasked frame wslay passes the payload
  // pointer straight to send_callback, which does not read it.
  static const std::uint8_t no_payload = 0;
  wslay_frame_iocb iocb{};
  iocb.fin = h.fin ? 1 : 0;
  iocb.rsv = h.rsv;
  iocb.opcode = h.opcode;
  iocb.mask = h.masked ? 1 : 0;
  iocb.payload_length = h.payload_length;
  iocb.data = &no_payload;
  iocb.data_length = h.masked ? 0 : static_cast<std::size_t>(h.payload_length);
  const ssize_t r = wslay_frame_send(ctx_, &iocb);
  const std::size_t written = ss_->written;
  ss_->out = nullptr;

  if (h.masked || r < 0) {
    // The context either waits for masked payload it will never see, or
    // would mask the next frame's payload too (or failed): start afresh.
    wslay_frame_context_free(ctx_);
    ctx_ = nullptr;
  }
  return r < 0 ? 0 : written;
}

}  // namespace ringlink
