// libFuzzer target: the native and wslay decoders on the same bytes must
// agree: the same frames (headers, unmasked payload, complete or not) and the
// same end state (need_more, or error with the same FrameError). Byte 0 seeds
// how the stream is split for each decoder; chunk boundaries may differ
// (wslay reads through its own 4 KiB buffer), frames may not. Any
// disagreement traps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "protocol/codec_native.hpp"
#include "protocol/codec_wslay.hpp"

#include "tests/fuzz/decode_outcome.hpp"

namespace {

using ringlink::DecodeResult;
using ringlink::DecodeStatus;
using ringlink::FrameChunk;
using ringlink::FrameError;
using ringlink::FrameHeader;
using ringlink::fuzz::check;
using ringlink::fuzz::Frame;
using ringlink::fuzz::Outcome;
using ringlink::fuzz::same_header;


void record(Outcome& out, const FrameChunk& c) {
  if (c.first) {
    check(c.offset == 0);
    check(out.frames.empty() || out.frames.back().complete);
    out.frames.push_back(Frame{c.header, {}, false});
  } else {
    check(!out.frames.empty() && !out.frames.back().complete);
    check(same_header(out.frames.back().header, c.header));
    check(out.frames.back().payload.size() == c.offset);
  }
  Frame& f = out.frames.back();
  f.payload.insert(f.payload.end(), c.data.begin(), c.data.end());
  check(c.last == (f.payload.size() == f.header.payload_length));
  f.complete = c.last;
}

template <typename D>
Outcome run(const std::uint8_t* data, std::size_t size, std::uint32_t split_seed) {
  D dec;
  Outcome out;
  std::vector<std::byte> pending;
  std::size_t pos = 0;
  std::uint32_t state = split_seed;
  while (pos < size) {
    state = state * 1664525u + 1013904223u;
    const std::size_t piece =
        split_seed == 0 ? size - pos : std::min<std::size_t>(size - pos, 1 + (state >> 24) % 23);
    const auto* from = reinterpret_cast<const std::byte*>(data + pos);
    pending.insert(pending.end(), from, from + piece);
    pos += piece;
    for (;;) {
      const DecodeResult r = dec.decode(pending, 0);
      check(r.consumed <= pending.size());
      if (r.status == DecodeStatus::error) {
        out.end = DecodeStatus::error;
        out.error = r.error;
        return out;
      }
      if (r.status == DecodeStatus::chunk) {
        record(out, r.chunk);
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(r.consumed));
      if (r.status == DecodeStatus::need_more) {
        break;
      }
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::uint32_t native_seed = data[0] & 0x0F;
  const std::uint32_t wslay_seed = data[0] >> 4;
  const Outcome a = run<ringlink::NativeDecoder>(data + 1, size - 1, native_seed);
  const Outcome b = run<ringlink::WslayDecoder>(data + 1, size - 1, wslay_seed);
  check(a.end == b.end && a.error == b.error);
  check(a.frames.size() == b.frames.size());
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    check(same_header(a.frames[i].header, b.frames[i].header));
    check(a.frames[i].payload == b.frames[i].payload);
    check(a.frames[i].complete == b.frames[i].complete);
  }
  return 0;
}
