#include "kv_cache/kv_cache_options.h"

#include <string>

namespace inferd {

StatusOr<int32_t> ComputeNumBlocks(const KvCacheOptions& options, const KvCacheLayout& layout) {
  if (options.block_size <= 0) return InvalidArgument("kv_cache.block_size: must be > 0");
  if (options.num_blocks_override > 0) return options.num_blocks_override;
  const int64_t per_token = layout.BytesPerToken();
  if (per_token <= 0) return InvalidArgument("kv_cache: model reported an empty KV layout");
  const int64_t per_block = per_token * options.block_size;
  const int64_t blocks = options.memory_budget_bytes / per_block;
  if (blocks < 1) {
    return InvalidArgument("kv_cache.memory_budget_bytes: " + std::to_string(options.memory_budget_bytes) +
                           " is below one block (" + std::to_string(per_block) + " bytes)");
  }
  if (blocks > INT32_MAX) return static_cast<int32_t>(INT32_MAX);
  return static_cast<int32_t>(blocks);
}

}  // namespace inferd
