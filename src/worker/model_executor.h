// ModelExecutor: the engine's Executor backed by a ModelRunner (the real model). The engine sizes the
// KV pool from CacheLayout() and its memory budget, then calls InitializeCache once.
#pragma once

#include <memory>
#include <string>

#include "inferd/executor.h"
#include "inferd/model_runner.h"

namespace inferd::worker {

class ModelExecutor final : public Executor {
 public:
  // Owns `runner`, which must have been loaded with kv_num_blocks = 0 (or will have its pool replaced).
  explicit ModelExecutor(std::unique_ptr<ModelRunner> runner) : runner_(std::move(runner)) {}

  KvCacheLayout CacheLayout() const override { return runner_->CacheLayout(); }
  Status InitializeCache(int32_t num_blocks, int32_t block_size) override {
    return runner_->AllocateCache(num_blocks, block_size);
  }
  StatusOr<StepResult> Execute(const ForwardBatch& batch) override { return runner_->Execute(batch); }

  ModelRunner& runner() { return *runner_; }

 private:
  std::unique_ptr<ModelRunner> runner_;
};

}  // namespace inferd::worker
