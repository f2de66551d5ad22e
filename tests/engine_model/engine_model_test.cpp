// The serving engine over the real model (ModelExecutor over ModelRunner, fp32) on the tiny checkpoints:
// concurrency, Recommend scoring and preemption give what one-at-a-time runs give.
//
// Expected values: greedy continuations come from the same model run one request at a time through an
// engine with no prefix cache and no chunking, which in turn must equal transformers' greedy continuation
// (reference.json); Recommend scores come from ScoreReference (one forward over context + candidate with
// the runner directly, no engine) and, for continuations of a reference prompt, from transformers' logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "engine_model_util.h"

namespace inferd::engine_model {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class EngineModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = ModelsDir() + "/" + GetParam();
    if (!fs::exists(dir_ + "/reference.json")) GTEST_SKIP() << dir_ << " not generated";
    ref_ = LoadReference(dir_);
    vocab_ = LoadRunner(dir_)->VocabSize();
  }

  // Baseline: one request at a time, whole prompt in one chunk, no prefix cache.
  EngineConfig AloneConfig() const {
    EngineConfig c;
    c.block_size = 16;
    c.num_blocks = 64;
    c.prefix_caching = false;
    return c;
  }

  std::string dir_;
  Reference ref_;
  int32_t vocab_ = 0;
};

GenerateRequest Greedy(std::vector<TokenId> prompt, int32_t max_tokens, RequestClass cls = RequestClass::kComplex) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.cls = cls;
  return r;
}

// Submits every request from `threads` threads (request i on thread i % threads), each pausing a seeded
// 0-15 ms before each submit, then collects every stream.
template <typename Req>
std::vector<Collected> RunConcurrently(Engine& engine, const std::vector<Req>& reqs, int threads, uint32_t seed) {
  std::vector<std::shared_ptr<RequestStream>> streams(reqs.size());
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(seed + static_cast<uint32_t>(t));
      for (size_t i = static_cast<size_t>(t); i < reqs.size(); i += static_cast<size_t>(threads)) {
        std::this_thread::sleep_for(milliseconds(rng() % 16));
        SubmitResult r = engine.Submit(reqs[i]);
        ASSERT_TRUE(r.status.ok()) << r.status.ToString();
        streams[i] = r.stream;
      }
    });
  }
  for (auto& th : ts) th.join();
  std::vector<Collected> out;
  for (auto& s : streams) {
    if (s == nullptr) {
      out.emplace_back();
      continue;
    }
    out.push_back(Collect(*s));
  }
  return out;
}

// Greedy (and seeded-sampling) requests submitted together, with chunked prefill, shared prefixes and small
// blocks, produce exactly what each produces alone; alone, the reference prompts give transformers' tokens.
TEST_P(EngineModelTest, ConcurrentRequestsMatchOneAtATime) {
  std::vector<GenerateRequest> reqs;
  for (size_t i = 0; i < ref_.prompts.size(); ++i) {
    reqs.push_back(Greedy(ref_.prompts[i], static_cast<int32_t>(ref_.greedy[i].size()),
                          i % 2 ? RequestClass::kRealtime : RequestClass::kComplex));
  }
  const std::vector<TokenId>& longest = ref_.prompts.back();
  for (int j = 0; j < 12; ++j) {
    // Prefixes of the longest prompt (prefix-cache hits across requests) with distinct tails.
    auto prompt = Concat(Slice(longest, 0, 8 + 4 * static_cast<size_t>(j)), Tokens(1 + j % 3, 100 + j, vocab_));
    reqs.push_back(
        Greedy(std::move(prompt), 6 + 2 * (j % 5), j % 3 ? RequestClass::kComplex : RequestClass::kRealtime));
  }
  for (int j = 0; j < 4; ++j) {
    GenerateRequest r = Greedy(Concat(ref_.prompts[2], Tokens(3, 200 + j, vocab_)), 12);
    r.sampling.temperature = 0.9f;
    r.sampling.top_p = 0.9f;
    r.sampling.top_k = 50;
    r.sampling.has_seed = true;
    r.sampling.seed = 1000 + static_cast<uint64_t>(j);
    reqs.push_back(r);
  }

  std::vector<Collected> alone;
  {
    auto engine = MakeEngine(dir_, AloneConfig());
    for (const auto& r : reqs) {
      alone.push_back(RunAlone(*engine, r));
      ASSERT_EQ(alone.back().code, StatusCode::kOk);
      ASSERT_EQ(alone.back().tokens.size(), static_cast<size_t>(r.max_tokens));
    }
  }
  for (size_t i = 0; i < ref_.prompts.size(); ++i) {
    EXPECT_EQ(alone[i].tokens, ref_.greedy[i]) << "prompt " << i << ": engine alone vs transformers";
  }

  EngineConfig cfg;
  cfg.block_size = 4;
  cfg.num_blocks = 1024;
  cfg.max_num_batched_tokens = 48;
  cfg.max_prefill_chunk_tokens = 20;
  auto engine = MakeEngine(dir_, cfg);
  const std::vector<Collected> together = RunConcurrently(*engine, reqs, 4, 7);
  ASSERT_EQ(together.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(together[i].finished) << "request " << i;
    EXPECT_EQ(together[i].code, StatusCode::kOk) << "request " << i;
    EXPECT_EQ(together[i].tokens, alone[i].tokens) << "request " << i;
    ASSERT_EQ(together[i].logprobs.size(), alone[i].logprobs.size()) << "request " << i;
    for (size_t k = 0; k < alone[i].logprobs.size(); ++k) {
      EXPECT_NEAR(together[i].logprobs[k], alone[i].logprobs[k], kScoreTolPerToken)
          << "request " << i << " token " << k;
    }
  }
  const EngineStats s = engine->LastStats();
  EXPECT_GT(s.prefix_hit_tokens_total, 0u) << "shared prefixes were meant to hit the prefix cache";
  EXPECT_TRUE(WaitPoolFull(*engine));
}

