// RealtimeYield: the policy by which a reload's background work (the new model's warm-up steps, freeing the
// replaced model) gives way to realtime work on the serving pool (docs/lifecycle.md, Reload).
//
// Pause() is called before each unit of background work (a warm-up step, a warm-up request group, the
// freeing of a generation). It returns at once while the serving pool has no realtime request queued or
// running (and, with `quiet` set, has had none for that long); otherwise it polls until it has none (for
// `quiet` in a row), but waits at most `max_wait_per_pause` per call and
// `max_wait_total` over the object's lifetime, so the background work still finishes under steady realtime
// traffic: it adds at most min(max_wait_total, pauses x max_wait_per_pause) to a reload.
// Torch-free; the clock and the sleep are injectable for tests. Thread-safe: Pause calls are serialised.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace inferd::daemon {

struct YieldBounds {
  std::chrono::milliseconds max_wait_per_pause{1000};
  std::chrono::milliseconds max_wait_total{30000};
  std::chrono::milliseconds poll{2};  // how often the serving pool is looked at while waiting
  // How long the pool must have had no realtime work in a row before Pause returns; 0: idle at one look. A
  // request that arrives just after one look (the first request after a switch, sent as the reload returns)
  // is seen by a later one, so the background work runs after it instead of beside it.
  std::chrono::milliseconds quiet{0};
};

struct YieldReport {
  int64_t pauses = 0;         // Pause calls
  int64_t waited = 0;         // calls that waited (realtime work seen, or the quiet window waited out)
  int64_t capped = 0;         // calls that ended at a bound with realtime work still there
  double waited_seconds = 0;  // over every call
  bool budget_spent = false;  // max_wait_total reached: later calls return at once
};

class RealtimeYield {
 public:
  using Clock = std::chrono::steady_clock;
  // `realtime_busy`: true while the serving pool has realtime requests queued or running.
  RealtimeYield(std::function<bool()> realtime_busy, YieldBounds bounds,
                std::function<Clock::time_point()> now = Clock::now,
                std::function<void(Clock::duration)> sleep = nullptr);

  void Pause();
  YieldReport report() const;

 private:
  const std::function<bool()> busy_;
  const YieldBounds bounds_;
  const std::function<Clock::time_point()> now_;
  const std::function<void(Clock::duration)> sleep_;
  mutable std::mutex mu_;  // serialises Pause; guards the fields below
  Clock::duration waited_{};
  YieldReport report_;
};

}  // namespace inferd::daemon
