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

TEST(RecommendTextKeyTest, EveryPartChangesTheKeyAndItNeverEqualsATokenKey) {
  const std::vector<std::string_view> texts = {" a stove", " a lamp"};
  const CacheKey base = RecommendTextKey("light", "ckpt@1", "Bought a tent", texts, 2, 0);
  EXPECT_EQ(base, RecommendTextKey("light", "ckpt@1", "Bought a tent", texts, 2, 0));
  EXPECT_FALSE(base == RecommendTextKey("full", "ckpt@1", "Bought a tent", texts, 2, 0));
  EXPECT_FALSE(base == RecommendTextKey("light", "ckpt@2", "Bought a tent", texts, 2, 0));  // reload
  EXPECT_FALSE(base == RecommendTextKey("light", "ckpt@1", "Bought a tent.", texts, 2, 0));
  const std::vector<std::string_view> swapped = {" a lamp", " a stove"};
  EXPECT_FALSE(base == RecommendTextKey("light", "ckpt@1", "Bought a tent", swapped, 2, 0));
  EXPECT_FALSE(base == RecommendTextKey("light", "ckpt@1", "Bought a tent", texts, 3, 0));
  EXPECT_FALSE(base == RecommendTextKey("light", "ckpt@1", "Bought a tent", texts, 2, 1));
  // Length prefixes: bytes moved across the context/candidate boundary give another key.
  const std::vector<std::string_view> shifted = {"t a stove", " a lamp"};
  EXPECT_FALSE(base == RecommendTextKey("light", "ckpt@1", "Bought a ten", shifted, 2, 0));
  EXPECT_FALSE(RecommendTextKey("m", "c", "", {}, 0, 0) == RecommendKey("m", "c", {}, {}, 0, 0));
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

TEST_F(ResponseCacheTest, AnAliasFindsItsEntryAndLivesAndDiesWithIt) {
  ResponseCache cache(1 << 20, milliseconds(100), clock_);
  const CacheKey k{1, 1}, alias{2, 2}, other{3, 3};
  EXPECT_EQ(cache.Get(alias, /*count_miss=*/false), nullptr);
  EXPECT_EQ(cache.stats().misses, 0u);
  cache.Put(k, Ranking(3), alias);
  auto by_alias = cache.Get(alias, false);
  ASSERT_NE(by_alias, nullptr);
  EXPECT_EQ(by_alias, cache.Get(k));  // the same entry
  CacheStats s = cache.stats();
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.inserts, 1u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.bytes, static_cast<int64_t>(Ranking(3)->Bytes()));

  cache.Put(k, Ranking(1));  // replaced without an alias: the old alias goes with the old entry
  EXPECT_EQ(cache.Get(alias, false), nullptr);
  cache.AddAlias(k, other);
  ASSERT_NE(cache.Get(other, false), nullptr);
  EXPECT_EQ(cache.Get(other)->ranked.size(), 1u);
  cache.AddAlias(CacheKey{9, 9}, alias);  // no entry: nothing happens
  EXPECT_EQ(cache.Get(alias, false), nullptr);

  now_ += milliseconds(100);
  EXPECT_EQ(cache.Get(other, false), nullptr);  // expired through its alias: the entry is gone
  s = cache.stats();
  EXPECT_EQ(s.expirations, 1u);
  EXPECT_EQ(s.entries, 0);
  EXPECT_EQ(s.misses, 0u);  // alias lookups never counted a miss
  EXPECT_EQ(cache.Get(k), nullptr);
  EXPECT_EQ(cache.stats().misses, 1u);
}

TEST_F(ResponseCacheTest, AnEvictedEntryTakesItsAliasAlong) {
  const size_t one = Ranking(4)->Bytes();
  ResponseCache cache(static_cast<int64_t>(one), milliseconds(10000), clock_);
  cache.Put(CacheKey{1, 1}, Ranking(4), CacheKey{10, 10});
  cache.Put(CacheKey{2, 2}, Ranking(4), CacheKey{20, 20});  // evicts the first
  EXPECT_EQ(cache.Get(CacheKey{10, 10}, false), nullptr);
  EXPECT_NE(cache.Get(CacheKey{20, 20}, false), nullptr);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.stats().entries, 1);
}

}  // namespace
}  // namespace inferd::cache
