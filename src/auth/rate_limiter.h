// RateLimiter: one token bucket per identity (server.auth.rate_limit). Each request takes one token; a bucket
// holds at most `burst` tokens and refills at `rate_per_second`. No gRPC or HTTP types; time is passed in so
// the policy is tested without sleeping. Thread-safe (one mutex; buckets are created on first use and live as
// long as the limiter, so callers must key it by bounded identities such as token-file names).
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace inferd::auth {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // rate_per_second > 0; burst >= 1 (a full bucket at first use).
  RateLimiter(double rate_per_second, double burst);

  // Takes one token of `identity`'s bucket at `now`: 0 ms when allowed, else the wait (>= 1 ms, rounded
  // up) until one token is available. A refused request takes nothing.
  std::chrono::milliseconds Acquire(std::string_view identity, Clock::time_point now);

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  const double rate_;
  const double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace inferd::auth
