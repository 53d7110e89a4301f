// The per-message codec over zlib: RFC 7692's worked examples, round trips
// with and without context takeover, and the bounds: inflation stops at the
// cap without allocating past it, bad or truncated data is corrupt.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "protocol/deflate_codec.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

std::span<const std::byte> as_span(std::string_view s) { return std::as_bytes(std::span<const char>(s.data(), s.size())); }
std::string text(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

TEST(DeflateCodec, RfcExamplesInflate) {
  Inflater inf{15};
  ByteBuffer out;
  // 7.2.3.1: "Hello" in one compressed block; 7.2.3.2: the same again,
  // using the first as context.
  ASSERT_EQ(inf.inflate_message(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), out, 100), InflateStatus::ok);
  EXPECT_EQ(text(out.view()), "Hello");
  ASSERT_EQ(inf.inflate_message(bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), out, 100), InflateStatus::ok);
  EXPECT_EQ(text(out.view()), "Hello");
  // 7.2.3.3: a stored (uncompressed) block.
  ASSERT_EQ(inf.inflate_message(bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}), out, 100),
            InflateStatus::ok);
  EXPECT_EQ(text(out.view()), "Hello");
  // 7.2.3.4: BFINAL set.
  Inflater fresh{15};
  ASSERT_EQ(fresh.inflate_message(bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}), out, 100), InflateStatus::ok);
  EXPECT_EQ(text(out.view()), "Hello");
  // 7.2.3.6: an empty message.
  ASSERT_EQ(fresh.inflate_message(bytes({0x00}), out, 100), InflateStatus::ok);
  EXPECT_EQ(out.size(), 0u);
}

TEST(DeflateCodec, DeflatesHelloAsTheRfcDoes) {
  Deflater def{15, 8};
  ByteBuffer out;
  ASSERT_TRUE(def.deflate_message(as_span("Hello"), out));
  const Bytes want = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
  EXPECT_EQ(Bytes(out.view().begin(), out.view().end()), want);
  ASSERT_TRUE(def.deflate_message({}, out));
  EXPECT_EQ(Bytes(out.view().begin(), out.view().end()), bytes({0x00}));
}

TEST(DeflateCodec, RoundTripsWithAndWithoutTakeover) {
  std::mt19937 rng(7);
  for (bool takeover : {true, false}) {
    for (std::uint8_t bits = 9; bits <= 15; ++bits) {
      Deflater def{bits, 8};
      Inflater inf{bits};
      ByteBuffer wire, plain;
      std::size_t first_size = 0;
      std::string repeated;
      for (int i = 0; i < 200; ++i) repeated += static_cast<char>('a' + rng() % 26);
      for (std::size_t size : {0u, 1u, 200u, 16u, 200u, 70000u, 0u}) {
        std::string msg;
        for (std::size_t i = 0; i < size; ++i) msg += static_cast<char>('a' + rng() % 4);
        if (size == 200) msg = repeated;
        ASSERT_TRUE(def.deflate_message(as_span(msg), wire));
        if (size == 200) {
          // The second identical message (within even a 512-byte window of the
          // first) costs less with the first as context.
          if (first_size == 0) {
            first_size = wire.size();
          } else if (takeover) {
            EXPECT_LT(wire.size(), first_size);
          } else {
            EXPECT_EQ(wire.size(), first_size);
          }
        }
        ASSERT_EQ(inf.inflate_message(wire.view(), plain, 1 << 20), InflateStatus::ok);
        EXPECT_EQ(text(plain.view()), msg);
        if (!takeover) {
          def.reset();
          inf.reset();
        }
      }
    }
  }
}

TEST(DeflateCodec, BombStopsAtTheCapWithoutAllocatingPastIt) {
  // 64 MiB of zeros deflate to about 64 KiB.
  const std::string zeros(64u << 20, '\0');
  Deflater def{15, 8};
  ByteBuffer wire, out;
  ASSERT_TRUE(def.deflate_message(as_span(zeros), wire));
  ASSERT_LT(wire.size(), 128u << 10);
  Inflater inf{15};
  const std::size_t cap = 1u << 20;
  EXPECT_EQ(inf.inflate_message(wire.view(), out, cap), InflateStatus::too_big);
  EXPECT_LE(out.capacity(), cap);
}

TEST(DeflateCodec, ExactlyTheCapFits) {
  const std::string msg(5000, 'x');
  Deflater def{15, 8};
  ByteBuffer wire, out;
  ASSERT_TRUE(def.deflate_message(as_span(msg), wire));
  Inflater inf{15};
  ASSERT_EQ(inf.inflate_message(wire.view(), out, 5000), InflateStatus::ok);
  EXPECT_EQ(out.size(), 5000u);
  Inflater small{15};
  EXPECT_EQ(small.inflate_message(wire.view(), out, 4999), InflateStatus::too_big);
}

TEST(DeflateCodec, CorruptAndTruncatedData) {
  Inflater inf{15};
  ByteBuffer out;
  // Block type 3 does not exist.
  EXPECT_EQ(inf.inflate_message(bytes({0xff, 0xff, 0xff}), out, 1000), InflateStatus::corrupt);
  // A message cut in the middle of its block: the tail does not end it.
  std::string msg;
  std::mt19937 rng(3);
  for (int i = 0; i < 4000; ++i) msg += static_cast<char>('a' + rng() % 26);
  Deflater def{15, 8};
  ByteBuffer wire;
  ASSERT_TRUE(def.deflate_message(as_span(msg), wire));
  Inflater fresh{15};
  EXPECT_EQ(fresh.inflate_message(wire.view().first(wire.size() / 2), out, 1 << 20), InflateStatus::corrupt);
  // After a failure the context is reset: a whole message inflates again.
  Inflater again{15};
  EXPECT_EQ(again.inflate_message(wire.view(), out, 1 << 20), InflateStatus::ok);
}

TEST(DeflateCodec, WindowEight) {
  Deflater def{8, 8};
  EXPECT_FALSE(def.usable());
  ByteBuffer out;
  EXPECT_FALSE(def.deflate_message(as_span("x"), out));
  // Inflating with an 8-bit window works (the peer's compressor may use it).
  Inflater inf{8};
  ASSERT_EQ(inf.inflate_message(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), out, 100), InflateStatus::ok);
  EXPECT_EQ(text(out.view()), "Hello");
}

TEST(DeflateCodec, ReleaseFreesAndComesBack) {
  Deflater def{15, 8};
  Inflater inf{15};
  ByteBuffer wire, out;
  EXPECT_FALSE(def.active());
  ASSERT_TRUE(def.deflate_message(as_span("abc"), wire));
  EXPECT_TRUE(def.active());
  def.release();
  EXPECT_FALSE(def.active());
  ASSERT_EQ(inf.inflate_message(wire.view(), out, 10), InflateStatus::ok);
  inf.release();
  EXPECT_FALSE(inf.active());
  ASSERT_TRUE(def.deflate_message(as_span("abc"), wire));
  ASSERT_EQ(inf.inflate_message(wire.view(), out, 10), InflateStatus::ok);
  EXPECT_EQ(text(out.view()), "abc");
}

}  // namespace
}  // namespace ringlink
