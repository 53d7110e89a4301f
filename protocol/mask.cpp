// apply_mask and the FrameError names, shared by both codecs.
#include <cstring>

#include "protocol/frame.hpp"

namespace ringlink {

namespace {

// Bytes handled one at a time before the word loop starts: word loads from an
// 8-byte aligned address never straddle a cache line.
constexpr std::size_t word = sizeof(std::uint64_t);

inline void mask_bytes(std::byte* p, std::size_t n, const MaskKey& key,
                       std::uint64_t offset) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    p[i] ^= std::byte{key[(offset + i) & 3]};
  }
}

}  // namespace

void apply_mask(std::span<std::byte> data, const MaskKey& key, std::uint64_t offset) noexcept {
  std::byte* p = data.data();
  std::size_t n = data.size();

  std::size_t head = (word - (reinterpret_cast<std::uintptr_t>(p) & (word - 1))) & (word - 1);
  if (head >= n) {
    mask_bytes(p, n, key, offset);
    return;
  }
  mask_bytes(p, head, key, offset);
  p += head;
  n -= head;
  offset += head;

  // A word covers the key twice, so one pattern, rotated for where the
  // aligned part starts inside the payload, serves every word.
  std::uint8_t pattern_bytes[word];
  for (std::size_t j = 0; j < word; ++j) {
    pattern_bytes[j] = key[(offset + j) & 3];
  }
  std::uint64_t pattern = 0;
  std::memcpy(&pattern, pattern_bytes, word);

  // Four independent words per step keep the loop from being bound by its own
  // bookkeeping; compilers turn it into vector XORs.
  while (n >= 4 * word) {
    std::uint64_t w[4];
    std::memcpy(w, p, sizeof w);
    w[0] ^= pattern;
    w[1] ^= pattern;
    w[2] ^= pattern;
    w[3] ^= pattern;
    std::memcpy(p, w, sizeof w);
    p += 4 * word;
    n -= 4 * word;
  }
  while (n >= word) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, word);
    w ^= pattern;
    std::memcpy(p, &w, word);
    p += word;
    n -= word;
  }
  // The word loop consumed a multiple of 4 bytes, so the rotation is unchanged.
  mask_bytes(p, n, key, offset);
}

const char* to_string(FrameError e) noexcept {
  switch (e) {
    case FrameError::none:
      return "no error";
    case FrameError::length_msb_set:
      return "64-bit payload length with the most significant bit set";
    case FrameError::non_minimal_length:
      return "payload length not in its shortest encoding";
    case FrameError::control_too_long:
      return "control frame payload over 125 bytes";
    case FrameError::control_fragmented:
      return "fragmented control frame";
  }
  return "unknown frame error";
}

}  // namespace ringlink
