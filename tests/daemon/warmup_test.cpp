// The warm-up runs every shape class the scheduler produces, observed as the batches the executor receives.
#include "daemon/warmup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>

#include "daemon/realtime_yield.h"
#include "engine/fake_executor.h"

namespace inferd::daemon {
namespace {

// What the warm-up fed the model, step by step.
struct Recorded {
  std::mutex mu;
  std::vector<int32_t> decode_only_batches;    // steps whose every chunk is one decode token: their batch size
  std::vector<int32_t> prefill_chunk_lengths;  // every prefill chunk
  std::vector<int32_t> prefill_chunk_starts;   // and where it started
  std::vector<int32_t> step_prefill_tokens;    // per step
  std::set<SeqId> scoring_seqs;                // sequences that scored candidate tokens
  int64_t steps = 0;
};

class RecordingExecutor final : public Executor {
 public:
  // Steps take 5 ms, as a small model's do: a warm-up group's submits land within its first step.
  explicit RecordingExecutor(std::shared_ptr<Recorded> rec)
      : rec_(std::move(rec)), fake_(engine::FakeExecutorOptions{.step_delay = std::chrono::milliseconds(5)}) {}
  KvCacheLayout CacheLayout() const override { return fake_.CacheLayout(); }
  Status InitializeCache(int32_t num_blocks, int32_t block_size) override {
    return fake_.InitializeCache(num_blocks, block_size);
  }
  StatusOr<StepResult> Execute(const ForwardBatch& batch) override {
    std::lock_guard<std::mutex> lock(rec_->mu);
    ++rec_->steps;
    bool decode_only = !batch.chunks.empty();
    int32_t prefill = 0;
    for (const SequenceChunk& c : batch.chunks) {
      const bool decode = c.tokens.size() == 1 && c.start_pos > 0 && c.score_index.empty();
      decode_only = decode_only && decode;
      if (!decode) {
        prefill += static_cast<int32_t>(c.tokens.size());
        rec_->prefill_chunk_lengths.push_back(static_cast<int32_t>(c.tokens.size()));
        rec_->prefill_chunk_starts.push_back(static_cast<int32_t>(c.start_pos));
      }
      if (!c.score_index.empty()) rec_->scoring_seqs.insert(c.seq_id);
    }
    if (decode_only) rec_->decode_only_batches.push_back(static_cast<int32_t>(batch.chunks.size()));
    rec_->step_prefill_tokens.push_back(prefill);
    return fake_.Execute(batch);
  }

