#include "auth/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace inferd::auth {

RateLimiter::RateLimiter(double rate_per_second, double burst) : rate_(rate_per_second), burst_(std::max(1.0, burst)) {}

std::chrono::milliseconds RateLimiter::Acquire(std::string_view identity, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(std::string(identity));
  if (it == buckets_.end()) it = buckets_.emplace(std::string(identity), Bucket{burst_, now}).first;
  Bucket& b = it->second;
  if (now > b.last) {
    b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::chrono::milliseconds(0);
  }
  const double wait_ms = std::ceil((1.0 - b.tokens) / rate_ * 1000.0);
  return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(wait_ms)));
}

}  // namespace inferd::auth
