// The frame codec interface and the compile-time choice between the two
// implementations (`framing` flag). Everything above the codec uses
// ringlink::FrameDecoder / ringlink::encode_frame_header only.
//
//   FrameDecoder dec;                        // one per connection
//   for (;;) {
//     DecodeResult r = dec.decode(buf, /*hold_limit=*/0);
//     buf = buf.subspan(r.consumed);
//     if (r.status != DecodeStatus::chunk) break;   // need_more or error
//     use(r.chunk);                                  // span into buf (native) or
//   }                                                // into the decoder (wslay)
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>

#include "protocol/codec_native.hpp"
#include "protocol/codec_wslay.hpp"
#include "protocol/frame.hpp"
#include "ringlink_config.hpp"

namespace ringlink {

// What both decoders provide.
//  decode(in, hold_limit): decodes from the start of `in`. A decoder that
//    can (native) consumes nothing of a frame whose header + payload is at
//    most hold_limit bytes but not wholly in `in`, and answers need_more, so
//    the caller can keep that frame contiguous and get it as one chunk; a
//    decoder that copies (wslay) may consume regardless. hold_limit 0 means
//    stream every frame. `in` may be modified (unmasked in place).
//  reset(): forget any partial frame.
//  between_frames(): no frame partly decoded, no error.
//  encode_header(out, header): writes header bytes (header.payload_length,
//    fin, rsv, opcode, masked/mask) and returns how many (2..14), or 0 when
//    the header cannot be encoded (payload_length >= 2^63, or a control
//    opcode with payload_length > 125).
//  Both decoders report the structural errors of frame.hpp (FrameError) at
//  the same byte and with the same value, and nothing else: RSV bits,
//  unknown opcodes, masking direction and fragment order are the session's.
//  After an error, decode() repeats it (consuming nothing) until reset().
template <typename D>
concept FrameDecoderLike = requires(D d, std::span<std::byte> in, std::size_t hold_limit) {
  { d.decode(in, hold_limit) } -> std::same_as<DecodeResult>;
  { d.reset() } -> std::same_as<void>;
  { std::as_const(d).between_frames() } -> std::same_as<bool>;
};

template <typename E>
concept FrameEncoderLike = requires(E e, std::span<std::byte, max_frame_header> out,
                                    const FrameHeader& h) {
  { e.encode_header(out, h) } -> std::same_as<std::size_t>;
};

static_assert(FrameDecoderLike<NativeDecoder>);
static_assert(FrameDecoderLike<WslayDecoder>);
static_assert(FrameEncoderLike<NativeEncoder>);
static_assert(FrameEncoderLike<WslayEncoder>);

using FrameDecoder = std::conditional_t<config::framing == config::Framing::native,
                                        NativeDecoder, WslayDecoder>;
using FrameEncoder = std::conditional_t<config::framing == config::Framing::native,
                                        NativeEncoder, WslayEncoder>;

}  // namespace ringlink
