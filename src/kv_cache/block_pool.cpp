#include "kv_cache/block_pool.h"

#include <algorithm>
#include <cassert>

namespace inferd::kv_cache {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t ChainBlockHash(uint64_t parent_hash, std::span<const TokenId> block_tokens) {
  uint64_t h = Mix(parent_hash ^ 0x2545f4914f6cdd1dULL);
  for (TokenId t : block_tokens) {
    h = Mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ULL));
  }
  return h == kNoParentHash ? h + 1 : h;
}

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size, bool enable_caching)
    : block_size_(block_size),
      enable_caching_(enable_caching),
      ref_count_(num_blocks, 0),
      lru_prev_(num_blocks, -1),
      lru_next_(num_blocks, -1),
      num_free_(num_blocks),
      has_hash_(num_blocks, 0),
      hash_(num_blocks, 0),
      parent_hash_(num_blocks, 0),
      tokens_(enable_caching ? static_cast<size_t>(num_blocks) * block_size : 0, 0) {
  uncached_free_.reserve(num_blocks);
  // Block 0 is handed out first.
  for (BlockId b = num_blocks - 1; b >= 0; --b) uncached_free_.push_back(b);
}

void BlockPool::Allocate(int32_t n, std::vector<BlockId>* out) {
  assert(n <= num_free_);
  for (int32_t i = 0; i < n; ++i) {
    BlockId b;
    if (!uncached_free_.empty()) {
      b = uncached_free_.back();
      uncached_free_.pop_back();
    } else {
      b = lru_head_;
      assert(b >= 0);
      LruRemove(b);
      Evict(b);
    }
    ref_count_[b] = 1;
    --num_free_;
    out->push_back(b);
  }
}

BlockId BlockPool::Lookup(uint64_t hash, uint64_t parent_hash, std::span<const TokenId> block_tokens) const {
  if (!enable_caching_) return -1;
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const BlockId b = it->second;
  if (parent_hash_[b] != parent_hash) return -1;
  const TokenId* stored = &tokens_[static_cast<size_t>(b) * block_size_];
  if (!std::equal(block_tokens.begin(), block_tokens.end(), stored)) return -1;
  return b;
}

void BlockPool::Acquire(BlockId block) {
  if (ref_count_[block] == 0) {
    // Only cached blocks can be acquired while free (found through Lookup).
    assert(has_hash_[block]);
    LruRemove(block);
    --num_free_;
  }
  ++ref_count_[block];
}

void BlockPool::Release(BlockId block) {
  assert(ref_count_[block] > 0);
  if (--ref_count_[block] > 0) return;
  ++num_free_;
  if (has_hash_[block]) {
    LruPushBack(block);
  } else {
    uncached_free_.push_back(block);
  }
}

void BlockPool::Register(BlockId block, uint64_t hash, uint64_t parent_hash,
                         std::span<const TokenId> block_tokens) {
  if (!enable_caching_ || has_hash_[block]) return;
  assert(static_cast<int32_t>(block_tokens.size()) == block_size_);
  if (!by_hash_.emplace(hash, block).second) return;
  has_hash_[block] = 1;
  hash_[block] = hash;
  parent_hash_[block] = parent_hash;
  std::copy(block_tokens.begin(), block_tokens.end(), tokens_.begin() + static_cast<size_t>(block) * block_size_);
}

void BlockPool::LruRemove(BlockId block) {
  const BlockId prev = lru_prev_[block];
  const BlockId next = lru_next_[block];
  (prev >= 0 ? lru_next_[prev] : lru_head_) = next;
  (next >= 0 ? lru_prev_[next] : lru_tail_) = prev;
  lru_prev_[block] = lru_next_[block] = -1;
  --lru_size_;
}

void BlockPool::LruPushBack(BlockId block) {
  lru_prev_[block] = lru_tail_;
  lru_next_[block] = -1;
  (lru_tail_ >= 0 ? lru_next_[lru_tail_] : lru_head_) = block;
  lru_tail_ = block;
  ++lru_size_;
}

void BlockPool::Evict(BlockId block) {
  by_hash_.erase(hash_[block]);
  has_hash_[block] = 0;
}

}  // namespace inferd::kv_cache
