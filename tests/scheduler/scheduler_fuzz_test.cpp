// Random interleavings of submit / cancel / deadlines over thousands of requests: every request ends,
// every surviving Generate matches the reference, and the pool is exactly full again.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "scheduler/scheduler.h"
#include "sim.h"

namespace inferd::scheduler {
namespace {

using engine::FakeExecutor;
using testing::Sim;
using std::chrono::milliseconds;

struct Submitted {
  std::vector<TokenId> prompt;
  std::vector<std::vector<TokenId>> candidates;
  int32_t max_tokens = 0;
};

void RunFuzz(uint32_t seed, bool caching) {
  std::mt19937 rng(seed);
  SchedulerOptions opts;
  opts.max_num_batched_tokens = 256;
  opts.max_prefill_chunk_tokens = 64;
  opts.max_running = 32;
  opts.max_waiting_realtime = 16;
  opts.max_waiting_complex = 64;
  opts.max_model_len = 400;
  opts.complex_max_wait = milliseconds(200);
  Sim sim(opts, 64, 8, caching);  // 512 tokens: constant pressure, frequent preemption
  // A few shared prefixes so the prefix cache hits and shares blocks.
  std::vector<std::vector<TokenId>> prefixes;
  for (int i = 0; i < 4; ++i) prefixes.push_back(testing::Prompt(8 * (i + 1) + 3, 100 + i));
  std::map<RequestId, Submitted> submitted;
  RequestId next_id = 1;
  int rejected_full = 0;
  const int kRequests = 3000;
  int cancels = 0;
  while (next_id <= kRequests || sim.sched.HasWork()) {
    // Bursty arrivals, about 0.17 per step on average: queues fill in bursts and drain between.
    int arrivals = next_id <= kRequests && rng() % 12 == 0 ? static_cast<int>(rng() % 5) : 0;
    if (next_id <= kRequests && rng() % 3000 == 0) arrivals = 80;  // overload: some are refused
    for (int a = 0; a < arrivals && next_id <= kRequests; ++a, ++next_id) {
      RequestSpec spec;
      spec.id = next_id;
      spec.cls = rng() % 3 == 0 ? RequestClass::kRealtime : RequestClass::kComplex;
      spec.prompt = prefixes[rng() % prefixes.size()];
      const int extra = static_cast<int>(rng() % 40);
      for (int i = 0; i < extra; ++i) spec.prompt.push_back(static_cast<TokenId>(rng() % 1000));
      if (rng() % 5 == 0) {
        const int n = 1 + static_cast<int>(rng() % 5);
        for (int c = 0; c < n; ++c) {
          std::vector<TokenId> cand(1 + rng() % 6);
          for (auto& t : cand) t = static_cast<TokenId>(rng() % 1000);
          spec.candidates.push_back(cand);
        }
      } else {
        spec.max_tokens = 1 + static_cast<int32_t>(rng() % 60);
      }
      if (rng() % 10 == 0) spec.deadline = sim.now + milliseconds(rng() % 300);
      spec.arrival = sim.now;
      Submitted sub{spec.prompt, spec.candidates, spec.max_tokens};
      Status s = sim.sched.AddRequest(std::move(spec));
      if (s.code() == StatusCode::kResourceExhausted) {
        ++rejected_full;
        continue;
      }
      ASSERT_TRUE(s.ok()) << s.ToString();
      submitted[next_id] = std::move(sub);
    }
    if (!submitted.empty() && rng() % 30 == 0) {
      // Cancel a random live-or-finished request (finished ones are a no-op).
      auto it = submitted.lower_bound(1 + rng() % (next_id - 1));
      if (it != submitted.end()) {
        sim.sched.Finish(it->first, FinishReason::kCancelled);
        ++cancels;
      }
    }
    sim.Step();
    ASSERT_LT(sim.step, 200000) << "no progress";
  }
  EXPECT_GT(rejected_full, 0);
  EXPECT_GT(cancels, 0);
  EXPECT_GT(sim.sched.Stats().preemptions_total, 0u);
  if (caching) {
    EXPECT_GT(sim.sched.kv().prefix_stats().hit_tokens, 0u);
  }
  int checked = 0;
  for (const auto& [id, sub] : submitted) {
    const auto& o = sim.outcomes[id];
    ASSERT_NE(o.reason, FinishReason::kNone) << "request " << id << " never finished";
    if (o.reason == FinishReason::kMaxTokens) {
      ASSERT_EQ(o.tokens, FakeExecutor::ReferenceGenerate(sub.prompt, sub.max_tokens, Sim::kVocab)) << id;
      ++checked;
    } else if (o.reason == FinishReason::kScored) {
      ASSERT_EQ(o.scores.size(), sub.candidates.size());
      for (size_t i = 0; i < sub.candidates.size(); ++i) {
        ASSERT_NEAR(o.scores[i].sum_logprob, FakeExecutor::ReferenceScore(sub.prompt, sub.candidates[i]), 1e-3);
      }
      ++checked;
    } else if (o.reason == FinishReason::kCancelled || o.reason == FinishReason::kDeadlineExceeded) {
      // Whatever was produced before the end is a prefix of the reference.
      const auto ref = FakeExecutor::ReferenceGenerate(sub.prompt, static_cast<int32_t>(o.tokens.size()), Sim::kVocab);
      ASSERT_EQ(o.tokens, ref) << id;
    } else {
      ADD_FAILURE() << "request " << id << " ended " << FinishReasonName(o.reason);
    }
  }
  EXPECT_GT(checked, static_cast<int>(submitted.size()) / 2);
  std::printf("fuzz seed %u: %d submitted, %d rejected (queue full), %d cancels, %d checked, %llu preemptions, "
              "%lld steps\n",
              seed, static_cast<int>(submitted.size()), rejected_full, cancels, checked,
              static_cast<unsigned long long>(sim.sched.Stats().preemptions_total), static_cast<long long>(sim.step));
  sim.ExpectPoolFull();
  EXPECT_EQ(sim.sched.NumUnstarted(RequestClass::kRealtime), 0);
  EXPECT_EQ(sim.sched.NumUnstarted(RequestClass::kComplex), 0);
}

TEST(SchedulerFuzzTest, RandomSubmitCancelLeavesPoolFullWithCaching) { RunFuzz(1234, true); }
TEST(SchedulerFuzzTest, RandomSubmitCancelLeavesPoolFullNoCaching) { RunFuzz(99, false); }

}  // namespace
}  // namespace inferd::scheduler
