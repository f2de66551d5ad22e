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
  if (report_.budget_spent) return;
  const Clock::duration quiet = bounds_.quiet;
  bool busy = busy_();
  if (!busy && quiet == Clock::duration::zero()) return;
  ++report_.waited;
  const Clock::time_point start = now_();
  const Clock::duration allowed =
      std::min<Clock::duration>(bounds_.max_wait_per_pause, Clock::duration(bounds_.max_wait_total) - waited_);
  Clock::time_point idle_since = start;  // meaningful while !busy
  bool done = !busy && quiet == Clock::duration::zero();
  while (!done && now_() - start < allowed) {
    sleep_(bounds_.poll);
    const bool was_busy = busy;
    busy = busy_();
    if (!busy && was_busy) idle_since = now_();
    done = !busy && now_() - idle_since >= quiet;
  }
  const Clock::duration spent = now_() - start;
  waited_ += spent;
  report_.waited_seconds = std::chrono::duration<double>(waited_).count();
  if (waited_ >= Clock::duration(bounds_.max_wait_total)) report_.budget_spent = true;
  if (!done) ++report_.capped;
}

YieldReport RealtimeYield::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  return report_;
}

}  // namespace inferd::daemon
