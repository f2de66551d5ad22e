#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include "sim.h"

namespace inferd::scheduler {
namespace {

using engine::FakeExecutor;
using testing::Prompt;
using testing::Sim;
using std::chrono::milliseconds;

bool HasChunkOfSeqWithPrefix(const SchedulerOutput& out, const std::vector<TokenId>& prompt) {
  for (const auto& c : out.batch.chunks) {
    if (c.start_pos == 0 && !c.tokens.empty() && c.tokens[0] == prompt[0] &&
        std::equal(c.tokens.begin(), c.tokens.end(), prompt.begin())) {
      return true;
    }
  }
  return false;
}

TEST(SchedulerTest, GenerateMatchesReference) {
  SchedulerOptions opts;
  Sim sim(opts, 64);
  const auto p = Prompt(40, 1);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, p, 20).ok());
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[1].tokens, FakeExecutor::ReferenceGenerate(p, 20, Sim::kVocab));
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kMaxTokens);
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, LongPromptIsChunked) {
  SchedulerOptions opts;
  opts.max_num_batched_tokens = 256;
  opts.max_prefill_chunk_tokens = 100;
  Sim sim(opts, 256);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(1000, 1), 1).ok());
  SchedulerOutput out = sim.Step();
  ASSERT_EQ(out.batch.chunks.size(), 1u);
  EXPECT_EQ(out.batch.chunks[0].tokens.size(), 100u);
  EXPECT_FALSE(out.batch.chunks[0].sample);
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[1].tokens, FakeExecutor::ReferenceGenerate(Prompt(1000, 1), 1, Sim::kVocab));
}

TEST(SchedulerTest, RealtimeBehindLongComplexPrefillRunsNextStep) {
  SchedulerOptions opts;
  opts.max_num_batched_tokens = 512;
  opts.max_prefill_chunk_tokens = 512;
  Sim sim(opts, 1024);
  const auto long_prompt = Prompt(4000, 1);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, long_prompt, 4).ok());
  sim.Step();  // the complex prefill holds the whole budget
  const auto rt_prompt = Prompt(30, 2);
  ASSERT_TRUE(sim.Add(2, RequestClass::kRealtime, rt_prompt, 4).ok());
  SchedulerOutput out = sim.Step();
  EXPECT_TRUE(sim.outcomes[2].started);
  EXPECT_TRUE(HasChunkOfSeqWithPrefix(out, rt_prompt));
  // Realtime goes first: its whole prompt is in this step, the complex chunk shrank.
  EXPECT_EQ(out.batch.chunks.size(), 2u);
  EXPECT_EQ(out.batch.chunks[0].tokens.size(), 30u);
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[1].tokens, FakeExecutor::ReferenceGenerate(long_prompt, 4, Sim::kVocab));
  EXPECT_EQ(sim.outcomes[2].tokens, FakeExecutor::ReferenceGenerate(rt_prompt, 4, Sim::kVocab));
}

TEST(SchedulerTest, RealtimePreemptsComplexForRunningSlot) {
  SchedulerOptions opts;
  opts.max_running = 2;
  Sim sim(opts, 256);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(20, 1), 50).ok());
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, Prompt(20, 2), 50).ok());
  sim.Step();
  sim.Step();
  ASSERT_TRUE(sim.Add(3, RequestClass::kRealtime, Prompt(20, 3), 5).ok());
  SchedulerOutput out = sim.Step();
  EXPECT_TRUE(sim.outcomes[3].started);
  EXPECT_EQ(out.num_preempted, 1);
  sim.RunUntilIdle();
  for (RequestId id : {1, 2}) {
    EXPECT_EQ(sim.outcomes[id].tokens,
              FakeExecutor::ReferenceGenerate(Prompt(20, static_cast<int>(id)), 50, Sim::kVocab));
  }
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, RealtimePreemptsComplexForBlocks) {
  SchedulerOptions opts;
  Sim sim(opts, 8);  // 128 tokens
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(100, 1), 20).ok());
  sim.Step();
  ASSERT_TRUE(sim.Add(2, RequestClass::kRealtime, Prompt(60, 2), 3).ok());
  SchedulerOutput out = sim.Step();
  EXPECT_TRUE(sim.outcomes[2].started);
  EXPECT_GE(out.num_preempted, 1);
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[1].tokens, FakeExecutor::ReferenceGenerate(Prompt(100, 1), 20, Sim::kVocab));
  EXPECT_EQ(sim.outcomes[2].tokens, FakeExecutor::ReferenceGenerate(Prompt(60, 2), 3, Sim::kVocab));
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, StarvationBoundHolds) {
  SchedulerOptions opts;
  opts.max_running = 1;
  opts.complex_max_wait = milliseconds(100);
  Sim sim(opts, 256);  // tick 10 ms
  RequestId next = 10;
  ASSERT_TRUE(sim.Add(next++, RequestClass::kRealtime, Prompt(10, 0), 3).ok());
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(10, 1), 3).ok());
  // A realtime request is always waiting: without the bound the complex one would never run.
  for (int i = 0; i < 60 && !sim.outcomes[1].started; ++i) {
    if (sim.sched.Stats().waiting_requests[0] == 0) {
      const RequestId id = next++;
      ASSERT_TRUE(sim.Add(id, RequestClass::kRealtime, Prompt(10, static_cast<int>(id)), 3).ok());
    }
    sim.Step();
  }
  ASSERT_TRUE(sim.outcomes[1].started);
  const auto waited = sim.tick * sim.outcomes[1].started_step;
  EXPECT_LE(waited, opts.complex_max_wait + sim.tick);
  EXPECT_GE(waited, opts.complex_max_wait - 4 * sim.tick);  // it really was held back by realtime
  sim.RunUntilIdle();
  sim.ExpectPoolFull();
}

