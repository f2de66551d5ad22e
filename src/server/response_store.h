// Bounded LRU store of recent Recommend rankings, so a later request can ask for a diff against one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace inferd::server {

class ResponseStore {
 public:
  struct Entry {
    uint64_t hash = 0;          // RankingHash(ids)
    std::vector<uint64_t> ids;  // rank order
    std::string checkpoint_id;  // the model load that ranked it; DIFF bases never cross loads
  };

  // Holds at most `capacity` entries (>= 1); Put beyond that evicts the least recently used.
  explicit ResponseStore(size_t capacity);

  void Put(const std::string& response_id, std::shared_ptr<const Entry> entry);
  // The entry, marked most recently used; null when unknown or evicted.
  std::shared_ptr<const Entry> Get(const std::string& response_id);
  size_t size() const;

 private:
  using Lru = std::list<std::pair<std::string, std::shared_ptr<const Entry>>>;  // front = most recent
  const size_t capacity_;
  mutable std::mutex mu_;
  Lru lru_;                                               // guarded by mu_
  std::unordered_map<std::string, Lru::iterator> index_;  // guarded by mu_; one per lru_ element
};

}  // namespace inferd::server
