// Shared helpers of the engine + real model tests: the tiny checkpoints of tools/make_test_checkpoints.py,
// engines over a ModelExecutor, stream collection and the one-at-a-time scoring reference.
//
// Ownership: every Engine / EngineCore made here owns its ModelRunner (through ModelExecutor).
// ScoreReference owns a separate runner of the same checkpoint, so reference scoring never shares a KV pool
// (or a prefix cache) with the engine under test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine_core.h"
#include "inferd/engine.h"
#include "inferd/model_runner.h"

namespace inferd::engine_model {

// INFERD_TESTMODELS, else INFERD_TESTMODELS_DEFAULT (set by ctest), else ./testmodels.
std::string ModelsDir();

// float32 .npy, C order.
struct Npy {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
Npy ReadNpy(const std::string& path);

// reference.json of one variant: prompts (lengths 1, 7, 40, 150) and transformers' 32-token greedy
// continuations (EOS not a stop token).
struct Reference {
  std::vector<std::vector<TokenId>> prompts;
  std::vector<std::vector<TokenId>> greedy;
  std::vector<std::string> logits_files;  // ref_logits_<i>.npy: [len(prompts[i]), vocab] transformers logits
};
Reference LoadReference(const std::string& dir);

struct EngineConfig {
  int32_t block_size = 16;
  int32_t num_blocks = 256;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_prefill_chunk_tokens = 512;
  int32_t max_running = 256;
  int32_t max_waiting_realtime = 256;
  int32_t max_waiting_complex = 1024;
  bool prefix_caching = true;
  bool model_eos = false;  // put the checkpoint's EOS ids into SchedulerOptions::eos_token_ids
};

// fp32 runner, one intra-op thread, pool deferred to the engine (kv_num_blocks = 0).
std::unique_ptr<worker::ModelRunner> LoadRunner(const std::string& dir, int64_t kv_num_blocks = 0,
                                                int32_t block_size = 16);
EngineOptions MakeOptions(const EngineConfig& cfg, const worker::ModelRunner& runner);
std::unique_ptr<Engine> MakeEngine(const std::string& dir, const EngineConfig& cfg);
// Init() already called; `now` drives deadlines and timings.
std::unique_ptr<engine::EngineCore> MakeCore(const std::string& dir, const EngineConfig& cfg,
                                             std::function<TimePoint()> now);

// Everything one request produced.
struct Collected {
  StatusCode code = StatusCode::kUnknown;
  FinishReason finish_reason = FinishReason::kNone;
  std::vector<TokenId> tokens;
  std::vector<float> logprobs;
  std::vector<ScoredCandidate> ranked;
  bool finished = false;
};

// Reads every delta until the stream finishes (or `timeout` passes without progress: finished = false).
Collected Collect(RequestStream& stream, std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Reads what is there without blocking; only valid once stream.finished().
Collected CollectFinished(RequestStream& stream);

// Submits and waits: the one-at-a-time baseline.
Collected RunAlone(Engine& engine, const GenerateRequest& request);
Collected RunAlone(Engine& engine, const RecommendRequest& request);

// Waits until the engine holds no request and every KV block is free again; false after `timeout`.
bool WaitPoolFull(Engine& engine, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// One-at-a-time scoring with the runner directly: context + candidate in one chunk, the model's
// logits at the candidate positions, log-softmax in double. Memoised per (context, candidate).
class ScoreReference {
 public:
  explicit ScoreReference(const std::string& dir);
  // log p(candidate[k] | context, candidate[0..k)) for every k.
  const std::vector<double>& TokenLogprobs(const std::vector<TokenId>& context, const std::vector<TokenId>& candidate);
  double Sum(const std::vector<TokenId>& context, const std::vector<TokenId>& candidate);
  double Mean(const std::vector<TokenId>& context, const std::vector<TokenId>& candidate);

 private:
  std::unique_ptr<worker::ModelRunner> runner_;
  std::map<std::pair<std::vector<TokenId>, std::vector<TokenId>>, std::vector<double>> memo_;
};

// Per-token tolerance on log-probabilities between two fp32 computations of the same scores that differ
// only in batching, chunking and KV sharing (different matmul shapes and kernels, so different rounding).
// Observed differences on the tiny checkpoints are about 1e-6 per token; 1e-4 leaves room for other CPUs.
inline constexpr double kScoreTolPerToken = 1e-4;

// Checks a Recommend's ranked list against the reference scores: every entry's sum and mean within
// tolerance, and the candidate at rank p scores (by the reference) within tolerance of the p-th best
// reference score (so the order is right up to near-ties, and top_k holds the right candidates).
// Raises *max_mean_diff (when given) to the largest |mean log-prob difference| seen.
void ExpectRankedMatches(const RecommendRequest& request, const std::vector<ScoredCandidate>& ranked,
                         ScoreReference& reference, const std::string& what, double* max_mean_diff = nullptr);

// Deterministic token ids in [0, vocab): `n` of them, varied by `salt`.
std::vector<TokenId> Tokens(int32_t n, uint64_t salt, int32_t vocab);
std::vector<TokenId> Concat(std::vector<TokenId> a, const std::vector<TokenId>& b);
std::vector<TokenId> Slice(const std::vector<TokenId>& v, size_t begin, size_t end);

}  // namespace inferd::engine_model
