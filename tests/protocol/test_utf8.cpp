// Utf8Validator / utf8_valid: edge code points, every invalid class at its
// exact failing byte, truncation, splits at every position, the ASCII fast
// path around block boundaries, and a reference decoder over random input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "protocol/utf8.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

Bytes bytes(std::string_view s) {
  Bytes out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

Bytes encode(std::uint32_t cp) {
  if (cp < 0x80) return bytes({static_cast<int>(cp)});
  if (cp < 0x800) return bytes({static_cast<int>(0xC0 | (cp >> 6)), static_cast<int>(0x80 | (cp & 0x3F))});
  if (cp < 0x10000)
    return bytes({static_cast<int>(0xE0 | (cp >> 12)), static_cast<int>(0x80 | ((cp >> 6) & 0x3F)),
                  static_cast<int>(0x80 | (cp & 0x3F))});
  return bytes({static_cast<int>(0xF0 | (cp >> 18)), static_cast<int>(0x80 | ((cp >> 12) & 0x3F)),
                static_cast<int>(0x80 | ((cp >> 6) & 0x3F)), static_cast<int>(0x80 | (cp & 0x3F))});
}

// Straightforward reference: decodes each sequence and checks its value.
bool reference_valid(const Bytes& in) {
  std::size_t i = 0;
  while (i < in.size()) {
    const auto b = static_cast<unsigned>(in[i]);
    std::size_t n;
    std::uint32_t cp;
    if (b < 0x80) { ++i; continue; }
    if ((b & 0xE0) == 0xC0) { n = 1; cp = b & 0x1F; }
    else if ((b & 0xF0) == 0xE0) { n = 2; cp = b & 0x0F; }
    else if ((b & 0xF8) == 0xF0) { n = 3; cp = b & 0x07; }
    else return false;
    if (i + n >= in.size()) return false;  // truncated
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned>(in[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const std::uint32_t min_for_len[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Feeds `in` split at `cuts` (sorted positions); returns the index of the
// piece whose feed() first returned false, or -1.
int failing_piece(const Bytes& in, const std::vector<std::size_t>& cuts, Utf8Validator& v) {
  std::size_t start = 0;
  for (std::size_t k = 0; k <= cuts.size(); ++k) {
    const std::size_t end = k < cuts.size() ? cuts[k] : in.size();
    if (!v.feed(std::span<const std::byte>(in).subspan(start, end - start))) return static_cast<int>(k);
    start = end;
  }
  return -1;
}

TEST(Utf8, EdgeCodePointsAreValid) {
  for (std::uint32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu,
                           0x10000u, 0x10FFFFu}) {
    SCOPED_TRACE(cp);
    Bytes b = encode(cp);
    EXPECT_TRUE(utf8_valid(b));
    Utf8Validator v;
    for (std::byte x : b) ASSERT_TRUE(v.feed(std::span<const std::byte>(&x, 1)));
    EXPECT_TRUE(v.finish());
    // Surrounded by ASCII, at an offset that crosses the 8-byte fast path.
    Bytes padded = bytes("abcdefg");
    padded.insert(padded.end(), b.begin(), b.end());
    padded.insert(padded.end(), 40, std::byte{'z'});
    EXPECT_TRUE(utf8_valid(padded));
  }
}

TEST(Utf8, EveryScalarValueValidEverySurrogateInvalid) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(utf8_valid(encode(cp)), !surrogate) << std::hex << cp;
  }
}

TEST(Utf8, EmptyIsValid) {
  EXPECT_TRUE(utf8_valid({}));
  Utf8Validator v;
  EXPECT_TRUE(v.feed({}));
  EXPECT_TRUE(v.finish());
}

struct BadCase {
  const char* name;
  std::vector<int> seq;
  std::size_t fail_at;  // index of the first byte at which validation must fail
};

const BadCase bad_cases[] = {
    {"C0 lead", {0xC0, 0x80}, 0},
    {"C1 lead", {0xC1, 0xBF}, 0},
    {"F5 lead", {0xF5, 0x80, 0x80, 0x80}, 0},
    {"FF byte", {0xFF}, 0},
    {"FE byte", {0xFE}, 0},
    {"lone continuation", {0x80}, 0},
    {"lone BF", {0xBF}, 0},
    {"overlong 3-byte E0 80", {0xE0, 0x80, 0x80}, 1},
    {"overlong 3-byte E0 9F", {0xE0, 0x9F, 0xBF}, 1},
    {"overlong 4-byte F0 80", {0xF0, 0x80, 0x80, 0x80}, 1},
    {"overlong 4-byte F0 8F", {0xF0, 0x8F, 0xBF, 0xBF}, 1},
    {"surrogate ED A0", {0xED, 0xA0, 0x80}, 1},
    {"surrogate ED BF", {0xED, 0xBF, 0xBF}, 1},
    {"above 10FFFF F4 90", {0xF4, 0x90, 0x80, 0x80}, 1},
    {"above 10FFFF F4 BF", {0xF4, 0xBF, 0xBF, 0xBF}, 1},
    {"2-byte bad continuation", {0xC3, 0x41}, 1},
    {"2-byte lead then lead", {0xC3, 0xC3}, 1},
    {"3-byte bad 3rd", {0xE2, 0x82, 0x41}, 2},
    {"4-byte bad 4th", {0xF0, 0x9F, 0x98, 0xC0}, 3},
    {"4-byte bad 3rd", {0xF1, 0x80, 0x7F, 0x80}, 2},
    {"5-byte form", {0xF8, 0x88, 0x80, 0x80, 0x80}, 0},
    {"extra continuation", {0xC3, 0xA9, 0x80}, 2},
};

class Utf8Bad : public ::testing::TestWithParam<BadCase> {};

TEST_P(Utf8Bad, FailsAtTheExactByte) {
  const BadCase& c = GetParam();
  for (std::size_t prefix_len : {0u, 1u, 7u, 8u, 31u, 32u, 45u}) {
    SCOPED_TRACE(prefix_len);
    Bytes in(prefix_len, std::byte{'a'});
    for (int b : c.seq) in.push_back(static_cast<std::byte>(b));
    in.insert(in.end(), 40, std::byte{'b'});
    const std::size_t fail_at = prefix_len + c.fail_at;

    EXPECT_FALSE(utf8_valid(in));
    Utf8Validator whole;
    EXPECT_FALSE(whole.feed(in));

    // One byte at a time: true up to fail_at, false there and after (sticky).
    Utf8Validator v;
    for (std::size_t i = 0; i < in.size(); ++i) {
      const bool ok = v.feed(std::span<const std::byte>(in).subspan(i, 1));
      ASSERT_EQ(ok, i < fail_at) << "byte " << i;
    }
    // Only the prefix up to the bad byte (message unfinished): already false.
    Utf8Validator p;
    EXPECT_FALSE(p.feed(std::span<const std::byte>(in).first(fail_at + 1)));
    Utf8Validator q;
    EXPECT_TRUE(q.feed(std::span<const std::byte>(in).first(fail_at)));

    // Every single split point: the piece holding fail_at is the one that fails.
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
      Utf8Validator s;
      EXPECT_EQ(failing_piece(in, {cut}, s), fail_at < cut ? 0 : 1) << "cut " << cut;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Classes, Utf8Bad, ::testing::ValuesIn(bad_cases),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(Utf8, TruncatedSequencesAreNotFinished) {
  const std::vector<std::vector<int>> truncated = {
      {0xC3}, {0xE2}, {0xE2, 0x82}, {0xE0, 0xA0}, {0xED, 0x9F}, {0xF0}, {0xF0, 0x9F},
      {0xF0, 0x9F, 0x98}, {0xF4, 0x8F, 0xBF}, {0xF3, 0xBF}};
  for (const auto& t : truncated) {
    Bytes in = bytes("hello ");
    for (int b : t) in.push_back(static_cast<std::byte>(b));
    Utf8Validator v;
    EXPECT_TRUE(v.feed(in));
    EXPECT_FALSE(v.finish());
    EXPECT_FALSE(utf8_valid(in));
  }
}

TEST(Utf8, CodePointSplitAcrossFeedsIsValid) {
  const Bytes in = bytes("κόσμε \xF0\x9F\x98\x80 \xE2\x82\xAC \xF4\x8F\xBF\xBF end");
  ASSERT_TRUE(utf8_valid(in));
  for (std::size_t a = 0; a <= in.size(); ++a) {
    for (std::size_t b = a; b <= in.size(); ++b) {
      Utf8Validator v;
      ASSERT_EQ(failing_piece(in, {a, b}, v), -1) << a << "," << b;
      ASSERT_TRUE(v.finish()) << a << "," << b;
    }
  }
  // Mid-sequence the validator is not at a boundary.
  Utf8Validator v;
  EXPECT_TRUE(v.feed(std::span<const std::byte>(in).first(1)));
  EXPECT_FALSE(v.finish());
}

TEST(Utf8, FailureIsStickyUntilReset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed(bytes({0xC0})));
  EXPECT_FALSE(v.feed(bytes("abc")));
  EXPECT_FALSE(v.finish());
  v.reset();
  EXPECT_TRUE(v.feed(bytes("abc")));
  EXPECT_TRUE(v.finish());
}

TEST(Utf8, AsciiFastPathBoundaries) {
  for (std::size_t len = 0; len < 80; ++len) {
    Bytes in(len, std::byte{'x'});
    ASSERT_TRUE(utf8_valid(in)) << len;
    for (std::size_t bad = 0; bad < len; ++bad) {
      Bytes b = in;
      b[bad] = std::byte{0x80};
      ASSERT_FALSE(utf8_valid(b)) << len << " " << bad;
      b[bad] = std::byte{0x7F};
      ASSERT_TRUE(utf8_valid(b)) << len << " " << bad;
    }
    // A multi-byte sequence at every offset, incl. across 8/32-byte blocks.
    for (std::size_t at = 0; at + 4 <= len; ++at) {
      Bytes b = in;
      const Bytes e = encode(0x1F600);
      std::copy(e.begin(), e.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
      ASSERT_TRUE(utf8_valid(b)) << len << " " << at;
      b[at + 3] = std::byte{'x'};  // truncate it
      ASSERT_FALSE(utf8_valid(b)) << len << " " << at;
    }
  }
}

TEST(Utf8, MatchesReferenceOnRandomInput) {
  std::mt19937 rng(1234);
  // Bias towards bytes that make sequences almost valid.
  const int interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                             0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3,
                             0xF4, 0xF5, 0xFF};
  int valid_seen = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    const std::size_t len = rng() % 12;
    Bytes in;
    for (std::size_t i = 0; i < len; ++i) {
      const int b = (rng() % 2) ? interesting[rng() % std::size(interesting)]
                                : static_cast<int>(rng() % 256);
      in.push_back(static_cast<std::byte>(b));
    }
    const bool expect = reference_valid(in);
    valid_seen += expect;
    ASSERT_EQ(utf8_valid(in), expect) << iter;
    Utf8Validator v;
    const std::size_t cut = len ? rng() % (len + 1) : 0;
    const bool fed = failing_piece(in, {cut}, v) == -1;
    ASSERT_EQ(fed && v.finish(), expect) << iter;
  }
  EXPECT_GT(valid_seen, 1000);
}

// Long non-ASCII input is validated as two interleaved halves: these cases
// put every kind of sequence and every kind of error around the middle.
Bytes random_text(std::mt19937& rng, std::size_t min_len) {
  const std::uint32_t samples[] = {0x41, 0x7F, 0x80, 0x3B1, 0x7FF, 0x800, 0x65E5, 0xD7FF,
                                   0xE000, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF};
  Bytes out;
  while (out.size() < min_len) {
    const Bytes e = encode(samples[rng() % std::size(samples)]);
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

TEST(Utf8, LongInputSplitHalvesMatchReference) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes in = random_text(rng, 1024 + rng() % 2000);
    ASSERT_TRUE(utf8_valid(in)) << iter;
    // Corrupt one byte near the middle (or anywhere), sometimes with a byte
    // that keeps the text valid.
    const std::size_t at = (iter % 2) ? in.size() / 2 - 4 + rng() % 8 : rng() % in.size();
    const int replacements[] = {0x80, 0xBF, 0xC0, 0xED, 0xF4, 0xF5, 0xFF, 0x41, 0xE0, 0x90};
    in[at] = static_cast<std::byte>(replacements[rng() % std::size(replacements)]);
    const bool expect = reference_valid(in);
    ASSERT_EQ(utf8_valid(in), expect) << iter << " at " << at;
    Utf8Validator v;
    const std::size_t cut = rng() % (in.size() + 1);
    ASSERT_EQ(failing_piece(in, {cut}, v) == -1 && v.finish(), expect) << iter;
  }
}

TEST(Utf8, LongInputWithSequenceAcrossTheMiddle) {
  for (std::size_t shift = 0; shift < 8; ++shift) {
    Bytes in(shift, std::byte{'a'});
    in.push_back(std::byte{0xC3});  // keeps the fast path from taking the lot
    in.push_back(std::byte{0xA9});
    while (in.size() < 3000) {
      const Bytes e = encode(0x1F600);
      in.insert(in.end(), e.begin(), e.end());
    }
    EXPECT_TRUE(utf8_valid(in)) << shift;
    // A fifth byte in the sequence nearest the middle: four continuation
    // bytes in a row.
    Bytes bad = in;
    std::size_t m = bad.size() / 2;
    while ((static_cast<unsigned>(bad[m]) & 0xC0) == 0x80) --m;
    bad.insert(bad.begin() + static_cast<std::ptrdiff_t>(m) + 4, std::byte{0x80});
    EXPECT_FALSE(utf8_valid(bad)) << shift;
    // The middle sequence cut short.
    Bytes cut = in;
    cut.erase(cut.begin() + static_cast<std::ptrdiff_t>(m) + 3);
    EXPECT_FALSE(utf8_valid(cut)) << shift;
  }
}

}  // namespace
}  // namespace ringlink
