// ResponseCache: key canonicalisation, TTL on an injected clock, LRU eviction by bytes, stats.
#include "cache/response_cache.h"

#include <gtest/gtest.h>

namespace inferd::cache {
namespace {

using std::chrono::milliseconds;

std::shared_ptr<CachedRanking> Ranking(int n, int32_t prompt_tokens = 7) {
  auto r = std::make_shared<CachedRanking>();
  for (int i = 0; i < n; ++i) r->ranked.push_back(ScoredCandidate{i, -1.0 * i, -0.5 * i, 2});
  r->prompt_tokens = prompt_tokens;
  return r;
}

const std::vector<TokenId> kContext = {1, 2, 3};
const std::vector<std::vector<TokenId>> kCandidates = {{4, 5}, {6}};

TEST(RecommendKeyTest, EveryPartOfTheAnswerChangesTheKey) {
  const CacheKey base = RecommendKey("light", "ckpt@1", kContext, kCandidates, 2, 0);
  EXPECT_EQ(base, RecommendKey("light", "ckpt@1", kContext, kCandidates, 2, 0));
  EXPECT_FALSE(base == RecommendKey("full", "ckpt@1", kContext, kCandidates, 2, 0));
  EXPECT_FALSE(base == RecommendKey("light", "ckpt@2", kContext, kCandidates, 2, 0));  // reload
  EXPECT_FALSE(base == RecommendKey("light", "ckpt@1", {1, 2, 4}, kCandidates, 2, 0));
  EXPECT_FALSE(base == RecommendKey("light", "ckpt@1", kContext, {{4, 5}, {7}}, 2, 0));
  EXPECT_FALSE(base == RecommendKey("light", "ckpt@1", kContext, {{6}, {4, 5}}, 2, 0));  // order matters
  EXPECT_FALSE(base == RecommendKey("light", "ckpt@1", kContext, kCandidates, 1, 0));
  EXPECT_FALSE(base == RecommendKey("light", "ckpt@1", kContext, kCandidates, 2, 1));
  // Length prefixes: moving a token across the context/candidate boundary is a different key.
  EXPECT_FALSE(RecommendKey("m", "c", {1, 2}, {{3}}, 0, 0) == RecommendKey("m", "c", {1}, {{2, 3}}, 0, 0));
  EXPECT_FALSE(RecommendKey("ab", "c", {1}, {{2}}, 0, 0) == RecommendKey("a", "bc", {1}, {{2}}, 0, 0));
}

class ResponseCacheTest : public ::testing::Test {
 protected:
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  ResponseCache::Now clock_ = [this] { return now_; };
};

TEST_F(ResponseCacheTest, HitUntilTtlThenMissAndRemoved) {
  ResponseCache cache(1 << 20, milliseconds(100), clock_);
  const CacheKey k = RecommendKey("m", "c", kContext, kCandidates, 0, 0);
  EXPECT_EQ(cache.Get(k), nullptr);
  cache.Put(k, Ranking(2));
  now_ += milliseconds(99);
  auto hit = cache.Get(k);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->ranked.size(), 2u);
  EXPECT_EQ(hit->prompt_tokens, 7);
  now_ += milliseconds(1);
  EXPECT_EQ(cache.Get(k), nullptr);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.expirations, 1u);
  EXPECT_EQ(s.entries, 0);
  EXPECT_EQ(s.bytes, 0);
}

TEST_F(ResponseCacheTest, EvictsLeastRecentlyUsedToStayWithinBytes) {
  const size_t one = Ranking(4)->Bytes();
  ResponseCache cache(static_cast<int64_t>(2 * one), milliseconds(10000), clock_);
  const CacheKey a{1, 1}, b{2, 2}, c{3, 3};
  cache.Put(a, Ranking(4));
  cache.Put(b, Ranking(4));
  ASSERT_NE(cache.Get(a), nullptr);  // a is now the most recently used
  cache.Put(c, Ranking(4));          // evicts b
  EXPECT_NE(cache.Get(a), nullptr);
  EXPECT_EQ(cache.Get(b), nullptr);
  EXPECT_NE(cache.Get(c), nullptr);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.entries, 2);
  EXPECT_EQ(s.bytes, static_cast<int64_t>(2 * one));
  EXPECT_LE(s.bytes, s.max_bytes);
}

TEST_F(ResponseCacheTest, ReplacingAKeyRechargesItsBytesAndTtl) {
  ResponseCache cache(1 << 20, milliseconds(100), clock_);
  const CacheKey k{9, 9};
  cache.Put(k, Ranking(1));
  now_ += milliseconds(80);
  cache.Put(k, Ranking(10));
  now_ += milliseconds(80);  // 160 ms after the first put, 80 after the second
  auto hit = cache.Get(k);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->ranked.size(), 10u);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.bytes, static_cast<int64_t>(Ranking(10)->Bytes()));
}

TEST_F(ResponseCacheTest, ValueLargerThanTheBoundIsNotStored) {
  ResponseCache cache(static_cast<int64_t>(Ranking(1)->Bytes()), milliseconds(100), clock_);
  cache.Put(CacheKey{1, 2}, Ranking(1000));
  EXPECT_EQ(cache.Get(CacheKey{1, 2}), nullptr);
  EXPECT_EQ(cache.stats().inserts, 0u);
}

}  // namespace
}  // namespace inferd::cache
