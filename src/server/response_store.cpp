#include "server/response_store.h"

#include <algorithm>

namespace inferd::server {

ResponseStore::ResponseStore(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

void ResponseStore::Put(const std::string& response_id, std::shared_ptr<const Entry> entry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(response_id); it != index_.end()) {
    it->second->second = std::move(entry);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(response_id, std::move(entry));
  index_.emplace(response_id, lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

std::shared_ptr<const ResponseStore::Entry> ResponseStore::Get(const std::string& response_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(response_id);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

size_t ResponseStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

}  // namespace inferd::server
