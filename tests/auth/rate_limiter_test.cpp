#include "auth/rate_limiter.h"

#include <gtest/gtest.h>

namespace inferd::auth {
namespace {

using std::chrono::milliseconds;

TEST(RateLimiterTest, BurstThenRefillAtTheRate) {
  RateLimiter limiter(/*rate_per_second=*/10, /*burst=*/3);
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Acquire("a", t0), milliseconds(0)) << i;
  // Empty: one token takes 100 ms at 10/s.
  EXPECT_EQ(limiter.Acquire("a", t0), milliseconds(100));
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(40)), milliseconds(60));
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(100)), milliseconds(0));
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(100)), milliseconds(100));
  // A long pause refills up to the burst, not beyond.
  const auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Acquire("a", later), milliseconds(0)) << i;
  EXPECT_GT(limiter.Acquire("a", later).count(), 0);
}

TEST(RateLimiterTest, IdentitiesHaveTheirOwnBuckets) {
  RateLimiter limiter(1, 1);
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(limiter.Acquire("a", t0), milliseconds(0));
  EXPECT_EQ(limiter.Acquire("a", t0), milliseconds(1000));
  EXPECT_EQ(limiter.Acquire("b", t0), milliseconds(0));
}

TEST(RateLimiterTest, RefusalsTakeNothingAndWaitsRoundUp) {
  RateLimiter limiter(3, 1);  // one token per 333.3 ms
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(limiter.Acquire("a", t0), milliseconds(0));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.Acquire("a", t0), milliseconds(334)) << i;
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(334)), milliseconds(0));
}

}  // namespace
}  // namespace inferd::auth
