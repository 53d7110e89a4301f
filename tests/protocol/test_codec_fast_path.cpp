// The native decoder's fast path (a whole masked frame with a 7-bit length)
// against what the frame is, and against the general path: the same frame
// fed one byte at a time never reaches the fast path until its last byte, and
// frames with 16/64-bit lengths, unmasked frames or control frames without
// FIN never take it. Frames sit at every alignment with bytes of a next
// frame after them.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "protocol/codec.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

Bytes plain_payload(std::size_t n, std::uint8_t salt) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = std::byte{static_cast<std::uint8_t>(i * 13 + salt)};
  return b;
}

// b0 as given; the shortest length form for `plain`, as RFC 6455 requires.
Bytes wire_frame(std::uint8_t b0, const Bytes& plain, bool masked, const MaskKey& key) {
  Bytes w;
  auto put = [&](unsigned v) { w.push_back(std::byte{static_cast<std::uint8_t>(v)}); };
  put(b0);
  const unsigned m = masked ? 0x80 : 0x00;
  const std::uint64_t n = plain.size();
  if (n < 126) {
    put(m | static_cast<unsigned>(n));
  } else if (n <= 0xFFFF) {
    put(m | 126);
    put(static_cast<unsigned>(n >> 8) & 0xFF);
    put(static_cast<unsigned>(n) & 0xFF);
  } else {
    put(m | 127);
    for (int shift = 56; shift >= 0; shift -= 8) put(static_cast<unsigned>(n >> shift) & 0xFF);
  }
  if (masked) {
    for (std::uint8_t k : key) put(k);
  }
  for (std::size_t i = 0; i < plain.size(); ++i) w.push_back(masked ? plain[i] ^ std::byte{key[i % 4]} : plain[i]);
  return w;
}

struct Outcome {
  bool error = false;
  FrameHeader header;
  Bytes data;
  std::size_t consumed = 0;  // bytes of the input the frame took
  int chunks = 0;
};

// The whole input at once: one decode call.
Outcome decode_whole(std::span<std::byte> in) {
  NativeDecoder dec;
  Outcome o;
  const DecodeResult r = dec.decode(in, 1 << 20);
  if (r.status == DecodeStatus::error) {
    o.error = true;
    return o;
  }
  if (r.status != DecodeStatus::chunk) return o;
  o.header = r.chunk.header;
  o.data.assign(r.chunk.data.begin(), r.chunk.data.end());
  o.consumed = r.consumed;
  o.chunks = r.chunk.last ? 1 : -1;
  return o;
}

// One more byte per call (no holding), as a slow peer would deliver it, up to
// the frame's last chunk; the bytes after the frame are never offered.
Outcome decode_bytewise(const Bytes& frame) {
  NativeDecoder dec;
  Outcome o;
  Bytes buf(frame);
  std::size_t pos = 0;
  for (std::size_t have = 0; have <= buf.size(); ++have) {
    for (;;) {
      const DecodeResult r = dec.decode(std::span(buf).subspan(pos, have - pos), 0);
      if (r.status == DecodeStatus::error) {
        o.error = true;
        return o;
      }
      if (r.status == DecodeStatus::need_more) break;
      pos += r.consumed;
      if (r.chunk.first) o.header = r.chunk.header;
      o.data.insert(o.data.end(), r.chunk.data.begin(), r.chunk.data.end());
      ++o.chunks;
      if (r.chunk.last) {
        o.consumed = pos;
        return o;
      }
      if (r.consumed == 0) break;
    }
  }
  return o;
}

void expect_same_header(const FrameHeader& a, const FrameHeader& b, const char* what) {
  EXPECT_EQ(a.fin, b.fin) << what;
  EXPECT_EQ(a.rsv, b.rsv) << what;
  EXPECT_EQ(a.opcode, b.opcode) << what;
  EXPECT_EQ(a.masked, b.masked) << what;
  EXPECT_EQ(a.mask, b.mask) << what;
  EXPECT_EQ(a.payload_length, b.payload_length) << what;
  EXPECT_EQ(a.header_length, b.header_length) << what;
}

