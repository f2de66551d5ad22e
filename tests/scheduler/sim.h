// Test driver: a Scheduler wired to the deterministic FakeExecutor, with a fake clock.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "engine/fake_executor.h"
#include "scheduler/scheduler.h"

namespace inferd::scheduler::testing {

struct Outcome {
  std::vector<TokenId> tokens;
  FinishReason reason = FinishReason::kNone;
  bool started = false;
  int64_t started_step = -1;
  int32_t cached_tokens = 0;
  std::vector<CandidateScore> scores;
};

class Sim {
 public:
  static constexpr int32_t kVocab = 1000;

  Sim(const SchedulerOptions& options, int32_t num_blocks, int32_t block_size = 16, bool caching = true)
      : sched(options, num_blocks, block_size, caching), exec(engine::FakeExecutorOptions{kVocab}) {
    EXPECT_TRUE(exec.InitializeCache(num_blocks, block_size).ok());
  }

  Status Add(RequestId id, RequestClass cls, std::vector<TokenId> prompt, int32_t max_tokens,
             std::optional<TimePoint> deadline = std::nullopt) {
    RequestSpec spec;
    spec.id = id;
    spec.cls = cls;
    spec.prompt = std::move(prompt);
    spec.max_tokens = max_tokens;
    spec.arrival = now;
    spec.deadline = deadline;
    return sched.AddRequest(std::move(spec));
  }

  // One schedule-execute-update; returns the batch that ran.
  SchedulerOutput Step() {
    SchedulerOutput out = sched.Schedule(now);
    if (!out.empty()) {
      auto result = exec.Execute(out.batch);
      EXPECT_TRUE(result.ok()) << result.status().ToString();
      if (result.ok()) sched.Update(out, *result);
    }
    Collect();
    ++step;
    now += tick;
    return out;
  }

  void Collect() {
    for (auto& ev : sched.TakeEvents()) {
      Outcome& o = outcomes[ev.request_id];
      switch (ev.type) {
        case RequestEvent::Type::kStarted:
          o.started = true;
          o.started_step = step;
          o.cached_tokens = ev.cached_prompt_tokens;
          break;
        case RequestEvent::Type::kToken: o.tokens.push_back(ev.token.token); break;
        case RequestEvent::Type::kFinished:
          o.reason = ev.finish_reason;
          o.scores = ev.scores;
          break;
      }
    }
  }

  void RunUntilIdle(int max_steps = 100000) {
    for (int i = 0; i < max_steps && sched.HasWork(); ++i) Step();
    ASSERT_FALSE(sched.HasWork()) << "did not finish";
  }

  bool ContainsSeqOf(const SchedulerOutput& out, RequestId) const { return !out.empty(); }

  void ExpectPoolFull() const {
    EXPECT_EQ(sched.kv().NumFreeBlocks(), sched.kv().num_blocks());
    EXPECT_EQ(sched.kv().NumSequences(), 0);
    for (BlockId b = 0; b < sched.kv().num_blocks(); ++b) EXPECT_EQ(sched.kv().pool().RefCount(b), 0);
  }

  Scheduler sched;
  engine::FakeExecutor exec;
  TimePoint now{std::chrono::seconds(1000)};
  std::chrono::milliseconds tick{10};
  int64_t step = 0;
  std::map<RequestId, Outcome> outcomes;
};

inline std::vector<TokenId> Prompt(int n, int salt) {
  std::vector<TokenId> v(n);
  for (int i = 0; i < n; ++i) v[i] = (i * 7 + salt * 13 + 1) % 997;
  return v;
}

}  // namespace inferd::scheduler::testing
