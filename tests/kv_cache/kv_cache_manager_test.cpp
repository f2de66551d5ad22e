#include "kv_cache/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <vector>

namespace inferd::kv_cache {
namespace {

std::vector<TokenId> Iota(int n, int start = 0) {
  std::vector<TokenId> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + i;
  return v;
}

TEST(KvCacheManagerTest, AllocateGrowFree) {
  KvCacheManager kv(10, 4, true);
  ASSERT_TRUE(kv.Allocate(1, {}, 5, 5));
  EXPECT_EQ(kv.Blocks(1).size(), 2u);
  ASSERT_TRUE(kv.Grow(1, 8));
  EXPECT_EQ(kv.Blocks(1).size(), 2u);
  ASSERT_TRUE(kv.Grow(1, 9));
  EXPECT_EQ(kv.Blocks(1).size(), 3u);
  EXPECT_FALSE(kv.Grow(1, 100));
  EXPECT_EQ(kv.Blocks(1).size(), 3u);
  kv.Free(1);
  EXPECT_EQ(kv.NumFreeBlocks(), 10);
  EXPECT_DOUBLE_EQ(kv.Usage(), 0.0);
}

TEST(KvCacheManagerTest, EqualPrefixesShareBlocks) {
  KvCacheManager kv(16, 4, true);
  const auto a = Iota(10);
  ASSERT_TRUE(kv.Allocate(1, {}, 10, 10));
  kv.CommitComputed(1, a, 10);  // two full blocks registered
  auto b = Iota(10);
  b[9] = 99;  // same first 8 tokens
  PrefixMatch m = kv.FindCachedPrefix(b, 9);
  ASSERT_EQ(m.num_tokens, 8);
  ASSERT_TRUE(kv.Allocate(2, m, 10, 10));
  EXPECT_EQ(kv.Blocks(2)[0], kv.Blocks(1)[0]);
  EXPECT_EQ(kv.Blocks(2)[1], kv.Blocks(1)[1]);
  EXPECT_NE(kv.Blocks(2)[2], kv.Blocks(1)[2]);
  EXPECT_EQ(kv.pool().RefCount(kv.Blocks(1)[0]), 2);
  EXPECT_EQ(kv.prefix_stats().hit_tokens, 8u);
  EXPECT_EQ(kv.prefix_stats().queried_tokens, 20u);
  EXPECT_EQ(kv.prefix_stats().hits, 1u);
  kv.Free(1);
  kv.Free(2);
  EXPECT_EQ(kv.NumFreeBlocks(), 16);
}

TEST(KvCacheManagerTest, DifferentParentNoHit) {
  KvCacheManager kv(16, 4, true);
  const auto a = Iota(8);
  ASSERT_TRUE(kv.Allocate(1, {}, 8, 8));
  kv.CommitComputed(1, a, 8);
  auto b = Iota(8);
  b[0] = 77;  // second block equal, first differs: chained hash must not match
  EXPECT_EQ(kv.FindCachedPrefix(b, 8).num_tokens, 0);
}

TEST(KvCacheManagerTest, MatchRespectsMaxTokens) {
  KvCacheManager kv(16, 4, true);
  const auto a = Iota(8);
  ASSERT_TRUE(kv.Allocate(1, {}, 8, 8));
  kv.CommitComputed(1, a, 8);
  EXPECT_EQ(kv.FindCachedPrefix(a, 7).num_tokens, 4);
  EXPECT_EQ(kv.FindCachedPrefix(a, 8).num_tokens, 8);
}

TEST(KvCacheManagerTest, FreedCachedBlocksReusableAndCountedFree) {
  KvCacheManager kv(4, 4, true);
  const auto a = Iota(16);
  ASSERT_TRUE(kv.Allocate(1, {}, 16, 16));
  kv.CommitComputed(1, a, 16);
  kv.Free(1);
  EXPECT_EQ(kv.NumFreeBlocks(), 4);
  PrefixMatch m = kv.FindCachedPrefix(a, 15);
  EXPECT_EQ(m.num_tokens, 12);
  // Hits on free cached blocks need free slots too: 3 hits + 1 fresh = 4.
  EXPECT_EQ(kv.FreeBlocksNeeded(2, m, 16), 4);
  ASSERT_TRUE(kv.Allocate(2, m, 16, 16));
  EXPECT_EQ(kv.NumFreeBlocks(), 0);
  kv.Free(2);
  EXPECT_EQ(kv.NumFreeBlocks(), 4);
}

TEST(KvCacheManagerTest, AllocateFailsWithoutChange) {
  KvCacheManager kv(2, 4, true);
  ASSERT_TRUE(kv.Allocate(1, {}, 4, 4));
  EXPECT_FALSE(kv.Allocate(2, {}, 8, 8));
  EXPECT_FALSE(kv.Has(2));
  EXPECT_EQ(kv.NumFreeBlocks(), 1);
}

}  // namespace
}  // namespace inferd::kv_cache
