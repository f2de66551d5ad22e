// KvCacheManager: per-sequence block tables over a BlockPool, plus prefix-cache lookups and stats.
// Single-threaded (engine thread). The scheduler owns one; the worker only ever sees block ids.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "inferd/batch.h"
#include "kv_cache/block_pool.h"

namespace inferd::kv_cache {

// Result of a prefix lookup: the cached blocks that hold tokens [0, num_tokens) of a sequence.
struct PrefixMatch {
  std::vector<BlockId> blocks;
  std::vector<uint64_t> hashes;  // chained hash of each matched block
  int32_t num_tokens = 0;        // blocks.size() * block_size
};

// Token counts, cumulative since construction (vLLM convention: queries and hits are in tokens).
struct PrefixCacheStats {
  uint64_t queried_tokens = 0;
  uint64_t hit_tokens = 0;
  uint64_t queries = 0;  // sequences looked up
  uint64_t hits = 0;     // sequences that matched at least one block
};

class KvCacheManager {
 public:
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);

  int32_t block_size() const { return pool_.block_size(); }
  int32_t num_blocks() const { return pool_.num_blocks(); }
  int32_t NumFreeBlocks() const { return pool_.NumFree(); }
  // Fraction of blocks referenced by live sequences (cached free blocks count as free), 0..1.
  double Usage() const;
  const PrefixCacheStats& prefix_stats() const { return stats_; }
  const BlockPool& pool() const { return pool_; }

  static int32_t BlocksFor(int32_t num_tokens, int32_t block_size) {
    return (num_tokens + block_size - 1) / block_size;
  }

  // Longest run of cached full blocks that begins `tokens`, covering at most max_tokens tokens.
  // No side effects.
  PrefixMatch FindCachedPrefix(std::span<const TokenId> tokens, int32_t max_tokens) const;

  // Blocks that Allocate/Grow would take from the free pool (fresh blocks plus free cached hits).
  int32_t FreeBlocksNeeded(SeqId seq, const PrefixMatch& match, int32_t num_tokens) const;

  // Starts the block table of a sequence that has none: the matched blocks (shared), then fresh
  // blocks up to num_tokens. Returns false and changes nothing when the pool is short.
  // Counts a prefix-cache query of `query_tokens` tokens.
  bool Allocate(SeqId seq, const PrefixMatch& match, int32_t num_tokens, int32_t query_tokens);

  // Extends an existing table to cover num_tokens. False and no change when the pool is short.
  bool Grow(SeqId seq, int32_t num_tokens);

  // Registers the full blocks among tokens [0, num_computed) in the prefix cache.
  // `tokens` is the sequence's full token list (at least num_computed long).
  void CommitComputed(SeqId seq, std::span<const TokenId> tokens, int32_t num_computed);

  // Releases every block of the sequence (tail first, so shared heads stay cached longest).
  void Free(SeqId seq);

  bool Has(SeqId seq) const { return tables_.count(seq) != 0; }
  // Empty when the sequence holds no blocks.
  const std::vector<BlockId>& Blocks(SeqId seq) const;
  int32_t NumSequences() const { return static_cast<int32_t>(tables_.size()); }

 private:
  struct Table {
    std::vector<BlockId> blocks;
    std::vector<uint64_t> hashes;  // hashes of blocks[0, hashes.size()), all full and registered
  };

  BlockPool pool_;
  bool enable_prefix_caching_;
  std::unordered_map<SeqId, Table> tables_;
  PrefixCacheStats stats_;
};

}  // namespace inferd::kv_cache
