// The native and wslay codecs checked against each other on seeded random
// input: random frame streams (every length form, masked or not, every opcode,
// FIN and RSV bits) must encode to identical header bytes with both encoders
// and decode identically with both decoders; random byte strings and mutated
// frame streams must be accepted identically by both or rejected by both with
// the same FrameError. Chunk boundaries are allowed to differ (wslay reads
// through a 4 KiB buffer), so outputs are compared as whole frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/codec.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

struct Frame {
  FrameHeader header;
  Bytes payload;
  bool complete = false;
};

struct Decoded {
  std::vector<Frame> frames;
  DecodeStatus end = DecodeStatus::need_more;
  FrameError error = FrameError::none;
  bool contract_broken = false;  // a chunk that contradicts the ones before it
};

bool same_header(const FrameHeader& a, const FrameHeader& b) {
  return a.fin == b.fin && a.rsv == b.rsv && a.opcode == b.opcode && a.masked == b.masked &&
         a.mask == b.mask && a.payload_length == b.payload_length &&
         a.header_length == b.header_length;
}

bool operator==(const Decoded& a, const Decoded& b) {
  if (a.end != b.end || a.error != b.error || a.contract_broken || b.contract_broken ||
      a.frames.size() != b.frames.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    if (!same_header(a.frames[i].header, b.frames[i].header) ||
        a.frames[i].payload != b.frames[i].payload ||
        a.frames[i].complete != b.frames[i].complete) {
      return false;
    }
  }
  return true;
}

void PrintTo(const Decoded& d, std::ostream* os) {
  for (const Frame& f : d.frames) {
    const FrameHeader& h = f.header;
    *os << "[fin=" << h.fin << " rsv=" << int{h.rsv} << " op=" << int{h.opcode}
        << " masked=" << h.masked << " len=" << h.payload_length
        << " hlen=" << int{h.header_length} << " got=" << f.payload.size()
        << (f.complete ? "" : " partial") << "] ";
  }
  *os << "end=" << int(d.end) << " error=" << to_string(d.error)
      << (d.contract_broken ? " CONTRACT BROKEN" : "");
}

void record(Decoded& out, const FrameChunk& c) {
  if (c.first) {
    if (c.offset != 0 || (!out.frames.empty() && !out.frames.back().complete)) {
      out.contract_broken = true;
    }
    out.frames.push_back(Frame{c.header, {}, false});
  } else if (out.frames.empty() || out.frames.back().complete ||
             !same_header(out.frames.back().header, c.header) ||
             out.frames.back().payload.size() != c.offset) {
    out.contract_broken = true;
    return;
  }
  Frame& f = out.frames.back();
  f.payload.insert(f.payload.end(), c.data.begin(), c.data.end());
  if (c.last) {
    f.complete = true;
    out.contract_broken |= f.payload.size() != f.header.payload_length;
  } else {
    out.contract_broken |= c.data.empty() || f.payload.size() >= f.header.payload_length;
  }
}

