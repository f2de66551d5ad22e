// RealtimeYield: a reload's background work waits while the serving pool has realtime work, within its bounds.
// A fake clock that only the fake sleep advances, and a fake serving pool that is busy over given intervals
// of that clock.
#include "daemon/realtime_yield.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace inferd::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = RealtimeYield::Clock;

struct FakeTime {
  Clock::time_point t{};
  std::vector<std::pair<Clock::duration, Clock::duration>> busy;  // [from, to) since the epoch of t
  int64_t sleeps = 0;

  bool Busy() const {
    for (const auto& [from, to] : busy) {
      if (t.time_since_epoch() >= from && t.time_since_epoch() < to) return true;
    }
    return false;
  }
  RealtimeYield Make(YieldBounds b) {
    return RealtimeYield([this] { return Busy(); }, b, [this] { return t; },
                         [this](Clock::duration d) {
                           t += d;
                           ++sleeps;
                         });
  }
};

YieldBounds Bounds(std::chrono::milliseconds per_pause, std::chrono::milliseconds total,
                   std::chrono::milliseconds quiet = 0ms) {
  YieldBounds b;
  b.max_wait_per_pause = per_pause;
  b.max_wait_total = total;
  b.poll = 1ms;
  b.quiet = quiet;
  return b;
}

TEST(RealtimeYield, IdleServingPoolDoesNotWait) {
  FakeTime f;
  RealtimeYield y = f.Make(Bounds(1000ms, 30000ms));
  for (int i = 0; i < 5; ++i) y.Pause();
  EXPECT_EQ(f.sleeps, 0);
  EXPECT_EQ(f.t, Clock::time_point{});
  const YieldReport r = y.report();
  EXPECT_EQ(r.pauses, 5);
  EXPECT_EQ(r.waited, 0);
  EXPECT_EQ(r.waited_seconds, 0.0);
}

TEST(RealtimeYield, WaitsUntilTheRealtimeWorkIsGone) {
  FakeTime f;
  f.busy = {{0ms, 37ms}};
  RealtimeYield y = f.Make(Bounds(1000ms, 30000ms));
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 37ms);  // returns at the first poll that sees the pool idle
  const YieldReport r = y.report();
  EXPECT_EQ(r.waited, 1);
  EXPECT_EQ(r.capped, 0);
  EXPECT_DOUBLE_EQ(r.waited_seconds, 0.037);
}

TEST(RealtimeYield, OnePauseWaitsAtMostItsBound) {
  FakeTime f;
  f.busy = {{0ms, 10000ms}};
  RealtimeYield y = f.Make(Bounds(250ms, 30000ms));
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 250ms);
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 500ms);
  const YieldReport r = y.report();
  EXPECT_EQ(r.waited, 2);
  EXPECT_EQ(r.capped, 2);
  EXPECT_FALSE(r.budget_spent);
}

TEST(RealtimeYield, TotalBoundEndsAllWaitingUnderSteadyTraffic) {
  FakeTime f;
  f.busy = {{0ms, 3600s}};  // realtime work all the time
  RealtimeYield y = f.Make(Bounds(400ms, 1000ms));
  y.Pause();  // 400
  y.Pause();  // 800
  y.Pause();  // the last 200 of the budget
  EXPECT_EQ(f.t.time_since_epoch(), 1000ms);
  EXPECT_TRUE(y.report().budget_spent);
  const int64_t sleeps = f.sleeps;
  for (int i = 0; i < 100; ++i) y.Pause();  // background work runs on without waiting
  EXPECT_EQ(f.sleeps, sleeps);
  EXPECT_EQ(f.t.time_since_epoch(), 1000ms);
  const YieldReport r = y.report();
  EXPECT_EQ(r.pauses, 103);
  EXPECT_EQ(r.waited, 3);
  EXPECT_DOUBLE_EQ(r.waited_seconds, 1.0);
}

TEST(RealtimeYield, BudgetCountsOnlyTimeSpentWaiting) {
  FakeTime f;
  // Three bursts of realtime work of 300 ms each, background work in between at 1000, 2000, 3000 ms.
  f.busy = {{0ms, 300ms}, {1000ms, 1300ms}, {2000ms, 2300ms}};
  RealtimeYield y = f.Make(Bounds(1000ms, 700ms));
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 300ms);
  f.t = Clock::time_point(1000ms);
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 1300ms);
  f.t = Clock::time_point(2000ms);
  y.Pause();  // only 100 ms of the budget left
  EXPECT_EQ(f.t.time_since_epoch(), 2100ms);
  const YieldReport r = y.report();
  EXPECT_TRUE(r.budget_spent);
  EXPECT_EQ(r.capped, 1);
  EXPECT_DOUBLE_EQ(r.waited_seconds, 0.7);
}

// With a quiet window, an idle pool is watched for that long first, and realtime work that starts meanwhile
// (a request arriving just after the first look) restarts the window once it ends.
TEST(RealtimeYield, QuietWindowWaitsOutRequestsThatArriveJustAfterTheFirstLook) {
  FakeTime f;
  f.busy = {{3ms, 40ms}, {60ms, 70ms}};
  RealtimeYield y = f.Make(Bounds(1000ms, 30000ms, 50ms));
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 120ms);  // 50 ms after the second burst ended
  FakeTime idle;
  RealtimeYield z = idle.Make(Bounds(1000ms, 30000ms, 50ms));
  z.Pause();
  EXPECT_EQ(idle.t.time_since_epoch(), 50ms);
  EXPECT_EQ(z.report().waited, 1);
  EXPECT_EQ(z.report().capped, 0);
}

// Realtime work every 30 ms for 20 ms never leaves a 50 ms window: the call ends at its bound, capped.
TEST(RealtimeYield, QuietWindowStillEndsAtTheBoundUnderSteadyTraffic) {
  FakeTime f;
  for (int i = 0; i < 100; ++i) f.busy.push_back({i * 30ms, i * 30ms + 20ms});
  RealtimeYield y = f.Make(Bounds(500ms, 30000ms, 50ms));
  y.Pause();
  EXPECT_EQ(f.t.time_since_epoch(), 500ms);
  EXPECT_EQ(y.report().capped, 1);
}

}  // namespace
}  // namespace inferd::daemon
