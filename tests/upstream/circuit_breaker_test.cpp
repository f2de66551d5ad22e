// The breaker state machine on an injected clock: closed -> open -> half-open -> closed or open again.
#include "upstream/circuit_breaker.h"

#include <gtest/gtest.h>

namespace inferd::upstream {
namespace {

using A = CircuitBreaker::Admission;
using std::chrono::milliseconds;

class BreakerTest : public ::testing::Test {
 protected:
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  CircuitBreaker breaker_{BreakerOptions{3, milliseconds(1000)}, [this] { return now_; }};

  void Fail(int n) {
    for (int i = 0; i < n; ++i) {
      A a = breaker_.Admit();
      ASSERT_EQ(a, A::kAllow);
      breaker_.OnFailure(a);
    }
  }
};

TEST_F(BreakerTest, OpensAfterThresholdConsecutiveFailures) {
  Fail(2);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  A ok = breaker_.Admit();
  breaker_.OnSuccess(ok);  // resets the run
  Fail(2);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  Fail(1);
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker_.Admit(), A::kReject);
  EXPECT_EQ(breaker_.RetryIn(), milliseconds(1000));
  BreakerStats s = breaker_.stats();
  EXPECT_EQ(s.opened_total, 1u);
  EXPECT_EQ(s.rejected_total, 1u);
}

TEST_F(BreakerTest, HalfOpenLetsExactlyOneProbeAndItsSuccessCloses) {
  Fail(3);
  now_ += milliseconds(999);
  EXPECT_EQ(breaker_.Admit(), A::kReject);
  now_ += milliseconds(1);
  A probe = breaker_.Admit();
  EXPECT_EQ(probe, A::kProbe);
  EXPECT_EQ(breaker_.state(), BreakerState::kHalfOpen);
  EXPECT_EQ(breaker_.Admit(), A::kReject);  // the probe is in flight
  breaker_.OnSuccess(probe);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker_.Admit(), A::kAllow);
  BreakerStats s = breaker_.stats();
  EXPECT_EQ(s.half_opened_total, 1u);
  EXPECT_EQ(s.closed_total, 1u);
}

TEST_F(BreakerTest, FailedProbeReopensForAnotherFullPeriod) {
  Fail(3);
  now_ += milliseconds(1000);
  A probe = breaker_.Admit();
  ASSERT_EQ(probe, A::kProbe);
  now_ += milliseconds(300);
  breaker_.OnFailure(probe);
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  now_ += milliseconds(999);
  EXPECT_EQ(breaker_.Admit(), A::kReject);
  now_ += milliseconds(1);
  EXPECT_EQ(breaker_.Admit(), A::kProbe);
  EXPECT_EQ(breaker_.stats().opened_total, 2u);
}

TEST_F(BreakerTest, AbandonedProbeFreesTheSlot) {
  Fail(3);
  now_ += milliseconds(1000);
  A probe = breaker_.Admit();
  ASSERT_EQ(probe, A::kProbe);
  breaker_.OnAbandon(probe);
  EXPECT_EQ(breaker_.state(), BreakerState::kHalfOpen);
  EXPECT_EQ(breaker_.Admit(), A::kProbe);
}

TEST_F(BreakerTest, LateResultsOfCallsAdmittedWhileClosedAreIgnored) {
  A early = breaker_.Admit();  // admitted while closed, ends after the breaker opened
  Fail(3);
  ASSERT_EQ(breaker_.state(), BreakerState::kOpen);
  breaker_.OnSuccess(early);
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  now_ += milliseconds(1000);
  A probe = breaker_.Admit();
  ASSERT_EQ(probe, A::kProbe);
  breaker_.OnFailure(early);  // does not decide the half-open state; only the probe does
  EXPECT_EQ(breaker_.state(), BreakerState::kHalfOpen);
}

}  // namespace
}  // namespace inferd::upstream
