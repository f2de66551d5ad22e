// ResponseCache: realtime Recommend outcomes keyed by a canonical hash of everything that determines the
// answer (DESIGN.md section 1). Bounded in bytes (least recently used evicted first), entries expire `ttl`
// after they were stored. Thread-safe (one mutex; every operation is O(1) apart from the key hash).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "inferd/edge_stats.h"
#include "inferd/engine.h"
#include "inferd/request_types.h"

namespace inferd::cache {

// 128-bit hash of the canonical, length-prefixed serialization of a key's parts.
struct CacheKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool operator==(const CacheKey& o) const { return hi == o.hi && lo == o.lo; }
};

// The key of a Recommend: model name, checkpoint identity (changes on every load, so a reload never hits
// old entries), context and candidate token ids in order, top_k and scoring mode. The response encoding
// and the item ids are not part of it: item ids are mapped from candidate positions when serving.
CacheKey RecommendKey(std::string_view model, std::string_view checkpoint_id, const std::vector<TokenId>& context,
                      const std::vector<std::vector<TokenId>>& candidates, int32_t top_k, int32_t score_mode);

struct CachedRanking {
  std::vector<ScoredCandidate> ranked;  // best first; indices into the request's candidates
  int32_t prompt_tokens = 0;
  size_t Bytes() const;  // what the entry is charged against max_bytes
};

using CacheStats = ResponseCacheStats;

class ResponseCache {
 public:
  using Now = std::function<TimePoint()>;

  ResponseCache(
      int64_t max_bytes, std::chrono::milliseconds ttl, Now now = [] { return Clock::now(); });

  // The live entry for `key`, or null (a miss; an expired entry is removed).
  std::shared_ptr<const CachedRanking> Get(const CacheKey& key);
  // Stores or replaces; evicts least recently used entries until it fits. A value larger than max_bytes
  // is not stored.
  void Put(const CacheKey& key, std::shared_ptr<const CachedRanking> value);
  CacheStats stats() const;

 private:
  struct KeyHash {
    size_t operator()(const CacheKey& k) const { return static_cast<size_t>(k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull)); }
  };
  struct Entry {
    CacheKey key;
    std::shared_ptr<const CachedRanking> value;
    TimePoint expires;
    size_t bytes = 0;
  };
  using List = std::list<Entry>;  // front = most recently used

  void EraseLocked(List::iterator it);

  const int64_t max_bytes_;
  const std::chrono::milliseconds ttl_;
  const Now now_;
  mutable std::mutex mu_;
  List lru_;
  std::unordered_map<CacheKey, List::iterator, KeyHash> index_;
  CacheStats stats_;
};

}  // namespace inferd::cache