// Under sustained complex overload every waiting complex sequence passes the starvation bound. Promoting
// them all put every one of them (deadline already past) ahead of each new realtime request, and let them
// preempt running complex work in turn; only one complex sequence is promoted at a time now, so a realtime
// request still starts at once.
TEST(SchedulerTest, ComplexOverloadDoesNotOutrankRealtime) {
  SchedulerOptions opts;
  opts.max_running = 2;
  opts.max_num_batched_tokens = 64;
  opts.complex_max_wait = milliseconds(100);
  Sim sim(opts, 256);  // tick 10 ms
  for (RequestId id = 1; id <= 8; ++id) {
    ASSERT_TRUE(sim.Add(id, RequestClass::kComplex, Prompt(60, static_cast<int>(id)), 200).ok());
  }
  for (int i = 0; i < 30; ++i) sim.Step();  // 300 ms: the waiting complex requests are all past the bound
  ASSERT_TRUE(sim.Add(100, RequestClass::kRealtime, Prompt(60, 100), 2).ok());
  for (int i = 0; i < 2 && !sim.outcomes[100].started; ++i) sim.Step();
  EXPECT_TRUE(sim.outcomes[100].started) << "realtime request waited behind promoted complex work";
  sim.RunUntilIdle();
  for (RequestId id = 1; id <= 8; ++id) {
    EXPECT_EQ(sim.outcomes[id].tokens,
              FakeExecutor::ReferenceGenerate(Prompt(60, static_cast<int>(id)), 200, Sim::kVocab))
        << "request " << id;
  }
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, PreemptedAndResumedProduceSameTokens) {
  SchedulerOptions opts;
  opts.max_num_batched_tokens = 256;
  Sim sim(opts, 24, 8);  // tight pool: decode growth must preempt
  for (RequestId id = 1; id <= 8; ++id) {
    ASSERT_TRUE(sim.Add(id, RequestClass::kComplex, Prompt(20, static_cast<int>(id)), 40).ok());
  }
  sim.RunUntilIdle();
  EXPECT_GT(sim.sched.Stats().preemptions_total, 0u);
  for (RequestId id = 1; id <= 8; ++id) {
    EXPECT_EQ(sim.outcomes[id].tokens,
              FakeExecutor::ReferenceGenerate(Prompt(20, static_cast<int>(id)), 40, Sim::kVocab))
        << "request " << id;
  }
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, CancelFreesBlocksAtOnce) {
  SchedulerOptions opts;
  Sim sim(opts, 64);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(100, 1), 100).ok());
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, Prompt(100, 2), 100).ok());
  sim.Step();
  sim.Step();
  EXPECT_LT(sim.sched.kv().NumFreeBlocks(), 64);
  sim.sched.Finish(1, FinishReason::kCancelled);
  sim.sched.Finish(2, FinishReason::kCancelled);
  sim.Collect();
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kCancelled);
  sim.ExpectPoolFull();
  EXPECT_FALSE(sim.sched.HasWork());
}

