// BlockPool: the fixed set of physical KV blocks, their reference counts and the prefix-cache index.
// Single-threaded: owned by the scheduler (through KvCacheManager) on the engine thread.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "inferd/batch.h"

namespace inferd::kv_cache {

inline constexpr uint64_t kNoParentHash = 0x9e3779b97f4a7c15ULL;

// Hash of one full block chained to its parent's hash (kNoParentHash for the first block), so equal
// prefixes give equal hashes and a block's hash identifies its whole prefix.
uint64_t ChainBlockHash(uint64_t parent_hash, std::span<const TokenId> block_tokens);

// Invariants:
//  - every block is either referenced (ref_count > 0) or free; free blocks are either uncached
//    (no hash, kept in a stack) or cached (hash registered, kept in an LRU list, oldest first);
//  - a cached block stays findable by hash until it is evicted for reuse;
//  - NumFree() == number of blocks with ref_count == 0 (cached or not).
class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size, bool enable_caching);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_count_.size()); }
  int32_t block_size() const { return block_size_; }
  int32_t NumFree() const { return num_free_; }
  int32_t NumCachedFree() const { return lru_size_; }
  int32_t RefCount(BlockId block) const { return ref_count_[block]; }
  bool IsCached(BlockId block) const { return has_hash_[block]; }

  // Takes `n` blocks with ref_count 1: uncached free blocks first, then evicts the least recently
  // used cached ones. Precondition: n <= NumFree(). Appends to *out.
  void Allocate(int32_t n, std::vector<BlockId>* out);

  // The cached block holding exactly `block_tokens` after the prefix `parent_hash` identifies, or -1.
  BlockId Lookup(uint64_t hash, uint64_t parent_hash, std::span<const TokenId> block_tokens) const;

  // Adds a reference to a (possibly free, cached) block; a free block leaves the LRU list.
  void Acquire(BlockId block);

  // Drops a reference; at zero the block becomes free (cached blocks go to the LRU tail).
  void Release(BlockId block);

  // Marks a referenced full block as holding `block_tokens` after the prefix `parent_hash`.
  // No-op when caching is off, the block is already cached, or another block holds this hash.
  void Register(BlockId block, uint64_t hash, uint64_t parent_hash, std::span<const TokenId> block_tokens);

 private:
  void LruRemove(BlockId block);
  void LruPushBack(BlockId block);
  void Evict(BlockId block);

  int32_t block_size_;
  bool enable_caching_;
  std::vector<int32_t> ref_count_;
  std::vector<BlockId> uncached_free_;  // stack
  // Intrusive LRU list of cached free blocks; -1 terminates.
  std::vector<BlockId> lru_prev_;
  std::vector<BlockId> lru_next_;
  BlockId lru_head_ = -1;
  BlockId lru_tail_ = -1;
  int32_t lru_size_ = 0;
  int32_t num_free_ = 0;
  // Per-block cache identity, valid when has_hash_[b].
  std::vector<char> has_hash_;
  std::vector<uint64_t> hash_;
  std::vector<uint64_t> parent_hash_;
  std::vector<TokenId> tokens_;  // block_size entries per block
  std::unordered_map<uint64_t, BlockId> by_hash_;
};

}  // namespace inferd::kv_cache
