#include "cache/response_cache.h"

#include <cstring>

namespace inferd::cache {
namespace {

constexpr size_t kEntryOverhead = 128;  // list node, index slot, control block

// Two independent 64-bit streams over the same words: FNV-1a and a splitmix-style multiply-xorshift.
class Hasher {
 public:
  void Word(uint64_t w) {
    for (int i = 0; i < 8; ++i) {
      a_ ^= (w >> (8 * i)) & 0xff;
      a_ *= 0x100000001b3ull;
    }
    b_ = Mix(b_ ^ (w + 0x9E3779B97F4A7C15ull));
  }
  void Bytes(std::string_view s) {
    Word(s.size());
    for (size_t i = 0; i < s.size(); i += 8) {
      uint64_t w = 0;
      std::memcpy(&w, s.data() + i, std::min<size_t>(8, s.size() - i));
      Word(w);
    }
  }
  void Tokens(const std::vector<TokenId>& ids) {
    Word(ids.size());
    for (TokenId t : ids) Word(static_cast<uint32_t>(t));
  }
  CacheKey Finish() const { return {Mix(a_), Mix(b_ ^ a_)}; }

 private:
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t a_ = 0xcbf29ce484222325ull;
  uint64_t b_ = 0x6a09e667f3bcc908ull;
};

}  // namespace

CacheKey RecommendKey(std::string_view model, std::string_view checkpoint_id, const std::vector<TokenId>& context,
                      const std::vector<std::vector<TokenId>>& candidates, int32_t top_k, int32_t score_mode) {
  Hasher h;
  h.Bytes("recommend/v1");
  h.Bytes(model);
  h.Bytes(checkpoint_id);
  h.Tokens(context);
  h.Word(candidates.size());
  for (const auto& c : candidates) h.Tokens(c);
  h.Word(static_cast<uint32_t>(top_k));
  h.Word(static_cast<uint32_t>(score_mode));
  return h.Finish();
}

size_t CachedRanking::Bytes() const {
  return kEntryOverhead + sizeof(*this) + ranked.size() * sizeof(ScoredCandidate);
}

ResponseCache::ResponseCache(int64_t max_bytes, std::chrono::milliseconds ttl, Now now)
    : max_bytes_(max_bytes), ttl_(ttl), now_(std::move(now)) {
  stats_.max_bytes = max_bytes;
}

void ResponseCache::EraseLocked(List::iterator it) {
  stats_.bytes -= static_cast<int64_t>(it->bytes);
  stats_.entries -= 1;
  index_.erase(it->key);
  lru_.erase(it);
}

std::shared_ptr<const CachedRanking> ResponseCache::Get(const CacheKey& key) {
  const TimePoint now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(key);
  if (found == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  List::iterator it = found->second;
  if (now >= it->expires) {
    ++stats_.expirations;
    ++stats_.misses;
    EraseLocked(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it);
  ++stats_.hits;
  return it->value;
}

void ResponseCache::Put(const CacheKey& key, std::shared_ptr<const CachedRanking> value) {
  if (value == nullptr) return;
  const size_t bytes = value->Bytes();
  if (static_cast<int64_t>(bytes) > max_bytes_) return;
  const TimePoint expires = now_() + ttl_;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto found = index_.find(key); found != index_.end()) EraseLocked(found->second);
  while (!lru_.empty() && stats_.bytes + static_cast<int64_t>(bytes) > max_bytes_) {
    EraseLocked(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(Entry{key, std::move(value), expires, bytes});
  index_.emplace(key, lru_.begin());
  stats_.bytes += static_cast<int64_t>(bytes);
  stats_.entries += 1;
  ++stats_.inserts;
}

CacheStats ResponseCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace inferd::cache