template <typename D>
Decoded feed(std::span<const std::byte> input, std::mt19937_64& rng) {
  D dec;
  Decoded out;
  Bytes pending;
  std::size_t pos = 0;
  while (pos < input.size()) {
    const std::size_t piece = std::min<std::size_t>(
        input.size() - pos, 1 + rng() % (rng() % 3 == 0 ? 3000 : 20));
    pending.insert(pending.end(), input.begin() + static_cast<std::ptrdiff_t>(pos),
                   input.begin() + static_cast<std::ptrdiff_t>(pos + piece));
    pos += piece;
    for (int spins = 0; spins < 100000; ++spins) {
      const DecodeResult r = dec.decode(pending, 0);
      if (r.consumed > pending.size()) {
        out.contract_broken = true;
        return out;
      }
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

// Structurally valid header fields, or (rarely) a fragmented control frame.
FrameHeader random_header(std::mt19937_64& rng, bool allow_huge) {
  FrameHeader h;
  h.fin = rng() % 4 != 0;
  h.rsv = rng() % 3 == 0 ? static_cast<std::uint8_t>(rng() % 8) : 0;
  h.opcode = static_cast<std::uint8_t>(rng() % 16);
  h.masked = rng() % 2 == 0;
  if (h.masked) {
    for (auto& k : h.mask) {
      k = static_cast<std::uint8_t>(rng());
    }
  }
  switch (rng() % 10) {
    case 0:
      h.payload_length = 0;
      break;
    case 1:
      h.payload_length = 125 + rng() % 3;  // 125, 126, 127
      break;
    case 2:
      h.payload_length = rng() % 2 == 0 ? 65535 : 65536;
      break;
    case 3:
      h.payload_length = 126 + rng() % 2000;
      break;
    case 4:
      h.payload_length = allow_huge ? (1ull << 16) + (rng() >> 1) % ((1ull << 63) - (1ull << 16))
                                    : 65536 + rng() % 5000;
      break;
    default:
      h.payload_length = rng() % 126;
      break;
  }
  if (is_control(h.opcode)) {
    h.payload_length %= 126;
    if (rng() % 20 != 0) {
      h.fin = true;
    }
  }
  return h;
}

Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) {
    x = std::byte{static_cast<std::uint8_t>(rng())};
  }
  return b;
}

// A stream of frames plus what decoding it must give.
struct Stream {
  Bytes wire;
  Decoded expected;
};

Stream random_stream(std::mt19937_64& rng, bool wslay_encodes) {
  NativeEncoder native;
  WslayEncoder wslay;
  Stream s;
  const int frames = 1 + static_cast<int>(rng() % 6);
  for (int i = 0; i < frames; ++i) {
    const bool last_frame = i == frames - 1;
    FrameHeader h = random_header(rng, last_frame);
    std::array<std::byte, max_frame_header> a{};
    std::array<std::byte, max_frame_header> b{};
    const std::size_t na = native.encode_header(a, h);
    const std::size_t nb = wslay.encode_header(b, h);
    EXPECT_EQ(na, nb);
    EXPECT_TRUE(std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(na), b.begin()));
    const auto& hdr_bytes = wslay_encodes ? b : a;
    const std::size_t n = wslay_encodes ? nb : na;
    EXPECT_GE(n, 2u);
    s.wire.insert(s.wire.end(), hdr_bytes.begin(), hdr_bytes.begin() + static_cast<std::ptrdiff_t>(n));
    h.header_length = static_cast<std::uint8_t>(n);
    if (!h.masked) {
      h.mask = {};
    }
    if (is_control(h.opcode) && !h.fin) {
      s.expected.end = DecodeStatus::error;
      s.expected.error = FrameError::control_fragmented;
      return s;
    }
    // A huge frame is cut short: it ends the stream, partial.
    const bool partial = h.payload_length > 80000 || (last_frame && rng() % 5 == 0);
    const std::size_t have = partial ? static_cast<std::size_t>(
                                           rng() % std::min<std::uint64_t>(h.payload_length + 1, 3000))
                                     : static_cast<std::size_t>(h.payload_length);
    const Bytes plain = random_bytes(rng, have);
    Bytes on_wire = plain;
    if (h.masked) {
      apply_mask(on_wire, h.mask, 0);
    }
    s.wire.insert(s.wire.end(), on_wire.begin(), on_wire.end());
    const bool complete = have == h.payload_length;
    if (have > 0 || complete) {
      s.expected.frames.push_back(Frame{h, plain, complete});
    }
    if (!complete) {
      break;
    }
  }
  return s;
}

class CodecDifferential : public ::testing::Test {
 protected:
  // Both decoders, each with its own random split of the input.
  void check_agree(const Bytes& input, std::uint64_t seed, const char* what) {
    std::mt19937_64 rng_a(seed);
    std::mt19937_64 rng_b(seed ^ 0x9E3779B97F4A7C15ull);
    const Decoded native = feed<NativeDecoder>(input, rng_a);
    const Decoded wslay = feed<WslayDecoder>(input, rng_b);
    EXPECT_EQ(native, wslay) << what << " seed=" << seed;
    ++compared_;
    (native.end == DecodeStatus::error ? rejected_ : accepted_)++;
  }
  int compared_ = 0;
  int accepted_ = 0;
  int rejected_ = 0;
};

