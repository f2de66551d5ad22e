#include "upstream/circuit_breaker.h"

#include <algorithm>

namespace inferd::upstream {

CircuitBreaker::CircuitBreaker(BreakerOptions options, Now now) : options_(options), now_(std::move(now)) {}

void CircuitBreaker::OpenLocked(TimePoint now) {
  state_ = BreakerState::kOpen;
  opened_at_ = now;
  probe_in_flight_ = false;
  consecutive_failures_ = 0;
  ++stats_.opened_total;
}

CircuitBreaker::Admission CircuitBreaker::Admit() {
  const TimePoint now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return Admission::kAllow;
    case BreakerState::kOpen:
      if (now - opened_at_ < options_.open_for) break;
      state_ = BreakerState::kHalfOpen;
      ++stats_.half_opened_total;
      probe_in_flight_ = true;
      return Admission::kProbe;
    case BreakerState::kHalfOpen:
      if (probe_in_flight_) break;
      probe_in_flight_ = true;
      return Admission::kProbe;
  }
  ++stats_.rejected_total;
  return Admission::kReject;
}

void CircuitBreaker::OnSuccess(Admission admission) {
  std::lock_guard<std::mutex> lock(mu_);
  if (admission == Admission::kProbe && state_ == BreakerState::kHalfOpen) {
    state_ = BreakerState::kClosed;
    probe_in_flight_ = false;
    consecutive_failures_ = 0;
    ++stats_.closed_total;
  } else if (admission == Admission::kAllow && state_ == BreakerState::kClosed) {
    consecutive_failures_ = 0;
  }
}

void CircuitBreaker::OnFailure(Admission admission) {
  const TimePoint now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  if (admission == Admission::kProbe && state_ == BreakerState::kHalfOpen) {
    OpenLocked(now);
  } else if (admission == Admission::kAllow && state_ == BreakerState::kClosed) {
    if (++consecutive_failures_ >= options_.failure_threshold) OpenLocked(now);
  }
}

void CircuitBreaker::OnAbandon(Admission admission) {
  std::lock_guard<std::mutex> lock(mu_);
  if (admission == Admission::kProbe && state_ == BreakerState::kHalfOpen) probe_in_flight_ = false;
}

std::chrono::milliseconds CircuitBreaker::RetryIn() const {
  const TimePoint now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != BreakerState::kOpen) return std::chrono::milliseconds(0);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(opened_at_ + options_.open_for - now);
  return std::max(left, std::chrono::milliseconds(0));
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

BreakerStats CircuitBreaker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BreakerStats s = stats_;
  s.state = state_;
  return s;
}

}  // namespace inferd::upstream