TEST(NativeDecoderFastPath, MatchesTheFrameAndTheBytewiseDecode) {
  const std::array<MaskKey, 3> keys{MaskKey{0x12, 0x34, 0x56, 0x78}, MaskKey{0, 0, 0, 0},
                                    MaskKey{0xFF, 0x01, 0x80, 0x7F}};
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 130; ++n) lengths.push_back(n);
  lengths.push_back(0xFFFF);
  lengths.push_back(0x10000);
  const Bytes next = {std::byte{0x82}, std::byte{0x85}, std::byte{0x01}};  // a following frame's start
  std::vector<std::byte> storage(0x10000 + 64);
  for (std::uint8_t b0 : {0x81, 0x82, 0x02, 0x00, 0x80, 0xC1, 0xF2, 0x89, 0x8A, 0x88, 0x09}) {
    for (bool masked : {true, false}) {
      for (std::size_t k = 0; k < keys.size(); ++k) {
        if (!masked && k > 0) continue;
        for (std::size_t n : lengths) {
          if ((b0 & 0x08) != 0 && n > 125) continue;  // control frames: checked elsewhere
          const Bytes plain = plain_payload(n, static_cast<std::uint8_t>(b0 + k));
          const Bytes frame = wire_frame(b0, plain, masked, keys[k]);
          const Outcome slow = decode_bytewise(frame);
          for (std::size_t align = 0; align < 8; ++align) {
            std::byte* at = storage.data() + align;
            std::memcpy(at, frame.data(), frame.size());
            std::memcpy(at + frame.size(), next.data(), next.size());
            const Outcome fast = decode_whole(std::span(at, frame.size() + next.size()));
            SCOPED_TRACE(testing::Message() << "b0=" << int{b0} << " masked=" << masked << " key=" << k
                                            << " n=" << n << " align=" << align);
            const bool control_without_fin = (b0 & 0x88) == 0x08;
            ASSERT_EQ(fast.error, control_without_fin);
            ASSERT_EQ(slow.error, control_without_fin);
            if (control_without_fin) continue;
            ASSERT_EQ(fast.chunks, 1);
            EXPECT_EQ(fast.consumed, frame.size());
            EXPECT_EQ(fast.data, plain);
            EXPECT_EQ(fast.header.fin, (b0 & 0x80) != 0);
            EXPECT_EQ(fast.header.rsv, (b0 >> 4) & 0x7);
            EXPECT_EQ(fast.header.opcode, b0 & 0x0F);
            EXPECT_EQ(fast.header.masked, masked);
            EXPECT_EQ(fast.header.mask, masked ? keys[k] : MaskKey{});
            EXPECT_EQ(fast.header.payload_length, n);
            EXPECT_EQ(slow.consumed, frame.size());
            EXPECT_EQ(slow.data, plain);
            expect_same_header(fast.header, slow.header, "whole vs bytewise");
          }
        }
      }
    }
  }
}

TEST(NativeDecoderFastPath, IncompleteSmallFrameStreamsOrWaitsAsBefore) {
  const MaskKey key{9, 8, 7, 6};
  const Bytes plain = plain_payload(40, 3);
  Bytes frame = wire_frame(0x82, plain, true, key);
  NativeDecoder held;
  Bytes part(frame.begin(), frame.end() - 1);
  const Bytes before = part;
  // Held (the frame fits the limit): nothing consumed, nothing unmasked.
  DecodeResult r = held.decode(part, 1 << 20);
  EXPECT_EQ(r.status, DecodeStatus::need_more);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(part, before);
  // Streamed (no holding): all but the last byte now, the last byte next.
  NativeDecoder streamed;
  r = streamed.decode(part, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_TRUE(r.chunk.first);
  EXPECT_FALSE(r.chunk.last);
  EXPECT_EQ(r.consumed, part.size());
  EXPECT_EQ(Bytes(r.chunk.data.begin(), r.chunk.data.end()), Bytes(plain.begin(), plain.end() - 1));
  Bytes last(frame.end() - 1, frame.end());
  r = streamed.decode(last, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_TRUE(r.chunk.last);
  EXPECT_EQ(r.chunk.offset, 39u);
  ASSERT_EQ(r.chunk.data.size(), 1u);
  EXPECT_EQ(r.chunk.data[0], plain.back());
}

TEST(NativeDecoderFastPath, ErrorStaysStickyBeforeTheFastPath) {
  // A fragmented ping fails; a good frame offered afterwards must not pass.
  NativeDecoder dec;
  Bytes bad = wire_frame(0x09, {}, true, MaskKey{1, 2, 3, 4});
  EXPECT_EQ(dec.decode(bad, 0).status, DecodeStatus::error);
  Bytes good = wire_frame(0x82, plain_payload(10, 1), true, MaskKey{1, 2, 3, 4});
  EXPECT_EQ(dec.decode(good, 0).status, DecodeStatus::error);
}

}  // namespace
}  // namespace ringlink
