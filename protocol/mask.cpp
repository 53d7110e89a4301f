// apply_mask and the FrameError names, shared by both codecs.
#include <bit>
#include <cstring>

#include "protocol/frame.hpp"

namespace ringlink {

namespace {

constexpr std::size_t word = sizeof(std::uint64_t);

// The key as a 64-bit word, rotated so that its first byte in memory is
// key[offset & 3]. One such word serves every 8-byte step: 8 is a multiple
// of the key's 4, so the rotation never changes inside a call.
inline std::uint64_t mask_pattern(const MaskKey& key, std::uint64_t offset) noexcept {
  std::uint32_t k = 0;
  std::memcpy(&k, key.data(), sizeof k);
  const int shift = static_cast<int>(offset & 3) * 8;
  if constexpr (std::endian::native == std::endian::little) {
    k = std::rotr(k, shift);
  } else {
    k = std::rotl(k, shift);
  }
  return (std::uint64_t{k} << 32) | k;
}

}  // namespace

// Unaligned word loads and stores through memcpy: on the CPUs we run on they
// cost the same as aligned ones unless they cross a cache line, and skipping
// a byte-wise head keeps a small payload (the common message) at a handful
// of instructions.
void apply_mask(std::span<std::byte> data, const MaskKey& key, std::uint64_t offset) noexcept {
  std::byte* p = data.data();
  std::size_t n = data.size();
  if (n == 0) return;
  const std::uint64_t pattern = mask_pattern(key, offset);

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
  // Fewer than 8 bytes left, starting at a multiple of 8 from the start: the
  // pattern's first bytes (in memory order) are the ones that apply.
  std::byte pb[word];
  std::memcpy(pb, &pattern, word);
  if (n >= 4) {
    std::uint32_t w = 0;
    std::uint32_t m = 0;
    std::memcpy(&w, p, 4);
    std::memcpy(&m, pb, 4);
    w ^= m;
    std::memcpy(p, &w, 4);
    p += 4;
    n -= 4;
  }
  // The 4-byte step kept the rotation: pb[0..3] still apply.
  for (std::size_t i = 0; i < n; ++i) p[i] ^= pb[i];
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
