#include "kv_cache/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

#include "kv_cache/kv_cache_options.h"

namespace inferd::kv_cache {
namespace {

std::vector<TokenId> Iota(int n, int start = 0) {
  std::vector<TokenId> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + i;
  return v;
}

TEST(BlockPoolTest, AllocateAndReleaseAll) {
  BlockPool pool(8, 4, true);
  EXPECT_EQ(pool.NumFree(), 8);
  std::vector<BlockId> got;
  pool.Allocate(8, &got);
  EXPECT_EQ(pool.NumFree(), 0);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, Iota(8));
  for (BlockId b : got) pool.Release(b);
  EXPECT_EQ(pool.NumFree(), 8);
}

TEST(BlockPoolTest, RefCountedSharing) {
  BlockPool pool(4, 4, true);
  std::vector<BlockId> got;
  pool.Allocate(1, &got);
  const BlockId b = got[0];
  pool.Acquire(b);
  EXPECT_EQ(pool.RefCount(b), 2);
  pool.Release(b);
  EXPECT_EQ(pool.NumFree(), 3);
  pool.Release(b);
  EXPECT_EQ(pool.NumFree(), 4);
}

TEST(BlockPoolTest, CachedBlockFoundAfterReleaseUntilEvicted) {
  BlockPool pool(2, 4, true);
  std::vector<BlockId> got;
  pool.Allocate(1, &got);
  const auto toks = Iota(4);
  const uint64_t h = ChainBlockHash(kNoParentHash, toks);
  pool.Register(got[0], h, kNoParentHash, toks);
  pool.Release(got[0]);
  EXPECT_EQ(pool.NumFree(), 2);
  EXPECT_EQ(pool.NumCachedFree(), 1);
  EXPECT_EQ(pool.Lookup(h, kNoParentHash, toks), got[0]);
  // Uncached blocks go first; the cached one survives one allocation.
  std::vector<BlockId> more;
  pool.Allocate(1, &more);
  EXPECT_NE(more[0], got[0]);
  EXPECT_EQ(pool.Lookup(h, kNoParentHash, toks), got[0]);
  pool.Allocate(1, &more);
  EXPECT_EQ(more[1], got[0]);
  EXPECT_EQ(pool.Lookup(h, kNoParentHash, toks), -1);
}

TEST(BlockPoolTest, EvictsLeastRecentlyUsed) {
  BlockPool pool(3, 2, true);
  std::vector<BlockId> got;
  pool.Allocate(3, &got);
  std::vector<uint64_t> hashes;
  for (int i = 0; i < 3; ++i) {
    const auto toks = Iota(2, 10 * i);
    hashes.push_back(ChainBlockHash(kNoParentHash, toks));
    pool.Register(got[i], hashes[i], kNoParentHash, toks);
  }
  pool.Release(got[1]);
  pool.Release(got[0]);
  pool.Release(got[2]);
  // Touch block 1 again: it becomes most recent when released.
  pool.Acquire(got[1]);
  pool.Release(got[1]);
  std::vector<BlockId> fresh;
  pool.Allocate(1, &fresh);
  EXPECT_EQ(fresh[0], got[0]);
  pool.Allocate(1, &fresh);
  EXPECT_EQ(fresh[1], got[2]);
  EXPECT_EQ(pool.Lookup(hashes[1], kNoParentHash, Iota(2, 10)), got[1]);
}

TEST(BlockPoolTest, LookupChecksParentAndTokens) {
  BlockPool pool(2, 2, true);
  std::vector<BlockId> got;
  pool.Allocate(1, &got);
  const auto toks = Iota(2);
  const uint64_t h = ChainBlockHash(kNoParentHash, toks);
  pool.Register(got[0], h, kNoParentHash, toks);
  EXPECT_EQ(pool.Lookup(h, 42, toks), -1);
  EXPECT_EQ(pool.Lookup(h, kNoParentHash, Iota(2, 1)), -1);
  EXPECT_NE(ChainBlockHash(1, toks), ChainBlockHash(2, toks));
}

TEST(BlockPoolTest, CachingOffNeverFinds) {
  BlockPool pool(2, 2, false);
  std::vector<BlockId> got;
  pool.Allocate(1, &got);
  const auto toks = Iota(2);
  const uint64_t h = ChainBlockHash(kNoParentHash, toks);
  pool.Register(got[0], h, kNoParentHash, toks);
  EXPECT_EQ(pool.Lookup(h, kNoParentHash, toks), -1);
}

TEST(KvCacheOptionsTest, BlocksFromBudgetForBothLayouts) {
  KvCacheOptions opts;
  opts.block_size = 16;
  opts.memory_budget_bytes = int64_t{1} << 30;
  KvCacheLayout mha{KvCacheKind::kMha, 30, 32, 128, 0, 0, 2};  // DeepSeek-LLM 7B: 480 KiB/token
  KvCacheLayout mla{KvCacheKind::kMla, 61, 0, 0, 512, 64, 2};  // V3: 576 values per token per layer
  EXPECT_EQ(mha.BytesPerToken(), 30 * 2 * 32 * 128 * 2);
  EXPECT_EQ(mla.BytesPerToken(), 61 * 576 * 2);
  auto a = ComputeNumBlocks(opts, mha);
  auto b = ComputeNumBlocks(opts, mla);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, (int64_t{1} << 30) / (mha.BytesPerToken() * 16));
  EXPECT_EQ(*b, (int64_t{1} << 30) / (mla.BytesPerToken() * 16));
  opts.memory_budget_bytes = 100;
  EXPECT_EQ(ComputeNumBlocks(opts, mla).status().code(), StatusCode::kInvalidArgument);
  opts.num_blocks_override = 7;
  EXPECT_EQ(*ComputeNumBlocks(opts, mla), 7);
}

}  // namespace
}  // namespace inferd::kv_cache
