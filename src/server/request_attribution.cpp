#include "server/request_attribution.h"

#include <algorithm>
#include <functional>

namespace inferd::server {

RequestAttribution::RequestAttribution(size_t capacity) : per_shard_(std::max<size_t>(1, capacity / kShards)) {}

RequestAttribution::Shard& RequestAttribution::ShardOf(const std::string& id) const {
  return shards_[std::hash<std::string>{}(id) % kShards];
}

void RequestAttribution::Remember(const std::string& request_id, Entry entry) {
  Shard& s = ShardOf(request_id);
  std::lock_guard<std::mutex> lock(s.mu);
  auto [it, inserted] = s.entries.insert_or_assign(request_id, entry);
  if (!inserted) return;
  s.order.push_back(request_id);
  while (s.order.size() > per_shard_) {
    s.entries.erase(s.order.front());
    s.order.pop_front();
  }
}

std::optional<RequestAttribution::Entry> RequestAttribution::Find(const std::string& request_id) const {
  Shard& s = ShardOf(request_id);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(request_id);
  if (it == s.entries.end()) return std::nullopt;
  return it->second;
}

size_t RequestAttribution::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.entries.size();
  }
  return n;
}

}  // namespace inferd::server
