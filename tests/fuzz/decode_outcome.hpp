// What a frame decoder made of one input, for the fuzz targets that compare
// two ways of decoding the same bytes (whole vs split, native vs wslay).
#pragma once

#include <cstddef>
#include <vector>

#include "protocol/frame.hpp"

namespace ringlink::fuzz {

inline void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

inline bool same_header(const FrameHeader& a, const FrameHeader& b) {
  return a.fin == b.fin && a.rsv == b.rsv && a.opcode == b.opcode && a.masked == b.masked &&
         a.mask == b.mask && a.payload_length == b.payload_length &&
         a.header_length == b.header_length;
}

struct Frame {
  FrameHeader header;
  std::vector<std::byte> payload;
  bool complete = false;
};

struct Outcome {
  std::vector<Frame> frames;
  DecodeStatus end = DecodeStatus::need_more;
  FrameError error = FrameError::none;
  std::size_t kept = 0;  // input bytes left unconsumed at the end
};

// Appends one chunk, checking it continues the frame before it consistently
// (and that only a last chunk may be empty).
inline void record_strict(Outcome& out, const FrameChunk& c) {
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
  check(f.payload.size() <= f.header.payload_length);
  check(c.last == (f.payload.size() == f.header.payload_length));
  f.complete = c.last;
  check(c.last || !c.data.empty());
}

}  // namespace ringlink::fuzz
