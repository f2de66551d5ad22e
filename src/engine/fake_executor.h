// Deterministic stand-ins for the worker and the tokenizer, for tests, benchmarks and torch-free
// daemon runs. The fake executor keeps a real paged "KV cache" of token ids, so a wrong block table,
// a bad prefix-cache hit or a lost block changes its output.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "inferd/batch.h"
#include "inferd/engine.h"
#include "inferd/executor.h"

namespace inferd::engine {

struct FakeExecutorOptions {
  int32_t vocab_size = 1000;
  std::chrono::microseconds step_delay{0};  // sleep per Execute, to mimic a model
  std::chrono::nanoseconds token_delay{0};  // busy wait per fed token, to mimic a model's per-token cost
  int64_t fail_at_step = -1;                // Execute number (0-based) that returns INTERNAL
  int64_t throw_at_step = -1;               // Execute number (0-based) that throws std::runtime_error
  KvCacheLayout layout{KvCacheKind::kMha, 1, 1, 8, 0, 0, 2};
};

// Next token after positions [0, p] = Hash(tokens[0..p]) % vocab_size, read back from the paged
// cache, so the output depends only on the sequence's history, never on batching or preemption.
class FakeExecutor : public Executor {
 public:
  explicit FakeExecutor(FakeExecutorOptions options = {}) : options_(options) {}

  KvCacheLayout CacheLayout() const override { return options_.layout; }
  Status InitializeCache(int32_t num_blocks, int32_t block_size) override;
  StatusOr<StepResult> Execute(const ForwardBatch& batch) override;

  int64_t num_steps() const { return steps_; }
  int64_t num_tokens() const { return tokens_; }
  const std::vector<SeqId>& released() const { return released_; }

  // References for tests: what the model "says" after `history` (non-empty).
  static uint64_t HistoryHash(std::span<const TokenId> history);
  static TokenLogprob NextToken(uint64_t history_hash, int32_t vocab_size);
  static float ScoreLogprob(uint64_t history_hash, TokenId target);
  static uint64_t Extend(uint64_t hash, TokenId token);
  static constexpr uint64_t kEmptyHash = 0x1234567890abcdefULL;
  // The first n tokens greedy generation yields after `prompt`.
  static std::vector<TokenId> ReferenceGenerate(std::span<const TokenId> prompt, int32_t n, int32_t vocab_size);
  // Sum of log p(candidate[j] | context, candidate[<j]).
  static double ReferenceScore(std::span<const TokenId> context, std::span<const TokenId> candidate);

 private:
  FakeExecutorOptions options_;
  int32_t num_blocks_ = 0;
  int32_t block_size_ = 0;
  std::vector<TokenId> slots_;  // num_blocks * block_size; -1 = never written
  int64_t steps_ = 0;
  int64_t tokens_ = 0;
  std::vector<SeqId> released_;
};

// Renders token t as the letter 'a' + t % 26; matches stop strings on that text.
class FakeTextStream : public TextStream {
 public:
  explicit FakeTextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {}
  Delta Push(TokenId token) override;
  std::string Flush() override;
  static std::string Render(std::span<const TokenId> tokens);

 private:
  std::vector<std::string> stop_;
  std::string held_;
};

TextStreamFactory FakeTextStreamFactory();

}  // namespace inferd::engine
