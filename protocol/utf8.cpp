// UTF-8 validation as a shift-packed DFA with an ASCII fast path.
//
// The automaton has nine states. Each one is stored as a multiple of 6, and
// for every input byte a 64-bit row packs the nine successor states, the
// successor of state s at bit s. One step is then `row[byte] >> state`: a
// load that does not depend on the state and one shift on the dependency
// chain, with no separate byte-class lookup. The accept state is 0, so Utf8Validator's
// inline finish() (state_ == 0) needs no table.
#include "protocol/utf8.hpp"

#include <array>
#include <cstring>

namespace ringlink {
namespace {

// States, named by what they still expect.
enum State : std::uint8_t {
  accept = 0,  // on a code point boundary
  cont1,       // one continuation byte (80-BF) left
  cont2,       // two continuation bytes left
  after_e0,    // E0: next must be A0-BF (shorter would be overlong), then one more
  after_ed,    // ED: next must be 80-9F (A0-BF would be a surrogate), then one more
  after_f0,    // F0: next must be 90-BF (shorter would be overlong), then two more
  cont3,       // F1-F3: three continuation bytes left
  after_f4,    // F4: next must be 80-8F (beyond would pass U+10FFFF), then two more
  reject,      // sticky
  state_count,
};

constexpr unsigned state_bits = 6;
static_assert(state_count * state_bits <= 64);

constexpr State transition(State s, unsigned b) noexcept {
  const bool is_cont = b >= 0x80 && b <= 0xBF;
  switch (s) {
    case accept:
      if (b < 0x80) return accept;
      if (b >= 0xC2 && b <= 0xDF) return cont1;
      if (b == 0xE0) return after_e0;
      if (b == 0xED) return after_ed;
      if (b >= 0xE1 && b <= 0xEF) return cont2;
      if (b == 0xF0) return after_f0;
      if (b >= 0xF1 && b <= 0xF3) return cont3;
      if (b == 0xF4) return after_f4;
      return reject;  // stray continuation, C0, C1, F5-FF
    case cont1: return is_cont ? accept : reject;
    case cont2: return is_cont ? cont1 : reject;
    case cont3: return is_cont ? cont2 : reject;
    case after_e0: return (b >= 0xA0 && b <= 0xBF) ? cont1 : reject;
    case after_ed: return (b >= 0x80 && b <= 0x9F) ? cont1 : reject;
    case after_f0: return (b >= 0x90 && b <= 0xBF) ? cont2 : reject;
    case after_f4: return (b >= 0x80 && b <= 0x8F) ? cont2 : reject;
    default: return reject;
  }
}

constexpr std::array<std::uint64_t, 256> make_rows() noexcept {
  std::array<std::uint64_t, 256> rows{};
  for (unsigned b = 0; b < 256; ++b) {
    std::uint64_t row = 0;
    for (unsigned s = 0; s < state_count; ++s) {
      const auto next = static_cast<std::uint64_t>(transition(static_cast<State>(s), b));
      row |= (next * state_bits) << (s * state_bits);
    }
    rows[b] = row;
  }
  return rows;
}

alignas(64) constexpr std::array<std::uint64_t, 256> rows = make_rows();

constexpr std::uint32_t reject_code = reject * state_bits;

// The state rides in the low 6 bits of a 64-bit word with garbage above
// them: x86 and ARM shifts use only the low 6 bits of the count, so the
// `& 63` costs nothing and the loop-carried chain is one shift per byte.
inline std::uint64_t step(std::uint64_t state, unsigned char b) noexcept {
  return rows[b] >> (state & 63u);
}

inline std::uint64_t load64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr std::uint64_t high_bits = 0x8080808080808080ull;

// Runs the automaton from `state` over [p, end) and returns the final state.
std::uint32_t run_serial(std::uint32_t state, const unsigned char* p, const unsigned char* end) noexcept {
  while (p != end) {
    if (state == 0) {
      // Text is mostly ASCII: skip 32, then 8 bytes at a time while every
      // high bit is clear. Only valid at a boundary, where ASCII keeps the
      // automaton in `accept`.
      while (end - p >= 32) {
        const std::uint64_t any =
            load64(p) | load64(p + 8) | load64(p + 16) | load64(p + 24);
        if ((any & high_bits) != 0) break;
        p += 32;
      }
      while (end - p >= 8 && (load64(p) & high_bits) == 0) p += 8;
      if (p == end) break;
    }
    // Non-ASCII around here: step byte by byte over a short stretch, then
    // look for ASCII again. The reject check per stretch stops scanning a
    // large bad buffer early; the state is sticky so correctness needs none.
    const unsigned char* stop = (end - p > 16) ? p + 16 : end;
    std::uint64_t s = state;
    while (p != stop) s = step(s, *p++);
    state = static_cast<std::uint32_t>(s & 63u);
    if (state == reject_code) return state;
  }
  return state;
}

bool ascii16(const unsigned char* p) noexcept {
  return ((load64(p) | load64(p + 8)) & high_bits) == 0;
}

// Below this, splitting the input does not pay for itself.
constexpr std::ptrdiff_t split_min = 1024;

// One automaton is a chain of dependent shifts, about two cycles a byte.
// For long non-ASCII input run two: the second half starts at a code point
// boundary (backing up over at most three continuation bytes; a fourth
// would make the input invalid, which the second automaton then reports),
// so the whole is valid exactly when the first half ends in `accept` and
// the second half is valid. Interleaving the two chains doubles throughput.
std::uint32_t run(std::uint32_t state, const unsigned char* p, const unsigned char* end) noexcept {
  if (end - p < split_min) return run_serial(state, p, end);
  if (state == 0) {
    // Leading ASCII through the fast path alone: pure ASCII ends here.
    while (end - p >= 32) {
      const std::uint64_t any = load64(p) | load64(p + 8) | load64(p + 16) | load64(p + 24);
      if ((any & high_bits) != 0) break;
      p += 32;
    }
    if (end - p < split_min) return run_serial(state, p, end);
  }
  const unsigned char* mid = p + (end - p) / 2;
  for (int i = 0; i < 3 && (*mid & 0xC0) == 0x80; ++i) --mid;

  std::uint64_t a = state;
  std::uint64_t b = 0;
  const unsigned char* pa = p;
  const unsigned char* pb = mid;
  while (mid - pa >= 16 && end - pb >= 16) {
    const bool step_a = (a & 63u) != 0 || !ascii16(pa);
    const bool step_b = (b & 63u) != 0 || !ascii16(pb);
    if (step_a && step_b) {
      for (int i = 0; i < 16; ++i) {
        a = step(a, pa[i]);
        b = step(b, pb[i]);
      }
    } else if (step_a) {
      for (int i = 0; i < 16; ++i) a = step(a, pa[i]);
    } else if (step_b) {
      for (int i = 0; i < 16; ++i) b = step(b, pb[i]);
    }
    pa += 16;
    pb += 16;
    if ((a & 63u) == reject_code || (b & 63u) == reject_code) return reject_code;
  }
  if (run_serial(static_cast<std::uint32_t>(a & 63u), pa, mid) != 0) return reject_code;
  return run_serial(static_cast<std::uint32_t>(b & 63u), pb, end);
}

}  // namespace

bool Utf8Validator::feed(std::span<const std::byte> data) noexcept {
  if (state_ == reject_code) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  state_ = run(state_, p, p + data.size());
  return state_ != reject_code;
}

bool utf8_valid(std::span<const std::byte> data) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  return run(0, p, p + data.size()) == 0;
}

}  // namespace ringlink
