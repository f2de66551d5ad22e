// RunAtPriority / SetThisThreadPriority: the priority a reload's threads run at, read back from the kernel.
#include "daemon/thread_priority.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

namespace inferd::daemon {
namespace {

int ThisThreadNice() {
  errno = 0;
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

TEST(ThreadPriority, LowRunsAtNice19AndThreadsItStartsInheritIt) {
  const int before = ThisThreadNice();
  ASSERT_LT(before, 19) << "the test already runs at nice 19";
  int inside = -100, child = -100;
  const Status s = RunAtPriority("low", [&] {
    inside = ThisThreadNice();
    std::thread t([&] { child = ThisThreadNice(); });
    t.join();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(inside, 19);
  EXPECT_EQ(child, 19);
  EXPECT_EQ(ThisThreadNice(), before);  // the caller is untouched
}

TEST(ThreadPriority, IdleRunsUnderSchedIdle) {
  int policy = -1;
  const Status s = RunAtPriority("idle", [&] { policy = ::sched_getscheduler(0); });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(policy, SCHED_IDLE);
  EXPECT_EQ(::sched_getscheduler(0), SCHED_OTHER);
}

TEST(ThreadPriority, NormalLeavesThePriority) {
  const int before = ThisThreadNice();
  int inside = -100;
  int policy = -1;
  ASSERT_TRUE(RunAtPriority("normal", [&] {
                inside = ThisThreadNice();
                policy = ::sched_getscheduler(0);
              }).ok());
  EXPECT_EQ(inside, before);
  EXPECT_EQ(policy, SCHED_OTHER);
}

TEST(ThreadPriority, UnknownNameIsRefusedAndTheWorkStillRuns) {
  bool ran = false;
  const Status s = RunAtPriority("high", [&] { ran = true; });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'high'"), std::string::npos) << s.message();
  EXPECT_TRUE(ran);
}

TEST(ThreadPriority, WhatTheWorkThrowsReachesTheCaller) {
  EXPECT_THROW(RunAtPriority("low", [] { throw std::runtime_error("load failed"); }), std::runtime_error);
}

}  // namespace
}  // namespace inferd::daemon