struct RecommendCase {
  RecommendRequest request;
  // Candidates [0, exact) continue the reference prompt the context was cut from: transformers scores them.
  size_t exact = 0;
  size_t prompt_index = 0;
};

std::vector<RecommendCase> RecommendCases(const Reference& ref, int32_t vocab) {
  std::vector<RecommendCase> cases;
  const std::vector<TokenId>& p3 = ref.prompts.back();
  {
    RecommendCase c;
    c.request.context = Slice(p3, 0, 64);
    c.request.candidates = {Slice(p3, 64, 65), Slice(p3, 64, 67), Slice(p3, 64, 70)};
    for (int k = 0; k < 3; ++k) c.request.candidates.push_back(Tokens(2 + 3 * k, 300 + k, vocab));
    c.exact = 3;
    c.prompt_index = ref.prompts.size() - 1;
    cases.push_back(c);
  }
  {
    RecommendCase c;  // same context as the first: shares its blocks through the prefix cache
    c.request.context = Slice(p3, 0, 64);
    for (int k = 0; k < 8; ++k) c.request.candidates.push_back(Tokens(4 + k % 5, 310 + k, vocab));
    c.request.top_k = 3;
    c.request.rank_by = ScoreBy::kSumLogprob;
    cases.push_back(c);
  }
  {
    RecommendCase c;  // context shorter than one block: no shared context sequence
    c.request.context = ref.prompts[1];
    for (int k = 0; k < 5; ++k) c.request.candidates.push_back(Tokens(1 + k % 3, 320 + k, vocab));
    cases.push_back(c);
  }
  {
    RecommendCase c;
    c.request.context = ref.prompts[2];
    for (int k = 0; k < 10; ++k) c.request.candidates.push_back(Tokens(1 + k % 6, 330 + k, vocab));
    c.request.top_k = 4;
    cases.push_back(c);
  }
  {
    RecommendCase c;  // exactly one block of context
    c.request.context = Slice(p3, 0, 16);
    for (int k = 0; k < 4; ++k) c.request.candidates.push_back(Tokens(3, 340 + k, vocab));
    c.request.rank_by = ScoreBy::kSumLogprob;
    cases.push_back(c);
  }
  {
    RecommendCase c;  // one-token context
    c.request.context = ref.prompts[0];
    for (int k = 0; k < 3; ++k) c.request.candidates.push_back(Tokens(2 + k, 350 + k, vocab));
    cases.push_back(c);
  }
  return cases;
}

