#include "cache/response_cache.h"

#include <cstring>

namespace inferd::cache {
namespace {

constexpr size_t kEntryOverhead = 192;  // list node, two index slots (key and alias), control block

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

CacheKey RecommendTextKey(std::string_view model, std::string_view checkpoint_id, std::string_view context,
                          std::span<const std::string_view> candidates, int32_t top_k, int32_t score_mode) {
  Hasher h;
  h.Bytes("recommend-text/v1");  // never equal to a RecommendKey's stream
  h.Bytes(model);
  h.Bytes(checkpoint_id);
  h.Bytes(context);
  h.Word(candidates.size());
  for (std::string_view c : candidates) h.Bytes(c);
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
  if (it->alias) index_.erase(*it->alias);
  lru_.erase(it);
}

void ResponseCache::SetAliasLocked(List::iterator it, const CacheKey& alias) {
  if (it->alias == alias) return;
  if (it->alias) index_.erase(*it->alias);
  auto [slot, fresh] = index_.try_emplace(alias, it);
  if (!fresh) {
    if (slot->second->key == alias) return;  // a real key (a 128-bit collision): leave it alone
    slot->second->alias.reset();             // taken from the entry that had it
    slot->second = it;
  }
  it->alias = alias;
}

std::shared_ptr<const CachedRanking> ResponseCache::Get(const CacheKey& key, bool count_miss) {
  const TimePoint now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(key);
  if (found == index_.end()) {
    if (count_miss) ++stats_.misses;
    return nullptr;
  }
  List::iterator it = found->second;
  if (now >= it->expires) {
    ++stats_.expirations;
    if (count_miss) ++stats_.misses;
    EraseLocked(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it);
  ++stats_.hits;
  return it->value;
}

void ResponseCache::Put(const CacheKey& key, std::shared_ptr<const CachedRanking> value,
                        std::optional<CacheKey> alias) {
  if (value == nullptr) return;
  const size_t bytes = value->Bytes();
  if (static_cast<int64_t>(bytes) > max_bytes_) return;
  const TimePoint expires = now_() + ttl_;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto found = index_.find(key); found != index_.end()) {
    if (found->second->key == key) {
      EraseLocked(found->second);
    } else {
      found->second->alias.reset();  // `key` was another entry's alias (a 128-bit collision)
      index_.erase(found);
    }
  }
  while (!lru_.empty() && stats_.bytes + static_cast<int64_t>(bytes) > max_bytes_) {
    EraseLocked(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(Entry{key, std::nullopt, std::move(value), expires, bytes});
  index_.emplace(key, lru_.begin());
  if (alias) SetAliasLocked(lru_.begin(), *alias);
  stats_.bytes += static_cast<int64_t>(bytes);
  stats_.entries += 1;
  ++stats_.inserts;
}

void ResponseCache::AddAlias(const CacheKey& key, const CacheKey& alias) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = index_.find(key);
  if (found == index_.end() || !(found->second->key == key)) return;
  SetAliasLocked(found->second, alias);
}

CacheStats ResponseCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace inferd::cache
