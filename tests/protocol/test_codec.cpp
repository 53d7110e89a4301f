// Frame codec tests, written once and run against both codecs (typed tests):
// every length form and its boundaries, masking, raw opcodes and RSV bits,
// structural errors, and the same input fed whole, one byte at a time and at
// random split points. Inputs are placed right before a guard page, so a
// decoder that reads past in.size() crashes the test. Native-only behaviour
// (hold_limit) and apply_mask have their own tests below.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "protocol/codec.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

// A region whose end touches a PROT_NONE page.
class GuardedBuffer {
 public:
  GuardedBuffer() = default;
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  ~GuardedBuffer() { release(); }

  // Copies `bytes` so that the last one sits right before the guard page.
  std::span<std::byte> place(std::span<const std::byte> bytes) {
    if (bytes.size() > capacity_) {
      release();
      const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
      capacity_ = (bytes.size() + page - 1) / page * page + page;
      void* p = mmap(nullptr, capacity_ + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      EXPECT_NE(p, MAP_FAILED);
      base_ = static_cast<std::byte*>(p);
      EXPECT_EQ(mprotect(base_ + capacity_, page, PROT_NONE), 0);
      mapped_ = capacity_ + page;
    }
    std::byte* start = base_ + capacity_ - bytes.size();
    if (!bytes.empty()) {
      std::memcpy(start, bytes.data(), bytes.size());
    }
    return {start, bytes.size()};
  }

 private:
  void release() {
    if (base_ != nullptr) {
      munmap(base_, mapped_);
      base_ = nullptr;
      capacity_ = 0;
    }
  }
  std::byte* base_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t mapped_ = 0;
};

// What a decoder made of a byte stream, independent of chunking.
struct Frame {
  FrameHeader header;
  Bytes payload;
  bool complete = false;
};

struct Decoded {
  std::vector<Frame> frames;
  DecodeStatus end = DecodeStatus::need_more;
  FrameError error = FrameError::none;
  std::size_t chunks = 0;
};

bool same_header(const FrameHeader& a, const FrameHeader& b) {
  return a.fin == b.fin && a.rsv == b.rsv && a.opcode == b.opcode && a.masked == b.masked &&
         a.mask == b.mask && a.payload_length == b.payload_length &&
         a.header_length == b.header_length;
}

std::string describe(const FrameHeader& h) {
  std::ostringstream os;
  os << "fin=" << h.fin << " rsv=" << int{h.rsv} << " op=" << int{h.opcode}
     << " masked=" << h.masked << " key=" << int{h.mask[0]} << ',' << int{h.mask[1]} << ','
     << int{h.mask[2]} << ',' << int{h.mask[3]} << " len=" << h.payload_length
     << " hlen=" << int{h.header_length};
  return os.str();
}

std::string describe(const Decoded& d) {
  std::ostringstream os;
  for (const Frame& f : d.frames) {
    std::uint64_t hash = 1469598103934665603ull;
    for (std::byte b : f.payload) {
      hash = (hash ^ std::to_integer<std::uint64_t>(b)) * 1099511628211ull;
    }
    os << '[' << describe(f.header) << " got=" << f.payload.size() << " hash=" << hash
       << (f.complete ? " complete" : " partial") << "] ";
  }
  os << "end=" << int(d.end) << ' ' << to_string(d.error);
  return os.str();
}

bool same_output(const Decoded& a, const Decoded& b) {
  if (a.end != b.end || a.error != b.error || a.frames.size() != b.frames.size()) {
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

// Checks the chunk contract and folds the chunk into `out`.
void record(Decoded& out, const FrameChunk& c) {
  ++out.chunks;
  if (c.first) {
    ASSERT_EQ(c.offset, 0u);
    ASSERT_TRUE(out.frames.empty() || out.frames.back().complete)
        << "new frame before the previous one ended";
    out.frames.push_back(Frame{c.header, {}, false});
  } else {
    ASSERT_FALSE(out.frames.empty() || out.frames.back().complete) << "continuation of nothing";
    ASSERT_TRUE(same_header(c.header, out.frames.back().header));
    ASSERT_EQ(c.offset, out.frames.back().payload.size());
  }
  Frame& f = out.frames.back();
  f.payload.insert(f.payload.end(), c.data.begin(), c.data.end());
  if (c.last) {
    ASSERT_EQ(f.payload.size(), f.header.payload_length);
    f.complete = true;
  } else {
    ASSERT_LT(f.payload.size(), f.header.payload_length);
    // Only a zero-length frame may produce an empty chunk.
    ASSERT_FALSE(c.data.empty());
  }
}

// Feeds `input` to `dec` in pieces of the given sizes, as a connection would:
// bytes not consumed stay at the front of the next call's input.
template <typename D>
Decoded feed(D& dec, std::span<const std::byte> input, const std::vector<std::size_t>& pieces,
             std::size_t hold_limit, std::size_t* kept = nullptr) {
  Decoded out;
  GuardedBuffer guarded;
  Bytes pending;
  std::size_t pos = 0;
  for (std::size_t piece : pieces) {
    pending.insert(pending.end(), input.begin() + static_cast<std::ptrdiff_t>(pos),
                   input.begin() + static_cast<std::ptrdiff_t>(pos + piece));
    pos += piece;
    for (int spins = 0;; ++spins) {
      EXPECT_LT(spins, 1 << 20) << "decoder makes no progress";
      if (spins >= 1 << 20) {
        return out;
      }
      std::span<std::byte> buf = guarded.place(pending);
      const DecodeResult r = dec.decode(buf, hold_limit);
      EXPECT_LE(r.consumed, buf.size());
      // Bytes the decoder did not consume are the caller's and unchanged.
      EXPECT_TRUE(std::equal(buf.begin() + static_cast<std::ptrdiff_t>(r.consumed), buf.end(),
                             pending.begin() + static_cast<std::ptrdiff_t>(r.consumed)));
      if (r.status == DecodeStatus::error) {
        EXPECT_NE(r.error, FrameError::none);
        out.end = DecodeStatus::error;
        out.error = r.error;
        // A failed stream stays failed.
        const DecodeResult again = dec.decode(buf, hold_limit);
        EXPECT_EQ(again.status, DecodeStatus::error);
        EXPECT_EQ(again.error, r.error);
        return out;
      }
      EXPECT_EQ(r.error, FrameError::none);
      if (r.status == DecodeStatus::chunk) {
        record(out, r.chunk);
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(r.consumed));
      if (r.status == DecodeStatus::need_more) {
        break;
      }
    }
  }
  out.end = DecodeStatus::need_more;
  if (kept != nullptr) {
    *kept = pending.size();
  }
  return out;
}

std::vector<std::size_t> whole(std::size_t n) { return {n}; }

std::vector<std::size_t> bytewise(std::size_t n) { return std::vector<std::size_t>(n, 1); }

std::vector<std::size_t> random_split(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> pieces;
  while (n > 0) {
    // Mostly short pieces (split headers), sometimes long ones.
    const std::size_t max = rng() % 4 == 0 ? 5000 : 16;
    const std::size_t k = std::min<std::size_t>(n, 1 + rng() % max);
    pieces.push_back(k);
    n -= k;
  }
  return pieces;
}

// Wire bytes built by hand (not by the encoders under test). `form` is the
// length encoding: 7, 16 or 64, whatever the length, so non-minimal
// encodings can be written.
struct Wire {
  Bytes bytes;

  Wire& header(std::uint8_t b0, int form, std::uint64_t len, bool masked = false,
               MaskKey key = {}) {
    const std::uint8_t m = masked ? 0x80 : 0x00;
    put(b0);
    if (form == 7) {
      put(static_cast<std::uint8_t>(m | len));
    } else if (form == 16) {
      put(m | 126);
      put(static_cast<std::uint8_t>(len >> 8));
      put(static_cast<std::uint8_t>(len));
    } else {
      put(m | 127);
      for (int shift = 56; shift >= 0; shift -= 8) {
        put(static_cast<std::uint8_t>(len >> shift));
      }
    }
    if (masked) {
      for (std::uint8_t k : key) {
        put(k);
      }
    }
    return *this;
  }

  // Appends `plain`, masked byte by byte when a key is given.
  Wire& payload(const Bytes& plain, bool masked = false, MaskKey key = {}) {
    for (std::size_t i = 0; i < plain.size(); ++i) {
      bytes.push_back(masked ? plain[i] ^ std::byte{key[i % 4]} : plain[i]);
    }
    return *this;
  }

  Wire& raw(std::initializer_list<int> values) {
    for (int v : values) {
      put(static_cast<std::uint8_t>(v));
    }
    return *this;
  }

  void put(int v) { bytes.push_back(std::byte{static_cast<std::uint8_t>(v)}); }
};

Bytes pattern(std::size_t n, std::uint8_t salt = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = std::byte{static_cast<std::uint8_t>(i * 7 + salt + (i >> 8))};
  }
  return b;
}

Bytes text(const char* s) {
  Bytes b;
  for (const char* p = s; *p != '\0'; ++p) {
    b.push_back(std::byte{static_cast<std::uint8_t>(*p)});
  }
  return b;
}

FrameHeader hdr(bool fin, std::uint8_t rsv, std::uint8_t opcode, std::uint64_t len,
                std::uint8_t header_length, bool masked = false, MaskKey key = {}) {
  FrameHeader h;
  h.fin = fin;
  h.rsv = rsv;
  h.opcode = opcode;
  h.masked = masked;
  h.mask = masked ? key : MaskKey{};
  h.payload_length = len;
  h.header_length = header_length;
  return h;
}

struct DecodeCase {
  std::string name;
  Bytes input;
  Decoded expected;
};

Frame frame(FrameHeader h, Bytes payload, bool complete = true) {
  return Frame{h, std::move(payload), complete};
}

Decoded ok(std::vector<Frame> frames) { return Decoded{std::move(frames), DecodeStatus::need_more, FrameError::none, 0}; }

Decoded fail(std::vector<Frame> frames, FrameError e) {
  return Decoded{std::move(frames), DecodeStatus::error, e, 0};
}

std::vector<DecodeCase> decode_cases() {
  const MaskKey key{0x37, 0xfa, 0x21, 0x3d};
  const MaskKey key2{0xde, 0xad, 0xbe, 0xef};
  std::vector<DecodeCase> cases;

  // RFC 6455 section 5.7 examples, byte for byte.
  cases.push_back({"rfc_unmasked_hello",
                   Wire{}.raw({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}).bytes,
                   ok({frame(hdr(true, 0, 1, 5, 2), text("Hello"))})});
  cases.push_back({"rfc_masked_hello",
                   Wire{}.raw({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}).bytes,
                   ok({frame(hdr(true, 0, 1, 5, 6, true, key), text("Hello"))})});
  cases.push_back({"rfc_fragmented_hello",
                   Wire{}.raw({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}).bytes,
                   ok({frame(hdr(false, 0, 1, 3, 2), text("Hel")),
                       frame(hdr(true, 0, 0, 2, 2), text("lo"))})});
  cases.push_back({"rfc_ping_pong",
                   Wire{}.raw({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x8a, 0x85, 0x37, 0xfa,
                               0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}).bytes,
                   ok({frame(hdr(true, 0, 9, 5, 2), text("Hello")),
                       frame(hdr(true, 0, 10, 5, 6, true, key), text("Hello"))})});

  // Every length form at its boundaries, unmasked and masked.
  struct Len {
    std::uint64_t len;
    int form;
    std::uint8_t hlen;
  };
  for (Len l : {Len{0, 7, 2}, Len{1, 7, 2}, Len{125, 7, 2}, Len{126, 16, 4}, Len{127, 16, 4},
                Len{65535, 16, 4}, Len{65536, 64, 10}, Len{70001, 64, 10}}) {
    for (bool masked : {false, true}) {
      const Bytes p = pattern(static_cast<std::size_t>(l.len), static_cast<std::uint8_t>(l.len));
      const std::uint8_t hlen = static_cast<std::uint8_t>(l.hlen + (masked ? 4 : 0));
      cases.push_back({"len_" + std::to_string(l.len) + (masked ? "_masked" : ""),
                       Wire{}.header(0x82, l.form, l.len, masked, key2).payload(p, masked, key2).bytes,
                       ok({frame(hdr(true, 0, 2, l.len, hlen, masked, key2), p)})});
    }
  }

  // Lengths past 2^32 and the largest legal one: the header and what payload
  // there is, the frame left open.
  for (std::uint64_t len : {(1ull << 32) + 5, (1ull << 63) - 1}) {
    const Bytes p = pattern(1000, 3);
    cases.push_back({"len_huge_" + std::to_string(len),
                     Wire{}.header(0x02, 64, len, true, key).payload(p, true, key).bytes,
                     ok({frame(hdr(false, 0, 2, len, 14, true, key), p, false)})});
  }

  // Zero-length frames of every kind, back to back.
  cases.push_back({"zero_length_run",
                   Wire{}.raw({0x81, 0x00, 0x88, 0x80, 1, 2, 3, 4, 0x89, 0x00, 0x00, 0x00}).bytes,
                   ok({frame(hdr(true, 0, 1, 0, 2), {}),
                       frame(hdr(true, 0, 8, 0, 6, true, MaskKey{1, 2, 3, 4}), {}),
                       frame(hdr(true, 0, 9, 0, 2), {}), frame(hdr(false, 0, 0, 0, 2), {})})});

  // All 16 opcodes and the RSV bits are reported as they are on the wire.
  {
    Wire w;
    std::vector<Frame> frames;
    for (std::uint8_t op = 0; op < 16; ++op) {
      const std::uint8_t rsv = static_cast<std::uint8_t>(op % 8);
      const Bytes p = pattern(op, op);
      w.header(static_cast<std::uint8_t>(0x80 | (rsv << 4) | op), 7, op).payload(p);
      frames.push_back(frame(hdr(true, rsv, op, op, 2), p));
    }
    cases.push_back({"all_opcodes_and_rsv", w.bytes, ok(frames)});
  }
  cases.push_back({"unknown_control_opcode_masked",
                   Wire{}.header(0xFF, 7, 3, true, key).payload(text("abc"), true, key).bytes,
                   ok({frame(hdr(true, 7, 15, 3, 6, true, key), text("abc"))})});
  cases.push_back({"control_125_ok",
                   Wire{}.header(0x8A, 7, 125).payload(pattern(125)).bytes,
                   ok({frame(hdr(true, 0, 10, 125, 2), pattern(125))})});

  // Trailing partial frames: a header cut short, a header with no payload.
  cases.push_back({"partial_header_after_frame",
                   Wire{}.raw({0x82, 0x01, 0x55, 0x82, 0xFF, 0x00, 0x00}).bytes,
                   ok({frame(hdr(true, 0, 2, 1, 2), Bytes{std::byte{0x55}})})});
  cases.push_back({"header_without_payload", Wire{}.raw({0x82, 0x7E, 0x01, 0x00}).bytes, ok({})});
  cases.push_back({"partial_payload",
                   Wire{}.header(0x81, 7, 10, true, key).payload(text("abcd"), true, key).bytes,
                   ok({frame(hdr(true, 0, 1, 10, 6, true, key), text("abcd"), false)})});

  // Structural errors, after the frames before them.
  const Bytes hello = Wire{}.raw({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}).bytes;
  const Frame hello_frame = frame(hdr(true, 0, 1, 5, 2), text("Hello"));
  auto after_hello = [&](const Bytes& tail) {
    Bytes b = hello;
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
  };
  cases.push_back({"msb_set", after_hello(Wire{}.header(0x82, 64, 1ull << 63).bytes),
                   fail({hello_frame}, FrameError::length_msb_set)});
  cases.push_back({"msb_set_all_ones", after_hello(Wire{}.header(0x82, 64, ~0ull, true, key).bytes),
                   fail({hello_frame}, FrameError::length_msb_set)});
  cases.push_back({"non_minimal_16_of_125", after_hello(Wire{}.header(0x82, 16, 125).bytes),
                   fail({hello_frame}, FrameError::non_minimal_length)});
  cases.push_back({"non_minimal_16_of_0", Wire{}.header(0x82, 16, 0, true, key).bytes,
                   fail({}, FrameError::non_minimal_length)});
  cases.push_back({"non_minimal_64_of_65535", Wire{}.header(0x82, 64, 65535).bytes,
                   fail({}, FrameError::non_minimal_length)});
  cases.push_back({"non_minimal_64_of_5", Wire{}.header(0x81, 64, 5).payload(text("Hello")).bytes,
                   fail({}, FrameError::non_minimal_length)});
  // Decided on the first two bytes: no extended length needs to follow.
  cases.push_back({"control_126", after_hello(Wire{}.raw({0x89, 0x7E}).bytes),
                   fail({hello_frame}, FrameError::control_too_long)});
  cases.push_back({"control_127", Wire{}.raw({0x88, 0xFF}).bytes,
                   fail({}, FrameError::control_too_long)});
  cases.push_back({"unknown_control_126", Wire{}.raw({0x8B, 0x7E, 0x00, 0x7E}).bytes,
                   fail({}, FrameError::control_too_long)});
  cases.push_back({"control_fragmented", after_hello(Wire{}.raw({0x09, 0x00}).bytes),
                   fail({hello_frame}, FrameError::control_fragmented)});
  cases.push_back({"control_fragmented_masked", Wire{}.raw({0x0A, 0x81, 1, 2, 3, 4, 5}).bytes,
                   fail({}, FrameError::control_fragmented)});
  // Both rules broken: the length is reported.
  cases.push_back({"control_fragmented_and_long", Wire{}.raw({0x08, 0x7F}).bytes,
                   fail({}, FrameError::control_too_long)});
  // Not enough bytes to tell yet: no error.
  cases.push_back({"undecided_16", Wire{}.raw({0x82, 0x7E, 0x00}).bytes, ok({})});
  cases.push_back({"undecided_64", Wire{}.raw({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0}).bytes, ok({})});
  return cases;
}

struct NativeCodec {
  using Decoder = NativeDecoder;
  using Encoder = NativeEncoder;
  static constexpr bool holds_frames = true;
};

struct WslayCodec {
  using Decoder = WslayDecoder;
  using Encoder = WslayEncoder;
  static constexpr bool holds_frames = false;
};

struct CodecNames {
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, NativeCodec> ? "native" : "wslay";
  }
};

template <typename C>
class CodecTest : public ::testing::Test {};

using Codecs = ::testing::Types<NativeCodec, WslayCodec>;
TYPED_TEST_SUITE(CodecTest, Codecs, CodecNames);

TYPED_TEST(CodecTest, DecodesEveryCaseWhateverTheSplit) {
  std::uint64_t seed = 1;
  for (const DecodeCase& c : decode_cases()) {
    std::vector<std::vector<std::size_t>> splits = {whole(c.input.size()),
                                                    bytewise(c.input.size())};
    for (int i = 0; i < 4; ++i) {
      splits.push_back(random_split(c.input.size(), seed++));
    }
    for (std::size_t hold_limit : {std::size_t{0}, std::size_t{200}, std::size_t{1} << 20}) {
      // A decoder that holds frames shows nothing of a trailing frame that
      // fits in hold_limit until it is whole.
      Decoded want = c.expected;
      if (TypeParam::holds_frames && !want.frames.empty() && !want.frames.back().complete &&
          want.frames.back().header.header_length + want.frames.back().header.payload_length <=
              hold_limit) {
        want.frames.pop_back();
      }
      for (std::size_t s = 0; s < splits.size(); ++s) {
        if (s == 1 && hold_limit > 200) {
          continue;  // byte at a time into a held 64 KiB frame: quadratic copying
        }
        typename TypeParam::Decoder dec;
        const Decoded got = feed(dec, c.input, splits[s], hold_limit);
        EXPECT_TRUE(same_output(got, want))
            << c.name << " split#" << s << " hold=" << hold_limit << "\n got: " << describe(got)
            << "\nwant: " << describe(want);
        if (s == 0 && hold_limit == 0 && c.expected.end != DecodeStatus::error) {
          // Given all at once, a frame of at most 4 KiB is one chunk.
          std::size_t small = 0;
          for (const Frame& f : c.expected.frames) {
            small += f.payload.size() <= 4000 ? 1 : 0;
          }
          if (small == c.expected.frames.size()) {
            EXPECT_EQ(got.chunks, c.expected.frames.size()) << c.name;
          }
        }
      }
    }
  }
}

TYPED_TEST(CodecTest, ErrorIsStickyUntilReset) {
  typename TypeParam::Decoder dec;
  Bytes bad = Wire{}.raw({0x89, 0x7E}).bytes;
  DecodeResult r = dec.decode(bad, 0);
  ASSERT_EQ(r.status, DecodeStatus::error);
  EXPECT_EQ(r.error, FrameError::control_too_long);
  Bytes good = Wire{}.raw({0x81, 0x02, 0x68, 0x69}).bytes;
  r = dec.decode(good, 0);
  EXPECT_EQ(r.status, DecodeStatus::error);
  EXPECT_EQ(r.error, FrameError::control_too_long);
  EXPECT_EQ(r.consumed, 0u);
  dec.reset();
  r = dec.decode(good, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_TRUE(r.chunk.first && r.chunk.last);
  ASSERT_EQ(r.chunk.data.size(), 2u);
  EXPECT_EQ(r.chunk.data[0], std::byte{0x68});
  EXPECT_EQ(r.chunk.data[1], std::byte{0x69});
}

TYPED_TEST(CodecTest, ResetDropsAPartialFrame) {
  typename TypeParam::Decoder dec;
  Bytes start = Wire{}.header(0x82, 7, 100).payload(pattern(10)).bytes;
  DecodeResult r = dec.decode(start, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_FALSE(r.chunk.last);
  dec.reset();
  Bytes next = Wire{}.raw({0x81, 0x01, 0x41}).bytes;
  r = dec.decode(next, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_TRUE(r.chunk.first && r.chunk.last);
  EXPECT_EQ(r.chunk.header.opcode, 1);
  EXPECT_EQ(r.consumed, 3u);
}

TYPED_TEST(CodecTest, MovedDecoderContinuesTheFrame) {
  const MaskKey key{9, 8, 7, 6};
  const Bytes p = pattern(300, 5);
  const Bytes input = Wire{}.header(0x82, 16, 300, true, key).payload(p, true, key).bytes;
  typename TypeParam::Decoder a;
  Bytes first(input.begin(), input.begin() + 100);
  Decoded out;
  DecodeResult r = a.decode(first, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  ASSERT_EQ(r.consumed, 100u);
  record(out, r.chunk);
  typename TypeParam::Decoder b(std::move(a));
  Bytes rest(input.begin() + 100, input.end());
  r = b.decode(rest, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  record(out, r.chunk);
  ASSERT_EQ(out.frames.size(), 1u);
  EXPECT_TRUE(out.frames[0].complete);
  EXPECT_EQ(out.frames[0].payload, p);
  typename TypeParam::Decoder c;
  c = std::move(b);
  Bytes more = Wire{}.raw({0x8A, 0x00}).bytes;
  r = c.decode(more, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_EQ(r.chunk.header.opcode, 0xA);
  EXPECT_TRUE(r.chunk.first && r.chunk.last);
}

TYPED_TEST(CodecTest, EmptyInputNeedsMore) {
  typename TypeParam::Decoder dec;
  const DecodeResult r = dec.decode({}, 0);
  EXPECT_EQ(r.status, DecodeStatus::need_more);
  EXPECT_EQ(r.consumed, 0u);
}

struct EncodeCase {
  FrameHeader header;
  std::vector<int> expected;  // empty: not encodable
};

std::vector<EncodeCase> encode_cases() {
  const MaskKey key{0x37, 0xfa, 0x21, 0x3d};
  return {
      {hdr(true, 0, 1, 5, 0), {0x81, 0x05}},
      {hdr(true, 0, 1, 5, 0, true, key), {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
      {hdr(false, 0, 1, 0, 0), {0x01, 0x00}},
      {hdr(true, 0, 2, 125, 0), {0x82, 0x7D}},
      {hdr(true, 0, 2, 126, 0), {0x82, 0x7E, 0x00, 0x7E}},
      {hdr(true, 0, 2, 256, 0), {0x82, 0x7E, 0x01, 0x00}},
      {hdr(true, 0, 2, 65535, 0, true, key), {0x82, 0xFE, 0xFF, 0xFF, 0x37, 0xfa, 0x21, 0x3d}},
      {hdr(true, 0, 2, 65536, 0), {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}},
      {hdr(false, 5, 0, (1ull << 32) + 5, 0, true, key),
       {0x50, 0xFF, 0, 0, 0, 1, 0, 0, 0, 5, 0x37, 0xfa, 0x21, 0x3d}},
      {hdr(true, 7, 2, (1ull << 63) - 1, 0),
       {0xF2, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
      {hdr(true, 0, 8, 125, 0, true, key), {0x88, 0xFD, 0x37, 0xfa, 0x21, 0x3d}},
      {hdr(true, 0, 9, 0, 0), {0x89, 0x00}},
      {hdr(false, 0, 9, 3, 0), {0x09, 0x03}},  // the session's business, not the encoder's
      {hdr(true, 0, 0xB, 1, 0), {0x8B, 0x01}},
      {hdr(true, 0, 3, 1, 0), {0x83, 0x01}},
      {hdr(true, 0, 2, 1ull << 63, 0), {}},
      {hdr(true, 0, 2, ~0ull, 0, true, key), {}},
      {hdr(true, 0, 8, 126, 0), {}},
      {hdr(true, 0, 0xF, 70000, 0, true, key), {}},
  };
}

TYPED_TEST(CodecTest, EncodesHeadersByteForByte) {
  typename TypeParam::Encoder enc;
  // Twice over, so that state left behind by one header cannot go unnoticed.
  for (int round = 0; round < 2; ++round) {
    for (const EncodeCase& c : encode_cases()) {
      std::array<std::byte, max_frame_header> out{};
      const std::size_t n = enc.encode_header(out, c.header);
      ASSERT_EQ(n, c.expected.size()) << describe(c.header);
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(std::to_integer<int>(out[i]), c.expected[i]) << describe(c.header) << " @" << i;
      }
    }
  }
}

TYPED_TEST(CodecTest, EncodedHeaderDecodesToItself) {
  typename TypeParam::Encoder enc;
  const MaskKey key{1, 0x80, 0xFE, 0x33};
  for (const EncodeCase& c : encode_cases()) {
    if (c.expected.empty() || c.header.payload_length > 100000 ||
        (is_control(c.header.opcode) && !c.header.fin)) {
      continue;
    }
    std::array<std::byte, max_frame_header> out{};
    FrameHeader h = c.header;
    if (!h.masked && h.opcode == 2) {
      h.masked = true;
      h.mask = key;
    }
    const std::size_t n = enc.encode_header(out, h);
    ASSERT_GT(n, 0u);
    Bytes wire(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    Bytes p = pattern(static_cast<std::size_t>(h.payload_length), 9);
    Bytes masked = p;
    if (h.masked) {
      apply_mask(masked, h.mask, 0);
    }
    wire.insert(wire.end(), masked.begin(), masked.end());
    typename TypeParam::Decoder dec;
    const Decoded got = feed(dec, wire, random_split(wire.size(), n), 0);
    h.header_length = static_cast<std::uint8_t>(n);
    if (!h.masked) {
      h.mask = {};
    }
    const Decoded want = ok({frame(h, p)});
    EXPECT_TRUE(same_output(got, want)) << describe(got) << "\n" << describe(want);
  }
}

// --- native only: hold_limit ------------------------------------------------

TEST(NativeDecoderHold, SmallFrameIsHeldUntilWhole) {
  const MaskKey key{4, 3, 2, 1};
  const Bytes p = pattern(100, 1);
  Bytes input = Wire{}.header(0x82, 7, 100, true, key).payload(p, true, key).bytes;  // 106 bytes
  NativeDecoder dec;
  for (std::size_t have = 0; have < input.size(); ++have) {
    Bytes part(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(have));
    const Bytes before = part;
    const DecodeResult r = dec.decode(part, 106);
    EXPECT_EQ(r.status, DecodeStatus::need_more) << have;
    EXPECT_EQ(r.consumed, 0u) << have;
    EXPECT_EQ(part, before) << "held bytes must not be unmasked";
  }
  const DecodeResult r = dec.decode(input, 106);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_EQ(r.consumed, 106u);
  EXPECT_TRUE(r.chunk.first && r.chunk.last);
  EXPECT_EQ(Bytes(r.chunk.data.begin(), r.chunk.data.end()), p);
  EXPECT_EQ(r.chunk.data.data(), input.data() + 6) << "in place";
}

TEST(NativeDecoderHold, FrameOverTheLimitStreams) {
  const Bytes p = pattern(100, 2);
  Bytes input = Wire{}.header(0x82, 7, 100).payload(p).bytes;  // 102 bytes
  NativeDecoder dec;
  Bytes part(input.begin(), input.begin() + 50);
  DecodeResult r = dec.decode(part, 101);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_EQ(r.consumed, 50u);
  EXPECT_TRUE(r.chunk.first);
  EXPECT_FALSE(r.chunk.last);
  EXPECT_EQ(r.chunk.data.size(), 48u);
  // Exactly at the limit: held.
  NativeDecoder held;
  r = held.decode(part, 102);
  EXPECT_EQ(r.status, DecodeStatus::need_more);
  EXPECT_EQ(r.consumed, 0u);
  // hold_limit only applies where a frame starts: the rest of a streamed
  // frame is never held back.
  Bytes rest(input.begin() + 50, input.begin() + 60);
  r = dec.decode(rest, 1 << 20);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(r.chunk.offset, 48u);
}

TEST(NativeDecoderHold, HeaderWithoutPayloadIsLeftToTheCaller) {
  NativeDecoder dec;
  Bytes input = Wire{}.header(0x82, 16, 300, true, MaskKey{1, 2, 3, 4}).bytes;
  DecodeResult r = dec.decode(input, 0);
  EXPECT_EQ(r.status, DecodeStatus::need_more);
  EXPECT_EQ(r.consumed, 0u);
  input.push_back(std::byte{0x01});
  r = dec.decode(input, 0);
  ASSERT_EQ(r.status, DecodeStatus::chunk);
  EXPECT_EQ(r.consumed, 9u);
  EXPECT_TRUE(r.chunk.first);
  EXPECT_EQ(r.chunk.data.size(), 1u);
  EXPECT_EQ(r.chunk.data[0], std::byte{0x00});  // 0x01 ^ key[0]
}

// --- apply_mask ---------------------------------------------------------------

void reference_mask(std::span<std::byte> data, const MaskKey& key, std::uint64_t offset) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] ^= std::byte{key[(offset + i) % 4]};
  }
}

TEST(ApplyMask, MatchesBytewiseAtEveryAlignmentOffsetAndLength) {
  const MaskKey key{0x12, 0x34, 0x56, 0x78};
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 200; ++n) {
    lengths.push_back(n);
  }
  for (std::size_t n : {127u, 128u, 129u, 255u, 4096u, 4099u, 65536u, 65543u}) {
    lengths.push_back(n);
  }
  Bytes base = pattern(65543 + 16, 77);
  for (std::size_t align = 0; align < 8; ++align) {
    for (std::uint64_t offset : {0ull, 1ull, 2ull, 3ull, 4ull, 5ull, 6ull, 7ull, (1ull << 40) + 3}) {
      for (std::size_t n : lengths) {
        Bytes got(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(align + n + 8));
        Bytes want = got;
        apply_mask(std::span(got).subspan(align, n), key, offset);
        reference_mask(std::span(want).subspan(align, n), key, offset);
        ASSERT_EQ(got, want) << "align=" << align << " offset=" << offset << " n=" << n;
      }
    }
  }
}

TEST(ApplyMask, TwiceIsIdentityAndPiecesEqualWhole) {
  const MaskKey key{0xA5, 0x00, 0xFF, 0x3C};
  const Bytes orig = pattern(1000, 5);
  Bytes whole_masked = orig;
  apply_mask(whole_masked, key, 0);
  Bytes pieces = orig;
  std::mt19937 rng(7);
  std::size_t pos = 0;
  while (pos < pieces.size()) {
    const std::size_t k = std::min<std::size_t>(pieces.size() - pos, rng() % 40);
    apply_mask(std::span(pieces).subspan(pos, k), key, pos);
    pos += k;
  }
  EXPECT_EQ(pieces, whole_masked);
  apply_mask(whole_masked, key, 0);
  EXPECT_EQ(whole_masked, orig);
  EXPECT_NE(pieces, orig);
}

TEST(FrameError, EveryValueHasAName) {
  EXPECT_STREQ(to_string(FrameError::length_msb_set),
               "64-bit payload length with the most significant bit set");
  for (FrameError e : {FrameError::none, FrameError::length_msb_set, FrameError::non_minimal_length,
                       FrameError::control_too_long, FrameError::control_fragmented}) {
    EXPECT_STRNE(to_string(e), "unknown frame error");
  }
}

}  // namespace
}  // namespace ringlink
