// CircuitBreaker: closed -> open after `failure_threshold` consecutive failed calls; open rejects at once
// for `open_for`; then half-open lets exactly one probe call through: its success closes the breaker,
// its failure opens it again. Results of calls admitted before the breaker opened are ignored while open
// or half-open. Thread-safe (one mutex); the clock is injected for tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "inferd/edge_stats.h"
#include "inferd/request_types.h"

namespace inferd::upstream {

using inferd::BreakerState;
using inferd::BreakerStats;

struct BreakerOptions {
  int32_t failure_threshold = 5;
  std::chrono::milliseconds open_for{2000};
};

class CircuitBreaker {
 public:
  using Now = std::function<TimePoint()>;
  enum class Admission { kAllow, kProbe, kReject };

  explicit CircuitBreaker(
      BreakerOptions options, Now now = [] { return Clock::now(); });

  // kReject while open, and while half-open with the probe in flight; kProbe for the one half-open call.
  Admission Admit();
  // Report each admitted call's end exactly once with its Admission.
  void OnSuccess(Admission admission);  // the upstream answered (any status it chose to send)
  void OnFailure(Admission admission);  // it could not be reached or broke the call (UNAVAILABLE)
  void OnAbandon(Admission admission);  // ended without a verdict (client cancelled): frees the probe slot
  // Time left until a half-open probe is allowed (0 unless open).
  std::chrono::milliseconds RetryIn() const;

  BreakerState state() const;
  BreakerStats stats() const;

 private:
  void OpenLocked(TimePoint now);

  const BreakerOptions options_;
  const Now now_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  int32_t consecutive_failures_ = 0;
  TimePoint opened_at_{};
  bool probe_in_flight_ = false;
  BreakerStats stats_;
};

}  // namespace inferd::upstream
