// Token-bucket rate limit for one link's reads (bytes or messages per second).
//
//   TokenBucket limit{/*rate_per_s=*/1 << 20, /*burst=*/256 << 10};  // 1 MiB/s, 256 KiB burst
//   if (!limit.try_take(n, now_ms)) {
//     pause_reading(link);                      // and wake up when tokens are back:
//     wheel.schedule(link.timer, now_ms + limit.ms_until(n, now_ms));
//   }
//
// The bucket starts full and refills continuously at rate_per_s, up to `burst` tokens.
// A rate <= 0 disables the limit: try_take always succeeds, ms_until is always 0.
//
// Takes larger than the burst: a take succeeds once the bucket holds min(n, burst) tokens,
// and then removes all n, possibly driving the balance negative; the debt is repaid by the
// refill before anything else is allowed. So a 1 MiB message passes a 64 KiB-burst bucket
// (it could never otherwise) and the long-run rate still holds.
//
// Times are monotonic milliseconds; a `now_ms` earlier than a previous one counts as no
// time passed. Not thread-safe (one per link, used on its reactor).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ringlink {

class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst) noexcept
      : rate_per_ms_(rate_per_s > 0 ? rate_per_s / 1000.0 : 0.0),
        burst_(std::max(burst, 0.0)),
        tokens_(burst_) {}

  bool enabled() const noexcept { return rate_per_ms_ > 0; }
  double rate_per_s() const noexcept { return rate_per_ms_ * 1000.0; }
  double burst() const noexcept { return burst_; }

  // Takes n tokens if available now (see the header comment for n > burst); n <= 0 is free.
  bool try_take(double n, uint64_t now_ms) noexcept {
    if (!enabled() || n <= 0) return true;
    refill(now_ms);
    if (!covers(tokens_, n)) return false;
    tokens_ -= n;
    return true;
  }

  // Milliseconds until try_take(n) would succeed (0 if it would now). Rounded up, so
  // try_take(n, now_ms + ms_until(n, now_ms)) succeeds.
  uint64_t ms_until(double n, uint64_t now_ms) const noexcept {
    if (!enabled() || n <= 0) return 0;
    const double have = tokens_at(now_ms);
    if (covers(have, n)) return 0;
    const double missing = std::min(n, burst_) - have;
    return static_cast<uint64_t>(std::ceil(missing / rate_per_ms_));
  }

  // Balance at now_ms (may be negative after a take larger than the burst).
  double tokens_at(uint64_t now_ms) const noexcept {
    const uint64_t elapsed = now_ms > last_ms_ ? now_ms - last_ms_ : 0;
    return std::min(burst_, tokens_ + static_cast<double>(elapsed) * rate_per_ms_);
  }

 private:
  // The tolerance absorbs rounding in refill arithmetic so that waiting exactly ms_until()
  // always suffices; it is far below one token for any sane rate.
  bool covers(double have, double n) const noexcept {
    return have + 1e-9 * std::max(1.0, n) >= std::min(n, burst_);
  }

  void refill(uint64_t now_ms) noexcept {
    tokens_ = tokens_at(now_ms);
    last_ms_ = std::max(last_ms_, now_ms);
  }

  double rate_per_ms_;
  double burst_;
  double tokens_;
  uint64_t last_ms_ = 0;
};

}  // namespace ringlink
