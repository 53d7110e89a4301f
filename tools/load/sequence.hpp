// Per-connection sequence accounting: duplicates, reordering and gaps.
//
//   SequenceTracker t;
//   switch (t.on_receive(seq)) { ... }     // in_order, ahead, late, duplicate, too_old
//   t.missing();                           // skipped below the highest seen, never filled
//
// A window of the last 1024 sequence numbers remembers which arrived, so a
// late message is told apart from a duplicate. Older than the window, it
// cannot be: it is counted as too_old (reported with the reordered ones).
#pragma once

#include <array>
#include <cstdint>

namespace ringlink::load {

class SequenceTracker {
 public:
  enum class Arrival : std::uint8_t { in_order, ahead, late, duplicate, too_old };
  static constexpr std::uint64_t window = 1024;

  Arrival on_receive(std::uint64_t seq) noexcept {
    if (seq >= next_) {
      const Arrival a = seq == next_ ? Arrival::in_order : Arrival::ahead;
      // Forget the window slots of the numbers skipped over (they did not arrive).
      if (seq - next_ >= window) {
        seen_.fill(0);
      } else {
        for (std::uint64_t s = next_; s < seq; ++s) clear(s);
      }
      set(seq);
      next_ = seq + 1;
      ++unique_;
      return a;
    }
    if (next_ - seq > window) {
      ++unique_;
      ++reordered_;
      return Arrival::too_old;
    }
    if (test(seq)) {
      ++duplicates_;
      return Arrival::duplicate;
    }
    set(seq);
    ++unique_;
    ++reordered_;
    return Arrival::late;
  }

  std::uint64_t next_expected() const noexcept { return next_; }   // highest seen + 1
  std::uint64_t unique() const noexcept { return unique_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::uint64_t reordered() const noexcept { return reordered_; }
  // Numbers below the highest seen that never arrived.
  std::uint64_t missing() const noexcept { return next_ > unique_ ? next_ - unique_ : 0; }

 private:
  void set(std::uint64_t s) noexcept { seen_[(s % window) / 64] |= 1ULL << (s % 64); }
  void clear(std::uint64_t s) noexcept { seen_[(s % window) / 64] &= ~(1ULL << (s % 64)); }
  bool test(std::uint64_t s) const noexcept { return (seen_[(s % window) / 64] >> (s % 64)) & 1; }

  std::array<std::uint64_t, window / 64> seen_{};
  std::uint64_t next_ = 0;
  std::uint64_t unique_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t reordered_ = 0;
};

}  // namespace ringlink::load
