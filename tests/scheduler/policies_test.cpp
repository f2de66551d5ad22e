#include "scheduler/policies.h"

#include <gtest/gtest.h>

namespace inferd::scheduler {
namespace {

TEST(TokenBudgetTest, TakeAndRefund) {
  TokenBudget b(10);
  EXPECT_EQ(b.Take(4), 4);
  EXPECT_EQ(b.Take(8), 6);
  EXPECT_TRUE(b.exhausted());
  EXPECT_EQ(b.Take(1), 0);
  b.Refund(3);
  EXPECT_EQ(b.remaining(), 3);
}

TEST(ClassOrderingTest, RealtimeEdfBeforeComplexFcfs) {
  SchedulerOptions opts;
  ClassOrdering ord(opts);
  const TimePoint t0{std::chrono::seconds(10)};
  Request rt_late, rt_early, cx_old, cx_new;
  rt_late.cls = rt_early.cls = RequestClass::kRealtime;
  cx_old.cls = cx_new.cls = RequestClass::kComplex;
  rt_late.order = 1;
  rt_late.edf_deadline = t0 + std::chrono::milliseconds(300);
  rt_early.order = 2;
  rt_early.edf_deadline = t0 + std::chrono::milliseconds(100);
  cx_old.order = 0;
  cx_new.order = 3;
  Sequence a, b, c, d;
  a.request = &rt_late;
  b.request = &rt_early;
  c.request = &cx_old;
  d.request = &cx_new;
  EXPECT_LT(ord.Key(b), ord.Key(a));
  EXPECT_LT(ord.Key(a), ord.Key(c));
  EXPECT_LT(ord.Key(c), ord.Key(d));
}

TEST(ClassOrderingTest, DefaultDeadlineAndPromotion) {
  SchedulerOptions opts;
  opts.realtime_default_deadline = std::chrono::milliseconds(50);
  opts.complex_max_wait = std::chrono::milliseconds(500);
  ClassOrdering ord(opts);
  const TimePoint t0{std::chrono::seconds(10)};
  RequestSpec spec;
  spec.cls = RequestClass::kRealtime;
  spec.arrival = t0;
  EXPECT_EQ(ord.EdfDeadline(spec), t0 + std::chrono::milliseconds(50));
  spec.deadline = t0 + std::chrono::milliseconds(20);
  EXPECT_EQ(ord.EdfDeadline(spec), t0 + std::chrono::milliseconds(20));

  Request cx;
  cx.cls = RequestClass::kComplex;
  Sequence s;
  s.request = &cx;
  s.waiting_since = t0;
  EXPECT_FALSE(ord.ShouldPromote(s, t0 + std::chrono::milliseconds(499)));
  EXPECT_TRUE(ord.ShouldPromote(s, t0 + std::chrono::milliseconds(500)));
  s.promoted = true;
  EXPECT_EQ(ord.Key(s).tier, 0);
  EXPECT_EQ(ord.Key(s).deadline, t0 + std::chrono::milliseconds(500));
}

TEST(CapacityPolicyTest, ChunksAndFits) {
  SchedulerOptions opts;
  opts.max_prefill_chunk_tokens = 64;
  opts.max_model_len = 1000;
  opts.max_running = 2;
  CapacityPolicy cap(opts, 10, 16);  // pool holds 160 tokens
  EXPECT_EQ(cap.effective_max_len(), 160);
  EXPECT_TRUE(cap.CheckFits("prompt", 160).ok());
  Status s = cap.CheckFits("prompt", 161);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("prompt"), std::string::npos);
  EXPECT_TRUE(cap.HasRunningSlot(1));
  EXPECT_FALSE(cap.HasRunningSlot(2));
  Request r;
  Sequence seq;
  seq.request = &r;
  seq.tokens.assign(300, 1);
  seq.prompt_len = 300;
  EXPECT_EQ(cap.ChunkSize(seq, 1000), 64);
  EXPECT_EQ(cap.ChunkSize(seq, 10), 10);
}

TEST(AdmissionPolicyTest, BoundedPerClass) {
  SchedulerOptions opts;
  opts.max_waiting_realtime = 1;
  opts.max_waiting_complex = 3;
  AdmissionPolicy adm(opts);
  EXPECT_TRUE(adm.Check(RequestClass::kRealtime, 0, std::chrono::milliseconds(5)).ok());
  Status s = adm.Check(RequestClass::kRealtime, 1, std::chrono::milliseconds(5));
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("retry after 5 ms"), std::string::npos);
  EXPECT_TRUE(adm.Check(RequestClass::kComplex, 2, std::chrono::milliseconds(5)).ok());
}

}  // namespace
}  // namespace inferd::scheduler
