// ResponseCache: realtime Recommend outcomes keyed by a canonical hash of everything that determines the
// answer (DESIGN.md section 1). Bounded in bytes (least recently used evicted first), entries expire `ttl`
// after they were stored. An entry may carry a second key, an alias (RecommendTextKey: the request as sent),
// so that a repeated request is found before it is tokenized; the alias lives and dies with its entry.
// Thread-safe (one mutex; every operation is O(1) apart from the key hash).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
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

// The same answer named by the request as sent: the context and candidate texts in place of their token ids.
// Only an alias: the tokenizer is part of the checkpoint (a reload changes checkpoint_id), so within one
// checkpoint equal texts give equal token ids and this key names what RecommendKey of their tokens names.
// It is attached to an entry only after the request was tokenized and validated, so a hit through it stands
// for a request that passed every check that depends on the texts alone (the item ids are not in it).
CacheKey RecommendTextKey(std::string_view model, std::string_view checkpoint_id, std::string_view context,
                          std::span<const std::string_view> candidates, int32_t top_k, int32_t score_mode);

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

  // The live entry for `key` (or for an alias), or null: a miss, counted unless count_miss is false (a
  // lookup by alias that falls back to the key). An expired entry is removed.
  std::shared_ptr<const CachedRanking> Get(const CacheKey& key, bool count_miss = true);
  // Stores or replaces the entry of `key`, with `alias` as its second key when set; evicts least recently
  // used entries until it fits. A value larger than max_bytes is not stored.
  void Put(const CacheKey& key, std::shared_ptr<const CachedRanking> value, std::optional<CacheKey> alias = {});
  // Makes `alias` a second key of the live entry of `key` (replacing the alias it had); no-op without one.
  void AddAlias(const CacheKey& key, const CacheKey& alias);
  CacheStats stats() const;

 private:
  struct KeyHash {
    size_t operator()(const CacheKey& k) const { return static_cast<size_t>(k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull)); }
  };
  struct Entry {
    CacheKey key;
    std::optional<CacheKey> alias;  // indexed too, pointing at this entry
    std::shared_ptr<const CachedRanking> value;
    TimePoint expires;
    size_t bytes = 0;
  };
  using List = std::list<Entry>;  // front = most recently used

  void EraseLocked(List::iterator it);
  void SetAliasLocked(List::iterator it, const CacheKey& alias);

  const int64_t max_bytes_;
  const std::chrono::milliseconds ttl_;
  const Now now_;
  mutable std::mutex mu_;
  List lru_;
  std::unordered_map<CacheKey, List::iterator, KeyHash> index_;  // keys and aliases
  CacheStats stats_;
};

}  // namespace inferd::cache