// Recommend alone and under concurrency (with other Recommends sharing contexts and Generates running)
// scores every candidate as one forward over context + candidate does; continuations of a reference
// prompt also match transformers' log-probabilities.
TEST_P(EngineModelTest, RecommendScoresMatchOneAtATimeScoring) {
  ScoreReference reference(dir_);
  const std::vector<RecommendCase> cases = RecommendCases(ref_, vocab_);

  // The reference itself against transformers, where transformers has the logits. Tolerance: fp32 logits
  // agree to 1e-4 of max|logit| (model_test), so log-probabilities to a few 1e-4.
  for (const RecommendCase& c : cases) {
    if (c.exact == 0) continue;
    const Npy logits = ReadNpy(ref_.logits_files[c.prompt_index]);
    const int64_t v = logits.shape[1];
    const auto& prompt = ref_.prompts[c.prompt_index];
    for (size_t i = 0; i < c.exact; ++i) {
      const auto& cand = c.request.candidates[i];
      double want = 0.0;
      for (size_t k = 0; k < cand.size(); ++k) {
        const size_t pos = c.request.context.size() - 1 + k;
        ASSERT_EQ(prompt[pos + 1], cand[k]);
        const float* row = logits.data.data() + static_cast<int64_t>(pos) * v;
        const double m = *std::max_element(row, row + v);
        double sum = 0.0;
        for (int64_t t = 0; t < v; ++t) sum += std::exp(static_cast<double>(row[t]) - m);
        want += static_cast<double>(row[cand[k]]) - m - std::log(sum);
      }
      EXPECT_NEAR(reference.Sum(c.request.context, cand), want, 1e-3 * static_cast<double>(cand.size()))
          << "candidate " << i << " vs transformers";
    }
  }

  double max_diff_alone = 0.0, max_diff_concurrent = 0.0;
  {
    auto engine = MakeEngine(dir_, EngineConfig{});
    for (size_t i = 0; i < cases.size(); ++i) {
      const Collected got = RunAlone(*engine, cases[i].request);
      ASSERT_EQ(got.code, StatusCode::kOk) << "case " << i;
      EXPECT_EQ(got.finish_reason, FinishReason::kScored);
      ExpectRankedMatches(cases[i].request, got.ranked, reference, "alone case " + std::to_string(i), &max_diff_alone);
    }
    EXPECT_TRUE(WaitPoolFull(*engine));
  }

  EngineConfig cfg;
  cfg.block_size = 4;
  cfg.num_blocks = 512;
  cfg.max_num_batched_tokens = 32;
  cfg.max_prefill_chunk_tokens = 12;
  auto engine = MakeEngine(dir_, cfg);
  // Background Generates keep decodes in every step while the Recommends run.
  std::vector<std::shared_ptr<RequestStream>> background;
  for (int j = 0; j < 3; ++j) {
    SubmitResult r = engine->Submit(Greedy(Concat(ref_.prompts[2], Tokens(2, 400 + j, vocab_)), 24));
    ASSERT_TRUE(r.status.ok());
    background.push_back(r.stream);
  }
  std::vector<RecommendRequest> reqs;
  for (int rep = 0; rep < 2; ++rep) {
    for (const RecommendCase& c : cases) {
      RecommendRequest r = c.request;
      r.cls = rep == 0 ? RequestClass::kRealtime : RequestClass::kComplex;
      reqs.push_back(r);
    }
  }
  const std::vector<Collected> got = RunConcurrently(*engine, reqs, 3, 11);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(got[i].finished) << "request " << i;
    ASSERT_EQ(got[i].code, StatusCode::kOk) << "request " << i;
    ExpectRankedMatches(reqs[i], got[i].ranked, reference, "concurrent request " + std::to_string(i),
                        &max_diff_concurrent);
  }
  std::printf("[%s] max |mean log-prob - reference|: alone %.3g, concurrent %.3g (tolerance %.3g)\n",
              GetParam().c_str(), max_diff_alone, max_diff_concurrent, kScoreTolPerToken);
  for (auto& s : background) EXPECT_EQ(Collect(*s).code, StatusCode::kOk);
  EXPECT_GT(engine->LastStats().prefix_hit_tokens_total, 0u);
  EXPECT_TRUE(WaitPoolFull(*engine));
}

