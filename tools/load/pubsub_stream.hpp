// Sequence accounting of one pub/sub stream (one subscriber, one publisher,
// one topic), in fixed memory: the next number expected and a window of the
// 64 numbers below it, so that a late arrival is told from a duplicate.
//
//   StreamTracker s;
//   switch (s.on_receive(seq)) { case StreamTracker::Arrival::duplicate: ... }
//   lost = sent - s.unique();                   // once the drain is over
//
// An arrival more than 64 below the highest number seen cannot be told from
// a duplicate: it counts as reordered (and as received).
#pragma once

#include <cstdint>

namespace ringlink::load {

class StreamTracker {
 public:
  enum class Arrival : std::uint8_t { in_order, ahead, late, duplicate, too_old };
  static constexpr std::uint64_t window = 64;

  Arrival on_receive(std::uint64_t seq) noexcept {
    if (seq >= next_) {
      const std::uint64_t shift = seq - next_ + 1;
      seen_ = shift >= window ? 0 : seen_ << shift;
      seen_ |= 1;  // bit i: next_ - 1 - i arrived
      const Arrival a = seq == next_ ? Arrival::in_order : Arrival::ahead;
      next_ = seq + 1;
      ++unique_;
      return a;
    }
    const std::uint64_t back = next_ - 1 - seq;
    if (back >= window) {
      ++unique_;
      ++reordered_;
      return Arrival::too_old;
    }
    if ((seen_ >> back) & 1) {
      ++duplicates_;
      return Arrival::duplicate;
    }
    seen_ |= 1ULL << back;
    ++unique_;
    ++reordered_;
    return Arrival::late;
  }

  std::uint64_t next_expected() const noexcept { return next_; }
  std::uint64_t unique() const noexcept { return unique_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::uint64_t reordered() const noexcept { return reordered_; }
  bool confirmed = false;  // a warm-up publication of this stream arrived

 private:
  std::uint64_t seen_ = 0;
  std::uint64_t next_ = 0;
  std::uint64_t unique_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t reordered_ = 0;
};

}  // namespace ringlink::load
