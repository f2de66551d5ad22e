// Tunables of the paged KV cache. config/ fills this from YAML; defaults are documented per field.
#pragma once

#include <cstdint>

#include "inferd/batch.h"
#include "inferd/status.h"

namespace inferd {

struct KvCacheOptions {
  // Tokens per block. Same for both layouts (MHA/GQA and MLA); only bytes per block differ.
  int32_t block_size = 16;
  // Bytes the pool may use on the device. The block count is budget / (block_size * bytes per token).
  int64_t memory_budget_bytes = int64_t{4} << 30;
  // When > 0, overrides the budget with an exact block count (tests, benchmarks).
  int32_t num_blocks_override = 0;
  // Share full blocks across requests through chained block hashes.
  bool enable_prefix_caching = true;
};

// Number of blocks the options allow for `layout`. INVALID_ARGUMENT when the result would be < 1.
StatusOr<int32_t> ComputeNumBlocks(const KvCacheOptions& options, const KvCacheLayout& layout);

}  // namespace inferd
