#include "kv_cache/kv_cache_manager.h"

#include <cassert>

namespace inferd::kv_cache {

KvCacheManager::KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : pool_(num_blocks, block_size, enable_prefix_caching), enable_prefix_caching_(enable_prefix_caching) {}

double KvCacheManager::Usage() const {
  if (pool_.num_blocks() == 0) return 0.0;
  return 1.0 - static_cast<double>(pool_.NumFree()) / pool_.num_blocks();
}

PrefixMatch KvCacheManager::FindCachedPrefix(std::span<const TokenId> tokens, int32_t max_tokens) const {
  PrefixMatch match;
  if (!enable_prefix_caching_) return match;
  const int32_t bs = pool_.block_size();
  const int32_t limit = std::min<int32_t>(max_tokens, static_cast<int32_t>(tokens.size()));
  uint64_t parent = kNoParentHash;
  for (int32_t start = 0; start + bs <= limit; start += bs) {
    auto block_tokens = tokens.subspan(start, bs);
    const uint64_t h = ChainBlockHash(parent, block_tokens);
    const BlockId b = pool_.Lookup(h, parent, block_tokens);
    if (b < 0) break;
    match.blocks.push_back(b);
    match.hashes.push_back(h);
    parent = h;
  }
  match.num_tokens = static_cast<int32_t>(match.blocks.size()) * bs;
  return match;
}

int32_t KvCacheManager::FreeBlocksNeeded(SeqId seq, const PrefixMatch& match, int32_t num_tokens) const {
  const int32_t have = static_cast<int32_t>(Blocks(seq).size() + match.blocks.size());
  int32_t needed = std::max(0, BlocksFor(num_tokens, pool_.block_size()) - have);
  for (BlockId b : match.blocks) {
    if (pool_.RefCount(b) == 0) ++needed;
  }
  return needed;
}

bool KvCacheManager::Allocate(SeqId seq, const PrefixMatch& match, int32_t num_tokens, int32_t query_tokens) {
  assert(Blocks(seq).empty());
  if (FreeBlocksNeeded(seq, match, num_tokens) > pool_.NumFree()) return false;
  Table& t = tables_[seq];
  for (BlockId b : match.blocks) pool_.Acquire(b);
  t.blocks = match.blocks;
  t.hashes = match.hashes;
  const int32_t fresh = BlocksFor(num_tokens, pool_.block_size()) - static_cast<int32_t>(t.blocks.size());
  if (fresh > 0) pool_.Allocate(fresh, &t.blocks);
  if (enable_prefix_caching_) {
    ++stats_.queries;
    stats_.queried_tokens += static_cast<uint64_t>(query_tokens);
    if (match.num_tokens > 0) ++stats_.hits;
    stats_.hit_tokens += static_cast<uint64_t>(match.num_tokens);
  }
  return true;
}

bool KvCacheManager::Grow(SeqId seq, int32_t num_tokens) {
  auto it = tables_.find(seq);
  const int32_t have = it == tables_.end() ? 0 : static_cast<int32_t>(it->second.blocks.size());
  const int32_t fresh = BlocksFor(num_tokens, pool_.block_size()) - have;
  if (fresh <= 0) return true;
  if (fresh > pool_.NumFree()) return false;
  Table& t = it == tables_.end() ? tables_[seq] : it->second;
  pool_.Allocate(fresh, &t.blocks);
  return true;
}

void KvCacheManager::CommitComputed(SeqId seq, std::span<const TokenId> tokens, int32_t num_computed) {
  if (!enable_prefix_caching_) return;
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  Table& t = it->second;
  const int32_t bs = pool_.block_size();
  const int32_t full = std::min<int32_t>(num_computed / bs, static_cast<int32_t>(t.blocks.size()));
  while (static_cast<int32_t>(t.hashes.size()) < full) {
    const size_t i = t.hashes.size();
    const uint64_t parent = i == 0 ? kNoParentHash : t.hashes[i - 1];
    auto block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t h = ChainBlockHash(parent, block_tokens);
    pool_.Register(t.blocks[i], h, parent, block_tokens);
    t.hashes.push_back(h);
  }
}

void KvCacheManager::Free(SeqId seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  const auto& blocks = it->second.blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) pool_.Release(*b);
  tables_.erase(it);
}

const std::vector<BlockId>& KvCacheManager::Blocks(SeqId seq) const {
  static const std::vector<BlockId> kEmpty;
  auto it = tables_.find(seq);
  return it == tables_.end() ? kEmpty : it->second.blocks;
}

}  // namespace inferd::kv_cache
