// BlockingPool on its own: tasks run on pool threads, at most max_threads at once (a task beyond is refused,
// never queued), idle threads are reused, idle threads beyond keep_idle exit, and the destructor waits for running
// tasks.
#include "server/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace inferd::server {
namespace {

// A gate tasks wait on until Open.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void WaitForWaiters(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return waiting_ >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

// Waits (without a time bound of its own; ctest's timeout bounds it) until no thread of `pool` is busy.
void WaitIdle(const BlockingPool& pool) {
  while (pool.busy() != 0) std::this_thread::yield();
}

TEST(BlockingPoolTest, RunsEachTaskOnAPoolThread) {
  BlockingPool pool(4);
  std::promise<std::thread::id> ran;
  ASSERT_TRUE(pool.TrySubmit([&] { ran.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(ran.get_future().get(), std::this_thread::get_id());
}

TEST(BlockingPoolTest, RefusesATaskWhenEveryThreadIsBusyAndAcceptsOnceOneIsFree) {
  BlockingPool pool(2);
  Gate gate;
  ASSERT_TRUE(pool.TrySubmit([&] { gate.Wait(); }));
  ASSERT_TRUE(pool.TrySubmit([&] { gate.Wait(); }));
  gate.WaitForWaiters(2);
  EXPECT_EQ(pool.busy(), 2u);
  std::atomic<bool> third_ran{false};
  EXPECT_FALSE(pool.TrySubmit([&] { third_ran = true; }));
  EXPECT_EQ(pool.threads(), 2u);
  gate.Open();
  WaitIdle(pool);
  std::promise<void> fourth;
  EXPECT_TRUE(pool.TrySubmit([&] { fourth.set_value(); }));
  fourth.get_future().get();
  EXPECT_FALSE(third_ran.load());  // a refused task is dropped, not run later
  EXPECT_EQ(pool.threads(), 2u);
}

TEST(BlockingPoolTest, AnIdleThreadIsReusedRatherThanANewOneStarted) {
  BlockingPool pool(8);
  std::set<std::thread::id> ids;
  for (int i = 0; i < 5; ++i) {
    std::promise<std::thread::id> ran;
    ASSERT_TRUE(pool.TrySubmit([&] { ran.set_value(std::this_thread::get_id()); }));
    ids.insert(ran.get_future().get());
    WaitIdle(pool);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(BlockingPoolTest, ZeroMaxThreadsAcceptsEveryConcurrentTask) {
  BlockingPool pool(0);
  Gate gate;
  constexpr int kTasks = 16;
  for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(pool.TrySubmit([&] { gate.Wait(); }));
  gate.WaitForWaiters(kTasks);
  EXPECT_EQ(pool.threads(), static_cast<size_t>(kTasks));
  gate.Open();
  WaitIdle(pool);  // the tasks are out of the gate before it is destroyed (it is declared after the pool)
}

TEST(BlockingPoolTest, DestructorWaitsForRunningTasks) {
  std::atomic<bool> finished{false};
  Gate gate;
  {
    BlockingPool pool(2);
    ASSERT_TRUE(pool.TrySubmit([&] {
      gate.Wait();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      finished = true;
    }));
    gate.WaitForWaiters(1);
    gate.Open();
  }
  EXPECT_TRUE(finished.load());
}

TEST(BlockingPoolTest, IdleThreadsBeyondKeepIdleExitAndKeptOnesServeTheNextTasks) {
  constexpr auto kIdleExit = std::chrono::milliseconds(20);
  BlockingPool pool(8, kIdleExit, /*keep_idle=*/2);
  Gate gate;
  constexpr int kTasks = 6;
  for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(pool.TrySubmit([&] { gate.Wait(); }));
  gate.WaitForWaiters(kTasks);
  EXPECT_EQ(pool.threads(), static_cast<size_t>(kTasks));
  gate.Open();
  while (pool.threads() > 2) std::this_thread::sleep_for(kIdleExit);  // ctest's timeout bounds the wait
  std::this_thread::sleep_for(10 * kIdleExit);  // many idle periods later the kept threads are still there
  EXPECT_EQ(pool.threads(), 2u);
  EXPECT_EQ(pool.busy(), 0u);
  Gate second;
  ASSERT_TRUE(pool.TrySubmit([&] { second.Wait(); }));
  ASSERT_TRUE(pool.TrySubmit([&] { second.Wait(); }));
  second.WaitForWaiters(2);
  EXPECT_EQ(pool.threads(), 2u);  // both ran on kept threads, none started
  second.Open();
  WaitIdle(pool);  // the tasks are out of the gate before it is destroyed
}

}  // namespace
}  // namespace inferd::server