TEST(SchedulerTest, DeadlineExpiryFreesBlocksWithinOneStep) {
  SchedulerOptions opts;
  Sim sim(opts, 64);
  ASSERT_TRUE(sim.Add(1, RequestClass::kRealtime, Prompt(50, 1), 1000, sim.now + milliseconds(35)).ok());
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, Prompt(50, 2), 1000, sim.now + milliseconds(5)).ok());
  sim.Step();  // t=0: both run
  EXPECT_LT(sim.sched.kv().NumFreeBlocks(), 64);
  sim.Step();  // t=10: request 2 expired
  EXPECT_EQ(sim.outcomes[2].reason, FinishReason::kDeadlineExceeded);
  sim.Step();
  sim.Step();
  sim.Step();  // t=40
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kDeadlineExceeded);
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, WaitingRequestExpires) {
  SchedulerOptions opts;
  opts.max_running = 1;
  Sim sim(opts, 64);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(10, 1), 50).ok());
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, Prompt(10, 2), 5, sim.now + milliseconds(15)).ok());
  sim.Step();
  sim.Step();
  sim.Step();
  EXPECT_EQ(sim.outcomes[2].reason, FinishReason::kDeadlineExceeded);
  EXPECT_FALSE(sim.outcomes[2].started);
  EXPECT_EQ(sim.sched.NumUnstarted(RequestClass::kComplex), 0);
}

TEST(SchedulerTest, PrefixReuseHits) {
  SchedulerOptions opts;
  Sim sim(opts, 64);
  const auto p = Prompt(64, 3);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, p, 2).ok());
  sim.RunUntilIdle();
  auto p2 = p;
  p2.push_back(5);
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, p2, 2).ok());
  ASSERT_TRUE(sim.Add(3, RequestClass::kComplex, p, 2).ok());
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[2].cached_tokens, 64);
  EXPECT_EQ(sim.outcomes[3].cached_tokens, 48);  // the last prompt token is always computed
  EXPECT_EQ(sim.outcomes[2].tokens, FakeExecutor::ReferenceGenerate(p2, 2, Sim::kVocab));
  EXPECT_EQ(sim.outcomes[3].tokens, FakeExecutor::ReferenceGenerate(p, 2, Sim::kVocab));
  const auto& st = sim.sched.kv().prefix_stats();
  EXPECT_EQ(st.hit_tokens, 112u);
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.queries, 3u);
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, QueueFullAndNeverFits) {
  SchedulerOptions opts;
  opts.max_waiting_complex = 2;
  opts.max_model_len = 512;
  Sim sim(opts, 16);  // 256 tokens
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(10, 1), 2).ok());
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, Prompt(10, 2), 2).ok());
  Status full = sim.Add(3, RequestClass::kComplex, Prompt(10, 3), 2);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("retry after"), std::string::npos);
  EXPECT_TRUE(sim.Add(4, RequestClass::kRealtime, Prompt(10, 4), 2).ok());  // per-class queues
  Status never = sim.Add(5, RequestClass::kRealtime, Prompt(300, 5), 2);
  EXPECT_EQ(never.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(never.message().find("prompt"), std::string::npos);
  EXPECT_EQ(sim.Add(6, RequestClass::kRealtime, {}, 2).code(), StatusCode::kInvalidArgument);
  sim.Step();  // started requests leave the queue
  EXPECT_TRUE(sim.Add(7, RequestClass::kComplex, Prompt(10, 7), 2).ok());
  sim.RunUntilIdle();
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, StopConditionsHaveTheirOwnReasons) {
  const auto p = Prompt(12, 9);
  const auto ref = FakeExecutor::ReferenceGenerate(p, 30, Sim::kVocab);
  SchedulerOptions opts;
  opts.eos_token_ids = {ref[4]};
  opts.max_model_len = 12 + 20;
  Sim sim(opts, 64);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, p, 30).ok());  // EOS at the 5th token
  RequestSpec spec;
  spec.id = 2;
  spec.prompt = p;
  spec.max_tokens = 30;
  spec.ignore_eos = true;
  spec.arrival = sim.now;
  ASSERT_TRUE(sim.sched.AddRequest(spec).ok());  // context limit after 20 tokens
  spec.id = 3;
  spec.max_tokens = 3;
  ASSERT_TRUE(sim.sched.AddRequest(spec).ok());
  spec.id = 4;
  spec.max_tokens = 0;
  spec.stop_token_ids = {ref[1]};
  ASSERT_TRUE(sim.sched.AddRequest(spec).ok());
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kEos);
  EXPECT_EQ(sim.outcomes[1].tokens.size(), 5u);
  EXPECT_EQ(sim.outcomes[2].reason, FinishReason::kContextLength);
  EXPECT_EQ(sim.outcomes[2].tokens.size(), 20u);
  EXPECT_EQ(sim.outcomes[3].reason, FinishReason::kMaxTokens);
  EXPECT_EQ(sim.outcomes[3].tokens.size(), 3u);
  EXPECT_EQ(sim.outcomes[4].reason, FinishReason::kEos);
  EXPECT_EQ(sim.outcomes[4].tokens.size(), 2u);
}

