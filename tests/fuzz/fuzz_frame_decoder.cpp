// libFuzzer target: the native frame decoder on arbitrary bytes. Byte 0 picks
// the hold_limit and seeds the split points; the rest is the stream. The
// stream is decoded whole and in pieces, each decode() seeing a buffer of
// exactly in.size() bytes (so ASan catches any read past it), and the two
// runs must give the same frames, the same end state and a consistent chunk
// sequence; anything else traps.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "protocol/codec_native.hpp"

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
using ringlink::fuzz::record_strict;
using ringlink::fuzz::same_header;



Outcome run(const std::uint8_t* data, std::size_t size, std::size_t hold_limit,
            std::uint32_t split_seed) {
  ringlink::NativeDecoder dec;
  Outcome out;
  std::vector<std::byte> pending;
  std::size_t pos = 0;
  std::uint32_t state = split_seed;
  while (pos < size) {
    std::size_t piece = size - pos;
    if (split_seed != 0) {
      state = state * 1664525u + 1013904223u;
      piece = std::min<std::size_t>(piece, 1 + (state >> 24) % 17);
    }
    const auto* from = reinterpret_cast<const std::byte*>(data + pos);
    pending.insert(pending.end(), from, from + piece);
    pos += piece;
    for (;;) {
      // An allocation of exactly the input's size: ASan guards its end.
      const std::size_t n = pending.size();
      std::unique_ptr<std::byte[]> buf(new std::byte[n == 0 ? 1 : n]);
      if (n != 0) {
        std::memcpy(buf.get(), pending.data(), n);
      }
      const DecodeResult r = dec.decode({buf.get(), n}, hold_limit);
      check(r.consumed <= n);
      // What is not consumed is left untouched.
      check(n == 0 || std::memcmp(buf.get() + r.consumed, pending.data() + r.consumed,
                                  n - r.consumed) == 0);
      if (r.status == DecodeStatus::error) {
        check(r.error != FrameError::none);
        out.end = DecodeStatus::error;
        out.error = r.error;
        return out;
      }
      check(r.error == FrameError::none);
      if (r.status == DecodeStatus::chunk) {
        check(r.consumed > 0);
        check(r.chunk.data.empty() ||
              (r.chunk.data.data() >= buf.get() && r.chunk.data.data() + r.chunk.data.size() <= buf.get() + n));
        record_strict(out, r.chunk);
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(r.consumed));
      if (r.status == DecodeStatus::need_more) {
        break;
      }
    }
  }
  out.kept = pending.size();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  static constexpr std::size_t holds[] = {0, 0, 1, 16, 64, 128, 300, 4096};
  const std::size_t hold_limit = holds[data[0] & 7];
  const std::uint32_t seed = (data[0] >> 3) | 1u;
  const Outcome whole = run(data + 1, size - 1, hold_limit, 0);
  const Outcome split = run(data + 1, size - 1, hold_limit, seed);
  check(whole.end == split.end && whole.error == split.error && whole.kept == split.kept);
  check(whole.frames.size() == split.frames.size());
  for (std::size_t i = 0; i < whole.frames.size(); ++i) {
    check(same_header(whole.frames[i].header, split.frames[i].header));
    check(whole.frames[i].payload == split.frames[i].payload);
    check(whole.frames[i].complete == split.frames[i].complete);
  }
  return 0;
}
