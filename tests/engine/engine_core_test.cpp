#include "engine/engine_core.h"

#include <gtest/gtest.h>

#include "engine/fake_executor.h"

namespace inferd::engine {
namespace {

using std::chrono::milliseconds;
constexpr int32_t kVocab = 1000;

std::vector<TokenId> Prompt(int n, int salt) {
  std::vector<TokenId> v(n);
  for (int i = 0; i < n; ++i) v[i] = (i * 11 + salt * 17 + 3) % 991;
  return v;
}

class EngineCoreTest : public ::testing::Test {
 protected:
  void Make(EngineOptions opts, FakeExecutorOptions fx = {}, bool text = true) {
    if (opts.kv_cache.num_blocks_override == 0) opts.kv_cache.num_blocks_override = 128;
    fx.vocab_size = kVocab;
    auto exec = std::make_unique<FakeExecutor>(fx);
    exec_ = exec.get();
    core_ = std::make_unique<EngineCore>(opts, std::move(exec), text ? FakeTextStreamFactory() : nullptr,
                                         [this] { return now_; });
    ASSERT_TRUE(core_->Init().ok());
    core_->SetStatsCallback([this](const EngineStats& s) { stats_.push_back(s); });
  }
  void RunUntilIdle() {
    for (int i = 0; i < 10000 && core_->HasWork(); ++i) {
      core_->Step();
      now_ += milliseconds(10);
    }
    ASSERT_FALSE(core_->HasWork());
  }
  // Reads every delta of a finished stream.
  static TokenDelta ReadAll(RequestStream& s) {
    TokenDelta all, d;
    while (s.Read(&d, milliseconds(0)) == RequestStream::ReadResult::kDelta) {
      all.token_ids.insert(all.token_ids.end(), d.token_ids.begin(), d.token_ids.end());
      all.text += d.text;
      all.logprobs.insert(all.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
      for (auto& t : d.top_logprobs) all.top_logprobs.push_back(t);
    }
    return all;
  }

  TimePoint now_{std::chrono::seconds(100)};
  FakeExecutor* exec_ = nullptr;
  std::unique_ptr<EngineCore> core_;
  std::vector<EngineStats> stats_;
};

TEST_F(EngineCoreTest, GenerateStreamsTokensTextLogprobsAndTimings) {
  Make({});
  GenerateRequest req;
  req.prompt = Prompt(30, 1);
  req.max_tokens = 12;
  req.sampling.top_logprobs = 2;
  SubmitResult r = core_->Submit(req);
  ASSERT_TRUE(r.status.ok());
  RunUntilIdle();
  ASSERT_TRUE(r.stream->finished());
  TokenDelta all = ReadAll(*r.stream);
  const auto ref = FakeExecutor::ReferenceGenerate(req.prompt, 12, kVocab);
  EXPECT_EQ(all.token_ids, ref);
  EXPECT_EQ(all.text, FakeTextStream::Render(ref));
  EXPECT_EQ(all.logprobs.size(), 12u);
  ASSERT_EQ(all.top_logprobs.size(), 12u);
  EXPECT_EQ(all.top_logprobs[0].size(), 2u);
  const RequestOutcome& o = r.stream->Wait();
  EXPECT_TRUE(o.status.ok());
  EXPECT_EQ(o.finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ(o.generated_tokens, 12);
  EXPECT_EQ(o.timings.token_times.size(), 12u);
  EXPECT_LE(o.timings.arrival, o.timings.first_scheduled);
  EXPECT_LE(o.timings.first_scheduled, o.timings.first_token);
  EXPECT_LE(o.timings.first_token, o.timings.end);
  // Stats: one finished request reported with its latencies.
  int finished = 0;
  for (const auto& s : stats_) finished += static_cast<int>(s.finished.size());
  EXPECT_EQ(finished, 1);
  EXPECT_GT(stats_.front().prefill_tokens, 0);
  EXPECT_EQ(stats_.back().kv_free_blocks, stats_.back().kv_num_blocks);
}

TEST_F(EngineCoreTest, StopStringEndsWithItsReasonAndExcludesIt) {
  Make({});
  GenerateRequest req;
  req.prompt = Prompt(20, 2);
  req.max_tokens = 40;
  const auto ref = FakeExecutor::ReferenceGenerate(req.prompt, 40, kVocab);
  const std::string text = FakeTextStream::Render(ref);
  req.stop = {text.substr(6, 3)};
  const size_t at = text.find(req.stop[0]);
  SubmitResult r = core_->Submit(req);
  ASSERT_TRUE(r.status.ok());
  RunUntilIdle();
  TokenDelta all = ReadAll(*r.stream);
  const RequestOutcome& o = r.stream->Wait();
  EXPECT_EQ(o.finish_reason, FinishReason::kStopString);
  EXPECT_EQ(all.text, text.substr(0, at));
  EXPECT_EQ(all.token_ids.size(), at + 3);
  EXPECT_EQ(core_->scheduler().kv().NumFreeBlocks(), core_->num_blocks());
}

TEST_F(EngineCoreTest, RecommendRanksTopK) {
  Make({});
  RecommendRequest req;
  req.context = Prompt(40, 3);
  for (int i = 0; i < 8; ++i) req.candidates.push_back(Prompt(2 + i % 3, 50 + i));
  req.top_k = 3;
  SubmitResult r = core_->Submit(req);
  ASSERT_TRUE(r.status.ok());
  RunUntilIdle();
  const RequestOutcome& o = r.stream->Wait();
  ASSERT_TRUE(o.status.ok());
  EXPECT_EQ(o.finish_reason, FinishReason::kScored);
  ASSERT_EQ(o.ranked.size(), 3u);
  std::vector<std::pair<double, int>> ref;
  for (int i = 0; i < 8; ++i) {
    ref.emplace_back(-FakeExecutor::ReferenceScore(req.context, req.candidates[i]) / req.candidates[i].size(), i);
  }
  std::sort(ref.begin(), ref.end());
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(o.ranked[k].index, ref[k].second);
    EXPECT_NEAR(o.ranked[k].mean_logprob, -ref[k].first, 1e-4);
  }
  EXPECT_EQ(o.cached_prompt_tokens, 0);  // the context itself is computed once
  EXPECT_GE(stats_.back().prefix_hit_tokens_total, 32u * 8);
}

TEST_F(EngineCoreTest, SubmitErrors) {
  EngineOptions opts;
  opts.scheduler.max_waiting_complex = 2;
  opts.scheduler.max_model_len = 256;
  Make(opts, {}, /*text=*/false);
  GenerateRequest ok;
  ok.prompt = Prompt(10, 1);
  ok.max_tokens = 2;
  ASSERT_TRUE(core_->Submit(ok).status.ok());
  ASSERT_TRUE(core_->Submit(ok).status.ok());
  SubmitResult full = core_->Submit(ok);
  EXPECT_EQ(full.status.code(), StatusCode::kResourceExhausted);
  EXPECT_GE(full.retry_after.count(), 50);
  EXPECT_EQ(full.stream, nullptr);
  GenerateRequest big = ok;
  big.prompt = Prompt(300, 1);
  EXPECT_EQ(core_->Submit(big).status.code(), StatusCode::kInvalidArgument);
  GenerateRequest stop = ok;
  stop.stop = {"x"};
  EXPECT_EQ(core_->Submit(stop).status.code(), StatusCode::kInvalidArgument);  // no tokenizer
  GenerateRequest bad = ok;
  bad.sampling.top_p = 0.0f;
  EXPECT_EQ(core_->Submit(bad).status.code(), StatusCode::kInvalidArgument);
  RecommendRequest rec;
  rec.context = Prompt(5, 1);
  EXPECT_EQ(core_->Submit(rec).status.code(), StatusCode::kInvalidArgument);
  rec.candidates = {{1}, {}};
  EXPECT_EQ(core_->Submit(rec).status.code(), StatusCode::kInvalidArgument);
  core_->Step();  // both start: the queue has room again
  EXPECT_TRUE(core_->Submit(ok).status.ok());
  core_->StopAccepting();
  EXPECT_EQ(core_->Submit(ok).status.code(), StatusCode::kUnavailable);
  RunUntilIdle();
}

TEST_F(EngineCoreTest, CancelAndDeadlineFreeBlocksWithinOneStep) {
  Make({});
  GenerateRequest a;
  a.prompt = Prompt(60, 1);
  a.max_tokens = 500;
  GenerateRequest b = a;
  b.prompt = Prompt(60, 2);
  b.deadline = now_ + milliseconds(25);
  SubmitResult ra = core_->Submit(a);
  SubmitResult rb = core_->Submit(b);
  core_->Step();
  now_ += milliseconds(10);
  core_->Step();
  now_ += milliseconds(10);
  EXPECT_LT(core_->scheduler().kv().NumFreeBlocks(), core_->num_blocks());
  core_->Cancel(ra.stream->id());
  core_->Step();  // t = 20: cancel applied
  now_ += milliseconds(10);
  EXPECT_EQ(ra.stream->Wait().status.code(), StatusCode::kCancelled);
  core_->Step();  // t = 30: deadline passed
  EXPECT_EQ(rb.stream->Wait().status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(rb.stream->Wait().finish_reason, FinishReason::kDeadlineExceeded);
  EXPECT_EQ(core_->scheduler().kv().NumFreeBlocks(), core_->num_blocks());
  EXPECT_FALSE(core_->HasWork());
}

TEST_F(EngineCoreTest, ExecutorFailureFailsBatchAndKeepsServing) {
  FakeExecutorOptions fx;
  fx.fail_at_step = 1;
  Make({}, fx);
  GenerateRequest a;
  a.prompt = Prompt(10, 1);
  a.max_tokens = 5;
  SubmitResult ra = core_->Submit(a);
  RunUntilIdle();
  EXPECT_EQ(ra.stream->Wait().status.code(), StatusCode::kInternal);
  EXPECT_EQ(ra.stream->Wait().finish_reason, FinishReason::kError);
  SubmitResult rb = core_->Submit(a);
  RunUntilIdle();
  EXPECT_TRUE(rb.stream->Wait().status.ok());
  EXPECT_EQ(ReadAll(*rb.stream).token_ids, FakeExecutor::ReferenceGenerate(a.prompt, 5, kVocab));
}

// An executor that throws (not only one that returns an error) fails its batch and leaves the engine serving.
TEST_F(EngineCoreTest, ExecutorExceptionFailsBatchWithInternalAndKeepsServing) {
  FakeExecutorOptions fx;
  fx.throw_at_step = 1;
  Make({}, fx);
  GenerateRequest a;
  a.prompt = Prompt(10, 1);
  a.max_tokens = 5;
  GenerateRequest b = a;
  b.prompt = Prompt(12, 2);
  SubmitResult ra = core_->Submit(a);
  SubmitResult rb = core_->Submit(b);
  RunUntilIdle();
  for (SubmitResult* r : {&ra, &rb}) {
    const RequestOutcome& out = r->stream->Wait();
    EXPECT_EQ(out.status.code(), StatusCode::kInternal);
    EXPECT_NE(out.status.message().find("fake executor: injected exception"), std::string::npos)
        << out.status.message();
    EXPECT_EQ(out.finish_reason, FinishReason::kError);
  }
  EXPECT_EQ(core_->scheduler().kv().NumFreeBlocks(), core_->num_blocks());
  SubmitResult rc = core_->Submit(a);
  RunUntilIdle();
  EXPECT_TRUE(rc.stream->Wait().status.ok());
  EXPECT_EQ(ReadAll(*rc.stream).token_ids, FakeExecutor::ReferenceGenerate(a.prompt, 5, kVocab));
}

}  // namespace
}  // namespace inferd::engine

namespace inferd::engine {
namespace {

// Deadline-aware admission through the engine: the cost model learns the fake executor's 40 us per token
// during warm-up, then realtime Recommends whose deadline the queue ahead makes unreachable are refused at submit.
class EngineAdmissionTest : public EngineCoreTest {
 protected:
  // Warm-up Recommends until the cost model is ready. Returns false when the machine's step times stay too
  // noisy for it (other work preempting the engine thread): the model then refuses nothing, by design.
  bool Warm() {
    for (int i = 0; i < 200; ++i) {
      RecommendRequest r;
      r.context = Prompt(40, 100 + i);
      r.candidates = {Prompt(5, 1), Prompt(6, 2)};
      EXPECT_TRUE(core_->Submit(r).status.ok());
      RunUntilIdle();
      if (i >= 24 && stats_.back().cost_model_ready) return true;
    }
    return false;
  }
  RecommendRequest Rec(int salt, milliseconds to_deadline) {
    RecommendRequest r;
    r.context = Prompt(40, salt);
    for (int c = 0; c < 8; ++c) r.candidates.push_back(Prompt(6, 300 + c));
    r.deadline = now_ + to_deadline;
    return r;
  }
};

TEST_F(EngineAdmissionTest, RefusesWhatTheQueueAheadMakesLateAndAdmitsTheRest) {
  EngineOptions opts;
  opts.kv_cache.num_blocks_override = 1024;
  FakeExecutorOptions fx;
  fx.token_delay = std::chrono::microseconds(40);  // busy wait: steady under load, unlike a sleep
  Make(opts, fx);
  if (!Warm()) {
    GTEST_SKIP() << "step times too noisy here for the cost model to become ready (median error "
                 << core_->scheduler().Stats().cost.median_rel_error << ")";
  }
  // Far more time than any prediction: admitted.
  SubmitResult ok = core_->Submit(Rec(1, milliseconds(60000)));
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  // No time at all: refused at once, with the reason and a retry hint.
  SubmitResult none = core_->Submit(Rec(2, milliseconds(0)));
  ASSERT_EQ(none.status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(none.status.message().find("realtime deadline cannot be met"), std::string::npos) << none.status.message();
  EXPECT_GE(none.retry_after, opts.min_retry_after);
  RunUntilIdle();
  // A burst with 200 ms each: the first ones fit, then the work admitted ahead pushes the rest past it.
  int admitted = 0, refused = 0;
  bool refused_seen = false;
  for (int i = 0; i < 400; ++i) {
    SubmitResult r = core_->Submit(Rec(10 + i, milliseconds(200)));
    if (r.status.ok()) {
      ++admitted;
      EXPECT_FALSE(refused_seen) << "admitted after a refusal with no work done in between";
    } else {
      ASSERT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.ToString();
      ++refused;
      refused_seen = true;
    }
  }
  EXPECT_GT(admitted, 0);
  EXPECT_GT(refused, 0);
  RunUntilIdle();
  EXPECT_EQ(stats_.back().realtime_refused_total, static_cast<uint64_t>(refused + 1));
  // Finished work leaves the queue: a new request with 200 ms is admitted again.
  EXPECT_TRUE(core_->Submit(Rec(9999, milliseconds(200))).status.ok());
  RunUntilIdle();
}

TEST_F(EngineAdmissionTest, BestEffortServesAndCountsPredictedLate) {
  EngineOptions opts;
  opts.kv_cache.num_blocks_override = 1024;
  opts.scheduler.realtime_refuse_unmeetable = false;
  FakeExecutorOptions fx;
  fx.token_delay = std::chrono::microseconds(40);
  Make(opts, fx);
  if (!Warm()) {
    GTEST_SKIP() << "step times too noisy here for the cost model to become ready (median error "
                 << core_->scheduler().Stats().cost.median_rel_error << ")";
  }
  SubmitResult r = core_->Submit(Rec(2, milliseconds(0)));
  ASSERT_TRUE(r.status.ok());
  RunUntilIdle();
  EXPECT_EQ(r.stream->Wait().finish_reason, FinishReason::kDeadlineExceeded);
  EXPECT_EQ(stats_.back().realtime_predicted_late_total, 1u);
  EXPECT_EQ(stats_.back().realtime_refused_total, 0u);
}

}  // namespace
}  // namespace inferd::engine