TEST(SchedulerTest, RecommendSharesContextAndScores) {
  SchedulerOptions opts;
  Sim sim(opts, 128);
  const auto ctx = Prompt(50, 4);  // 3 full blocks shareable
  std::vector<std::vector<TokenId>> cands;
  for (int i = 0; i < 6; ++i) cands.push_back(Prompt(3 + i, 20 + i));
  RequestSpec spec;
  spec.id = 1;
  spec.cls = RequestClass::kRealtime;
  spec.prompt = ctx;
  spec.candidates = cands;
  spec.arrival = sim.now;
  ASSERT_TRUE(sim.sched.AddRequest(spec).ok());
  SchedulerOutput first = sim.Step();
  ASSERT_EQ(first.batch.chunks.size(), 1u);  // context alone first
  EXPECT_FALSE(first.batch.chunks[0].sample);
  SchedulerOutput second = sim.Step();
  ASSERT_EQ(second.batch.chunks.size(), cands.size());
  for (const auto& c : second.batch.chunks) {
    EXPECT_EQ(c.start_pos, 48);                         // shared context blocks
    EXPECT_EQ(c.block_table[0], first.batch.chunks[0].block_table[0]);
    EXPECT_FALSE(c.sample);
  }
  sim.RunUntilIdle();
  const auto& o = sim.outcomes[1];
  EXPECT_EQ(o.reason, FinishReason::kScored);
  ASSERT_EQ(o.scores.size(), cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    EXPECT_EQ(o.scores[i].index, static_cast<int32_t>(i));
    EXPECT_EQ(o.scores[i].num_tokens, static_cast<int32_t>(cands[i].size()));
    EXPECT_NEAR(o.scores[i].sum_logprob, FakeExecutor::ReferenceScore(ctx, cands[i]), 1e-4);
  }
  EXPECT_EQ(sim.sched.kv().prefix_stats().hit_tokens, 48u * cands.size());
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, RecommendScoresSurviveChunkingAndShortContext) {
  SchedulerOptions opts;
  opts.max_prefill_chunk_tokens = 7;
  opts.max_num_batched_tokens = 20;
  Sim sim(opts, 64, 4);
  for (int ctx_len : {1, 3, 4, 9}) {
    const auto ctx = Prompt(ctx_len, ctx_len);
    std::vector<std::vector<TokenId>> cands = {Prompt(10, 1), Prompt(1, 2), Prompt(4, 3)};
    RequestSpec spec;
    spec.id = static_cast<RequestId>(ctx_len);
    spec.prompt = ctx;
    spec.candidates = cands;
    spec.arrival = sim.now;
    ASSERT_TRUE(sim.sched.AddRequest(spec).ok());
    sim.RunUntilIdle();
    const auto& o = sim.outcomes[spec.id];
    ASSERT_EQ(o.scores.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(o.scores[i].sum_logprob, FakeExecutor::ReferenceScore(ctx, cands[i]), 1e-4) << ctx_len;
    }
  }
  sim.ExpectPoolFull();
}

TEST(SchedulerTest, ExecutorFailureFailsBatchOnly) {
  SchedulerOptions opts;
  Sim sim(opts, 64);
  ASSERT_TRUE(sim.Add(1, RequestClass::kComplex, Prompt(10, 1), 5).ok());
  SchedulerOutput out = sim.sched.Schedule(sim.now);
  sim.sched.FailBatch(out);
  sim.Collect();
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kError);
  sim.ExpectPoolFull();
  ASSERT_TRUE(sim.Add(2, RequestClass::kComplex, Prompt(10, 2), 5).ok());
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[2].reason, FinishReason::kMaxTokens);
}

}  // namespace
}  // namespace inferd::scheduler
