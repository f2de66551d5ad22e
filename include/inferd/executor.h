// Executor: the narrow interface between the engine (scheduling) and the worker (model execution).
// The daemon plugs in the real worker; tests plug in a deterministic fake. Plain data only.
#pragma once

#include <cstdint>

#include "inferd/batch.h"
#include "inferd/status.h"

namespace inferd {

// Called only from the engine thread that owns it: InitializeCache once, then Execute per step.
class Executor {
 public:
  virtual ~Executor() = default;

  // Bytes one cached token costs, so the engine can size the pool from its memory budget.
  virtual KvCacheLayout CacheLayout() const = 0;

  // Allocates the paged KV cache: num_blocks blocks of block_size tokens each. Block ids in later
  // batches are in [0, num_blocks). Called once, before the first Execute.
  virtual Status InitializeCache(int32_t num_blocks, int32_t block_size) = 0;

  // Runs one step: writes KV for every chunk's tokens into its blocks, then samples / scores as asked.
  // Returns exactly one SequenceResult per chunk, in chunk order. A non-OK status fails every request
  // in the batch with INTERNAL; the engine keeps serving.
  virtual StatusOr<StepResult> Execute(const ForwardBatch& batch) = 0;
};

}  // namespace inferd