 private:
  std::shared_ptr<Recorded> rec_;
  engine::FakeExecutor fake_;
};

struct Warmed {
  std::shared_ptr<Recorded> rec = std::make_shared<Recorded>();
  WarmupReport report;
};

// `yield` (may be null): paused on before every group and after every step, as a reload's warm-up does.
Warmed WarmUp(const ModelPoolConfig& config, int32_t gemv_max_rows = 64, RealtimeYield* yield = nullptr,
              std::shared_ptr<Recorded> rec = nullptr) {
  EngineOptions o;
  o.kv_cache.block_size = config.kv_cache.block_size;
  o.kv_cache.memory_budget_bytes = config.kv_cache.memory_bytes;
  o.scheduler.max_num_batched_tokens = config.scheduler.max_batched_tokens;
  o.scheduler.max_running = config.scheduler.max_running;
  o.scheduler.max_prefill_chunk_tokens = config.scheduler.prefill_chunk_tokens;
  o.scheduler.max_model_len = 4096;
  o.scheduler.max_candidates = config.limits.max_candidates;
  Warmed run;
  if (rec) run.rec = std::move(rec);
  auto engine = Engine::Create(o, std::make_unique<RecordingExecutor>(run.rec));
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (yield != nullptr) (*engine)->SetStatsCallback([yield](const EngineStats&) { yield->Pause(); });
  WarmupModel m;
  m.max_model_len = 4096;
  m.vocab_size = 1000;
  m.kv_num_blocks = (*engine)->num_blocks();
  m.block_size = config.kv_cache.block_size;
  m.gemv_max_rows = gemv_max_rows;
  run.report = RunWarmup(**engine, PlanWarmup(config, m), m.vocab_size,
                         yield != nullptr ? std::function<void()>([yield] { yield->Pause(); }) : nullptr);
  return run;
}

bool Has(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST(Warmup, RunsEveryDecodeBucketPrefillChunkAndRecommendSize) {
  ModelPoolConfig c;  // defaults: max_running 64, max_batched_tokens 512, prefill_chunk_tokens 256
  const Warmed run = WarmUp(c);
  for (int32_t b : {1, 2, 4, 8, 16, 32, 64}) {
    EXPECT_TRUE(Has(run.rec->decode_only_batches, b)) << "no decode-only step of batch " << b;
  }
  EXPECT_LE(*std::max_element(run.rec->decode_only_batches.begin(), run.rec->decode_only_batches.end()), 64);
  // A full prefill chunk, a later chunk of the same prompt reading the cached one, a step filling the token
  // budget, and a short prompt on the GEMV path.
  EXPECT_TRUE(Has(run.rec->prefill_chunk_lengths, 256));
  EXPECT_TRUE(Has(run.rec->prefill_chunk_starts, 256));
  EXPECT_TRUE(Has(run.rec->step_prefill_tokens, 512));
  bool short_prefill = false;
  for (size_t i = 0; i < run.rec->prefill_chunk_lengths.size(); ++i) {
    short_prefill =
        short_prefill || (run.rec->prefill_chunk_starts[i] == 0 && run.rec->prefill_chunk_lengths[i] <= 64 &&
                          run.rec->prefill_chunk_lengths[i] >= 8);
  }
  EXPECT_TRUE(short_prefill);
  // Recommends of 1, 8 and 32 candidates, each round: every candidate is a sequence of its own.
  EXPECT_EQ(run.rec->scoring_seqs.size(), static_cast<size_t>(kWarmupRounds * (1 + 8 + 32)));
  ASSERT_EQ(run.report.classes.size(), 3u);
  EXPECT_EQ(run.report.classes[0].name, "prefill");
  EXPECT_EQ(run.report.classes[1].name, "decode");
  EXPECT_EQ(run.report.classes[2].name, "recommend");
  EXPECT_EQ(run.report.classes[2].requests, kWarmupRounds * 3);
  EXPECT_EQ(run.report.classes[1].requests, kWarmupRounds * 64);  // one group, staggered
}

TEST(Warmup, BucketsFollowThePoolsCapsAndTheGemvLimit) {
  ModelPoolConfig c;
  c.scheduler.max_running = 100;
  c.limits.max_candidates = 5;
  const Warmed run = WarmUp(c, /*gemv_max_rows=*/16);
  for (int32_t b : {1, 2, 4, 8, 16, 17, 32, 64, 100}) {
    EXPECT_TRUE(Has(run.rec->decode_only_batches, b)) << "no decode-only step of batch " << b;
  }
  EXPECT_FALSE(Has(run.rec->decode_only_batches, 128));
  EXPECT_EQ(run.rec->scoring_seqs.size(), static_cast<size_t>(kWarmupRounds * (1 + 5)));
}

TEST(Warmup, ClassesAreChosenByConfigAndDisabledRunsNothing) {
  ModelPoolConfig c;
  c.warmup.classes = {"recommend"};
  Warmed run = WarmUp(c);
  EXPECT_TRUE(run.rec->decode_only_batches.empty());
  EXPECT_EQ(run.rec->scoring_seqs.size(), static_cast<size_t>(kWarmupRounds * (1 + 8 + 32)));
  ASSERT_EQ(run.report.classes.size(), 1u);

  c.warmup.enabled = false;
  run = WarmUp(c);
  EXPECT_EQ(run.rec->steps, 0);
  EXPECT_TRUE(run.report.classes.empty());
}

// A reload's warm-up: paused on before each group and after each step, as daemon/pool_manager.cpp does.
TEST(Warmup, BesideAServingPoolEveryStepAndGroupWaitsForItsRealtimeWork) {
  ModelPoolConfig c;
  c.warmup.classes = {"prefill", "recommend"};
  Warmed plain = WarmUp(c);
  ASSERT_GT(plain.rec->steps, 3);

  // Realtime work on the serving pool all the time: every pause waits until its bound, and the warm-up still
  // runs every shape (it only takes longer).
  YieldBounds bounds;
  bounds.max_wait_per_pause = std::chrono::milliseconds(3);
  bounds.max_wait_total = std::chrono::milliseconds(2000);
  bounds.poll = std::chrono::milliseconds(1);
  RealtimeYield always([] { return true; }, bounds);
  Warmed yielded = WarmUp(c, 64, &always);
  EXPECT_EQ(yielded.rec->prefill_chunk_lengths, plain.rec->prefill_chunk_lengths);
  EXPECT_EQ(yielded.rec->scoring_seqs.size(), plain.rec->scoring_seqs.size());
  const YieldReport r = always.report();
  const int64_t groups = 2 + 3;  // prefill: the long prompts, the short one; recommend: 1, 8, 32 candidates
  // Once before each group, once after each step that ran (the last step's pause may come after RunWarmup).
  EXPECT_GE(r.pauses, groups + yielded.rec->steps - 1);
  EXPECT_LE(r.pauses, groups + yielded.rec->steps);
  EXPECT_EQ(r.waited, r.pauses);
  EXPECT_EQ(r.capped, r.pauses);
  EXPECT_FALSE(r.budget_spent);

  // Budget spent: the warm-up runs on without waiting.
  bounds.max_wait_total = std::chrono::milliseconds(0);
  RealtimeYield spent([] { return true; }, bounds);
  Warmed unbounded = WarmUp(c, 64, &spent);
  EXPECT_EQ(unbounded.rec->scoring_seqs.size(), plain.rec->scoring_seqs.size());
  EXPECT_EQ(spent.report().waited_seconds, 0.0);
}

TEST(Warmup, NoStepRunsWhileTheServingPoolHasRealtimeWork) {
  ModelPoolConfig c;
  c.warmup.classes = {"recommend"};
  // The serving pool's realtime work ends only when the test says so; the warm-up's first group must not
  // reach the executor before.
  std::mutex mu;
  bool serving_busy = true;
  int64_t probes_while_busy = 0;
  int64_t steps_while_busy = -1;
  auto rec = std::make_shared<Recorded>();
  YieldBounds bounds;
  bounds.max_wait_per_pause = std::chrono::milliseconds(60000);
  bounds.max_wait_total = std::chrono::milliseconds(60000);
  bounds.poll = std::chrono::milliseconds(1);
  RealtimeYield yield(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        if (serving_busy && ++probes_while_busy == 20) {  // after 20 looks: idle
          serving_busy = false;
          std::lock_guard<std::mutex> rec_lock(rec->mu);
          steps_while_busy = rec->steps;
        }
        return serving_busy;
      },
      bounds);
  Warmed run = WarmUp(c, 64, &yield, rec);
  EXPECT_EQ(probes_while_busy, 20);
  EXPECT_EQ(steps_while_busy, 0);
  EXPECT_EQ(run.rec->scoring_seqs.size(), static_cast<size_t>(kWarmupRounds * (1 + 8 + 32)));
  const YieldReport r = yield.report();
  EXPECT_EQ(r.waited, 1);  // only the first pause found the pool busy
  EXPECT_EQ(r.capped, 0);
}

TEST(Warmup, ASmallKvPoolShrinksTheBatchesInsteadOfFailing) {
  ModelPoolConfig c;
  WarmupModel m;
  m.max_model_len = 4096;
  m.vocab_size = 1000;
  m.kv_num_blocks = 20;  // 20 blocks of 16 tokens
  m.block_size = 16;
  const std::vector<WarmupClass> plan = PlanWarmup(c, m);
  ASSERT_EQ(plan.size(), 3u);
  ASSERT_EQ(plan[1].groups.size(), 1u);
  EXPECT_GE(plan[1].groups[0].prompt_lengths.size(), 2u);  // a few sequences still fit
  for (const WarmupClass& k : plan) {
    for (const WarmupGroup& g : k.groups) {
      int64_t blocks = 0;
      for (size_t i = 0; i < g.prompt_lengths.size() && g.candidates == 0; ++i) {
        blocks += (g.prompt_lengths[i] + g.max_tokens[i] + 15) / 16;
      }
      if (g.candidates == 0) {
        EXPECT_LE(blocks, 20) << k.name;
      } else {
        EXPECT_LE(3 + 2 * g.candidates, 20) << k.name;
      }
    }
  }
}

}  // namespace
}  // namespace inferd::daemon
