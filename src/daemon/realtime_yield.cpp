#include "daemon/realtime_yield.h"

#include <algorithm>
#include <thread>

namespace inferd::daemon {

RealtimeYield::RealtimeYield(std::function<bool()> realtime_busy, YieldBounds bounds,
                             std::function<Clock::time_point()> now, std::function<void(Clock::duration)> sleep)
    : busy_(std::move(realtime_busy)),
      bounds_(bounds),
      now_(std::move(now)),
      sleep_(sleep ? std::move(sleep) : [](Clock::duration d) { std::this_thread::sleep_for(d); }) {}

void RealtimeYield::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  ++report_.pauses;
  if (waited_ >= Clock::duration(bounds_.max_wait_total)) report_.budget_spent = true;
  if (report_.budget_spent || !busy_()) return;
  ++report_.waited;
  const Clock::time_point start = now_();
  const Clock::duration allowed =
      std::min<Clock::duration>(bounds_.max_wait_per_pause, Clock::duration(bounds_.max_wait_total) - waited_);
  bool still_busy = true;
  while (still_busy && now_() - start < allowed) {
    sleep_(bounds_.poll);
    still_busy = busy_();
  }
  const Clock::duration spent = now_() - start;
  waited_ += spent;
  report_.waited_seconds = std::chrono::duration<double>(waited_).count();
  if (waited_ >= Clock::duration(bounds_.max_wait_total)) report_.budget_spent = true;
  if (still_busy) ++report_.capped;
}

YieldReport RealtimeYield::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  return report_;
}

}  // namespace inferd::daemon