// A KV pool far too small for the offered load forces preemption by recompute (complex work preempted by
// realtime arrivals and by older complex work). Resumed sequences produce the same tokens, Recommends
// the same scores, and the pool ends exactly full.
TEST_P(EngineModelTest, PreemptedSequencesResumeWithTheSameTokens) {
  std::vector<GenerateRequest> complex;
  complex.push_back(Greedy(ref_.prompts[1], 32));
  complex.push_back(Greedy(ref_.prompts[2], 32));
  for (int j = 0; j < 6; ++j) {
    complex.push_back(
        Greedy(Concat(Slice(ref_.prompts.back(), 0, 10 + 8 * static_cast<size_t>(j)), Tokens(2, 500 + j, vocab_)),
               20 + 2 * j));
  }
  std::vector<GenerateRequest> realtime;
  for (int j = 0; j < 3; ++j) {
    realtime.push_back(Greedy(Concat(ref_.prompts[1], Tokens(4, 520 + j, vocab_)), 8, RequestClass::kRealtime));
  }
  std::vector<RecommendRequest> recs;
  for (int j = 0; j < 3; ++j) {
    RecommendRequest r;
    r.context = Concat(Slice(ref_.prompts.back(), 0, 20), Tokens(3, 540 + j, vocab_));
    for (int k = 0; k < 5; ++k) r.candidates.push_back(Tokens(2 + k, 550 + 10 * j + k, vocab_));
    recs.push_back(r);
  }

  std::vector<Collected> alone_complex, alone_realtime;
  {
    auto engine = MakeEngine(dir_, AloneConfig());
    for (const auto& r : complex) alone_complex.push_back(RunAlone(*engine, r));
    for (const auto& r : realtime) alone_realtime.push_back(RunAlone(*engine, r));
  }
  EXPECT_EQ(alone_complex[0].tokens, ref_.greedy[1]);
  EXPECT_EQ(alone_complex[1].tokens, ref_.greedy[2]);

  EngineConfig cfg;
  cfg.block_size = 4;
  cfg.num_blocks = 40;  // 160 tokens: about two of the longest sequences (72 tokens each) at once
  cfg.max_num_batched_tokens = 64;
  cfg.max_prefill_chunk_tokens = 32;
  auto engine = MakeEngine(dir_, cfg);
  std::atomic<uint64_t> preemptions{0};
  engine->SetStatsCallback([&](const EngineStats& s) { preemptions.store(s.preemptions_total); });

  std::vector<std::shared_ptr<RequestStream>> cs, rs, recs_s;
  for (const auto& r : complex) {
    SubmitResult sr = engine->Submit(r);
    ASSERT_TRUE(sr.status.ok()) << sr.status.ToString();
    cs.push_back(sr.stream);
  }
  // Realtime work arrives once the complex work holds the pool.
  TokenDelta first_delta;
  ASSERT_EQ(cs[0]->Read(&first_delta, std::chrono::seconds(60)), RequestStream::ReadResult::kDelta);
  for (size_t j = 0; j < realtime.size(); ++j) {
    SubmitResult sr = engine->Submit(realtime[j]);
    ASSERT_TRUE(sr.status.ok()) << sr.status.ToString();
    rs.push_back(sr.stream);
    sr = engine->Submit(recs[j]);
    ASSERT_TRUE(sr.status.ok()) << sr.status.ToString();
    recs_s.push_back(sr.stream);
  }
  for (size_t i = 0; i < cs.size(); ++i) {
    Collected c = Collect(*cs[i]);
    ASSERT_TRUE(c.finished);
    if (i == 0) c.tokens.insert(c.tokens.begin(), first_delta.token_ids.begin(), first_delta.token_ids.end());
    EXPECT_EQ(c.code, StatusCode::kOk) << "complex " << i;
    EXPECT_EQ(c.tokens, alone_complex[i].tokens) << "complex " << i;
  }
  for (size_t i = 0; i < rs.size(); ++i) {
    const Collected c = Collect(*rs[i]);
    EXPECT_EQ(c.code, StatusCode::kOk);
    EXPECT_EQ(c.tokens, alone_realtime[i].tokens) << "realtime " << i;
  }
  ScoreReference reference(dir_);
  for (size_t i = 0; i < recs_s.size(); ++i) {
    const Collected c = Collect(*recs_s[i]);
    ASSERT_EQ(c.code, StatusCode::kOk);
    ExpectRankedMatches(recs[i], c.ranked, reference, "recommend " + std::to_string(i));
  }
  EXPECT_TRUE(WaitPoolFull(*engine));
  EXPECT_GT(preemptions.load(), 0u) << "the pool was sized to force preemption";
  std::printf("[%s] preemptions: %llu\n", GetParam().c_str(), static_cast<unsigned long long>(preemptions.load()));
}

// Drain right after Submit finishes the in-flight work instead of returning at once. Regression: the loop
// used to look idle between a Submit and its wake-up, so Drain returned with the request unfinished
// (about one run in ten of tests/engine's DrainFinishesInFlightThenRefuses on a busy 2-core machine).
TEST_P(EngineModelTest, DrainRightAfterSubmitFinishesInFlightWork) {
  const GenerateRequest req = Greedy(ref_.prompts[1], 4);
  std::vector<TokenId> want;
  {
    auto engine = MakeEngine(dir_, AloneConfig());
    want = RunAlone(*engine, req).tokens;
  }
  for (int i = 0; i < 20; ++i) {
    auto engine = MakeEngine(dir_, AloneConfig());
    SubmitResult r = engine->Submit(req);
    ASSERT_TRUE(r.status.ok());
    engine->Drain(std::chrono::seconds(30));
    ASSERT_TRUE(r.stream->finished()) << "iteration " << i;
    const Collected c = CollectFinished(*r.stream);
    EXPECT_EQ(c.code, StatusCode::kOk);
    EXPECT_EQ(c.tokens, want);
    EXPECT_EQ(engine->Submit(req).status.code(), StatusCode::kUnavailable);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, EngineModelTest,
                         ::testing::Values("llama_gqa", "llama_mha_tied", "deepseek_v2_qlora_greedy",
                                           "deepseek_v3_noaux"));

}  // namespace
}  // namespace inferd::engine_model
