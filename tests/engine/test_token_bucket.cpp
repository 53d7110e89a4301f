// TokenBucket: burst, refill rate, ms_until, takes larger than the burst, disabled limits.
#include <gtest/gtest.h>

#include <cstdint>

#include "engine/token_bucket.hpp"

namespace ringlink {
namespace {

constexpr uint64_t t0 = 50'000;

TEST(TokenBucket, DisabledWhenRateIsNotPositive) {
  for (double rate : {0.0, -1.0, -1e9}) {
    TokenBucket b(rate, 10);
    EXPECT_FALSE(b.enabled());
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(b.try_take(1e6, t0));
    EXPECT_EQ(b.ms_until(1e12, t0), 0u);
  }
}

TEST(TokenBucket, StartsFullAndAllowsExactlyTheBurst) {
  TokenBucket b(100, 10);  // 100/s = one token per 10 ms
  EXPECT_TRUE(b.enabled());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(b.try_take(1, t0)) << i;
  EXPECT_FALSE(b.try_take(1, t0));
  EXPECT_EQ(b.ms_until(1, t0), 10u);
}

TEST(TokenBucket, RefillsAtRateUpToBurst) {
  TokenBucket b(100, 10);
  ASSERT_TRUE(b.try_take(10, t0));
  EXPECT_FALSE(b.try_take(1, t0 + 9));
  EXPECT_TRUE(b.try_take(1, t0 + 10));
  EXPECT_FALSE(b.try_take(1, t0 + 10));
  // A long pause refills only to the burst.
  EXPECT_DOUBLE_EQ(b.tokens_at(t0 + 100'000), 10.0);
  EXPECT_TRUE(b.try_take(10, t0 + 100'000));
  EXPECT_FALSE(b.try_take(1, t0 + 100'000));
}

struct UntilCase {
  double rate;
  double burst;
  double first_take;  // at t0, from a full bucket
  double want;
  uint64_t expect_ms;
};

TEST(TokenBucket, MsUntilIsTheExactWaitRoundedUp) {
  const UntilCase cases[] = {
      {100, 10, 10, 1, 10},        // empty, one token per 10 ms
      {100, 10, 10, 5, 50},
      {100, 10, 5, 5, 0},          // enough left
      {100, 10, 5, 6, 10},         // 5 left, one missing
      {3, 3, 3, 1, 334},           // 333.33 ms rounds up
      {1000, 100, 100, 100, 100},
      {1000, 100, 500, 1, 401},    // went 400 into debt: repay 400, then earn 1
      {1000, 100, 50, 500, 50},    // large take waits for a full bucket, not for 500
      {1e6, 1e6, 1e6, 1, 1},       // fast rate: sub-ms waits round up to 1
  };
  for (const auto& c : cases) {
    TokenBucket b(c.rate, c.burst);
    ASSERT_TRUE(b.try_take(c.first_take, t0));
    const uint64_t wait = b.ms_until(c.want, t0);
    EXPECT_EQ(wait, c.expect_ms) << "rate " << c.rate << " burst " << c.burst << " want " << c.want;
    if (wait > 0) {
      TokenBucket early = b;
      EXPECT_FALSE(early.try_take(c.want, t0 + wait - 1)) << "rate " << c.rate << " want " << c.want;
    }
    EXPECT_TRUE(b.try_take(c.want, t0 + wait)) << "rate " << c.rate << " want " << c.want;
  }
}

TEST(TokenBucket, TakeLargerThanBurstGoesIntoDebtAndKeepsLongRunRate) {
  TokenBucket b(1000, 100);
  EXPECT_TRUE(b.try_take(500, t0));  // a full bucket admits one oversized take
  EXPECT_DOUBLE_EQ(b.tokens_at(t0), -400.0);
  EXPECT_FALSE(b.try_take(1, t0 + 400));  // debt repaid, nothing earned yet
  EXPECT_TRUE(b.try_take(1, t0 + 401));
}

TEST(TokenBucket, LongRunAdmitsBurstPlusRateTimesTime) {
  TokenBucket b(100, 5);
  int admitted = 0;
  for (uint64_t now = t0; now < t0 + 10'000; ++now) admitted += b.try_take(1, now) ? 1 : 0;
  // 5 from the initial burst + 100/s over 9.999 s (999.9 tokens, 999 whole).
  EXPECT_EQ(admitted, 1004);
}

TEST(TokenBucket, ClockGoingBackwardsAddsNothing) {
  TokenBucket b(100, 10);
  ASSERT_TRUE(b.try_take(10, t0 + 1000));
  EXPECT_FALSE(b.try_take(1, t0));       // earlier time: no refill, no underflow
  EXPECT_FALSE(b.try_take(1, t0 + 1009));
  EXPECT_TRUE(b.try_take(1, t0 + 1010));
}

TEST(TokenBucket, NonPositiveTakesAreFree) {
  TokenBucket b(1, 1);
  ASSERT_TRUE(b.try_take(1, t0));
  EXPECT_TRUE(b.try_take(0, t0));
  EXPECT_TRUE(b.try_take(-5, t0));
  EXPECT_EQ(b.ms_until(0, t0), 0u);
  EXPECT_DOUBLE_EQ(b.tokens_at(t0), 0.0);
}

TEST(TokenBucket, ZeroBurstIsPureRate) {
  TokenBucket b(1000, 0);  // no saving up: each take is paid for afterwards
  EXPECT_TRUE(b.try_take(10, t0));
  EXPECT_FALSE(b.try_take(1, t0 + 9));
  EXPECT_TRUE(b.try_take(1, t0 + 10));
}

}  // namespace
}  // namespace ringlink