TEST_F(CodecDifferential, RandomFramesRoundTripThroughEitherCodec) {
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 3000; ++i) {
    const Stream s = random_stream(rng, i % 2 == 1);
    std::mt19937_64 split_rng(static_cast<std::uint64_t>(i));
    EXPECT_EQ(feed<NativeDecoder>(s.wire, split_rng), s.expected) << "native, case " << i;
    EXPECT_EQ(feed<WslayDecoder>(s.wire, split_rng), s.expected) << "wslay, case " << i;
    check_agree(s.wire, static_cast<std::uint64_t>(i), "random frames");
  }
  EXPECT_EQ(compared_, 3000);
  EXPECT_GT(rejected_, 10);  // fragmented control frames
}

TEST_F(CodecDifferential, RandomBytesAreJudgedAlike) {
  std::mt19937_64 rng(77);
  static constexpr std::uint8_t second[] = {0x00, 0x7D, 0x7E, 0x7F, 0x80, 0xFD, 0xFE, 0xFF};
  for (int i = 0; i < 4000; ++i) {
    Bytes b = random_bytes(rng, rng() % 48);
    // Half the time steer the length byte to the interesting values.
    if (b.size() > 1 && rng() % 2 == 0) {
      b[1] = std::byte{second[rng() % std::size(second)]};
    }
    if (b.size() > 2 && rng() % 3 == 0) {
      b[2] = std::byte{static_cast<std::uint8_t>(rng() % 2 == 0 ? 0x00 : 0x80)};
    }
    check_agree(b, static_cast<std::uint64_t>(i) + 100000, "random bytes");
  }
  EXPECT_GT(accepted_, 100);
  EXPECT_GT(rejected_, 100);
}

TEST_F(CodecDifferential, MutatedFramesAreJudgedAlike) {
  std::mt19937_64 rng(4242);
  for (int i = 0; i < 3000; ++i) {
    Bytes b = random_stream(rng, false).wire;
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations && !b.empty(); ++m) {
      const std::size_t at = rng() % 2 == 0 ? rng() % std::min<std::size_t>(b.size(), 16)
                                            : rng() % b.size();
      switch (rng() % 5) {
        case 0:
          b[at] ^= std::byte{static_cast<std::uint8_t>(1u << (rng() % 8))};
          break;
        case 1:
          b[at] = std::byte{static_cast<std::uint8_t>(rng())};
          break;
        case 2:
          b.resize(at);
          break;
        case 3:
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), std::byte{static_cast<std::uint8_t>(rng())});
          break;
        default:
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at));
          break;
      }
    }
    check_agree(b, static_cast<std::uint64_t>(i) + 200000, "mutated frames");
  }
  EXPECT_GT(accepted_, 100);
  EXPECT_GT(rejected_, 100);
}

TEST_F(CodecDifferential, EncodersAgreeOnEveryHeaderShape) {
  NativeEncoder native;
  WslayEncoder wslay;
  std::mt19937_64 rng(99);
  for (int i = 0; i < 20000; ++i) {
    FrameHeader h;
    h.fin = rng() % 2 == 0;
    h.rsv = static_cast<std::uint8_t>(rng() % 8);
    h.opcode = static_cast<std::uint8_t>(rng() % 16);
    h.masked = rng() % 2 == 0;
    for (auto& k : h.mask) {
      k = static_cast<std::uint8_t>(rng());
    }
    // Lengths clustered at every boundary, including the unencodable ones.
    static constexpr std::uint64_t edges[] = {0, 125, 126, 65535, 65536, 1ull << 32,
                                              (1ull << 63) - 1, 1ull << 63, ~0ull};
    const std::uint64_t edge = edges[rng() % std::size(edges)];
    const std::uint64_t jitter = rng() % 3;
    h.payload_length = rng() % 2 == 0 ? edge + jitter : edge - jitter;
    std::array<std::byte, max_frame_header> a{};
    std::array<std::byte, max_frame_header> b{};
    const std::size_t na = native.encode_header(a, h);
    const std::size_t nb = wslay.encode_header(b, h);
    ASSERT_EQ(na, nb) << i;
    ASSERT_TRUE(std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(na), b.begin())) << i;
    const bool encodable = (h.payload_length >> 63) == 0 &&
                           !(is_control(h.opcode) && h.payload_length > max_control_payload);
    ASSERT_EQ(na != 0, encodable) << i;
  }
}

}  // namespace
}  // namespace ringlink
