// UTF-8 validation throughput: 64 KiB of ASCII (the fast path), of mixed
// text (ASCII with 2-, 3- and 4-byte sequences), of all-multibyte text, and
// the incremental validator fed in 1 KiB pieces as frames would bring them.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <random>
#include <string>
#include <vector>

#include "protocol/utf8.hpp"

namespace {

constexpr std::size_t text_size = 64 * 1024;

std::vector<std::byte> to_bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

std::vector<std::byte> ascii_text() {
  const std::string words = "the quick brown fox jumps over the lazy dog, 0123456789; ";
  std::string s;
  while (s.size() < text_size) s += words;
  s.resize(text_size);
  return to_bytes(s);
}

// Words drawn at random from several scripts: roughly a third of the bytes
// are ASCII, the rest 2-, 3- and 4-byte sequences, switching every few bytes
// so the fast path is entered and left all the time.
std::vector<std::byte> mixed_text() {
  const char* words[] = {"hello ", "world ", "data, ", "κόσμε ", "привет ", "日本語 ",
                         "中文 ", "€100 ", "\xF0\x9F\x98\x80 ", "\xF0\x9F\x8C\x8D! "};
  std::mt19937 rng(42);
  std::string s;
  while (s.size() < text_size) s += words[rng() % std::size(words)];
  // Cut back to a code point boundary at or before text_size.
  std::size_t n = text_size;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return to_bytes(s);
}

std::vector<std::byte> multibyte_text() {
  std::string s;
  while (s.size() < text_size - 16) s += "日本語のテキスト";
  return to_bytes(s);
}

void validate_whole(benchmark::State& state, const std::vector<std::byte>& text) {
  if (!ringlink::utf8_valid(text)) {
    state.SkipWithError("test text is not valid UTF-8");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(ringlink::utf8_valid(text));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}

void BM_Utf8Ascii64K(benchmark::State& state) { validate_whole(state, ascii_text()); }
void BM_Utf8Mixed64K(benchmark::State& state) { validate_whole(state, mixed_text()); }
void BM_Utf8Multibyte64K(benchmark::State& state) { validate_whole(state, multibyte_text()); }

void BM_Utf8MixedIncremental1K(benchmark::State& state) {
  const auto text = mixed_text();
  const std::span<const std::byte> all(text);
  for (auto _ : state) {
    ringlink::Utf8Validator v;
    bool ok = true;
    for (std::size_t off = 0; off < all.size(); off += 1024) {
      ok &= v.feed(all.subspan(off, std::min<std::size_t>(1024, all.size() - off)));
    }
    benchmark::DoNotOptimize(ok && v.finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}

}  // namespace

BENCHMARK(BM_Utf8Ascii64K);
BENCHMARK(BM_Utf8Mixed64K);
BENCHMARK(BM_Utf8Multibyte64K);
BENCHMARK(BM_Utf8MixedIncremental1K);
