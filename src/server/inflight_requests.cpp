#include "server/inflight_requests.h"

#include <vector>

namespace inferd::server {

uint64_t InflightRequests::Add(const std::string& request_id, Backend* backend, RequestId stream_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t token = next_token_++;
  by_token_.emplace(token, Entry{request_id, backend, stream_id});
  by_request_.emplace(request_id, token);
  return token;
}

void InflightRequests::Remove(uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return;
  auto [lo, hi] = by_request_.equal_range(it->second.request_id);
  for (auto r = lo; r != hi; ++r) {
    if (r->second == token) {
      by_request_.erase(r);
      break;
    }
  }
  by_token_.erase(it);
}

int32_t InflightRequests::Abort(const std::string& request_id) {
  std::vector<Entry> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [lo, hi] = by_request_.equal_range(request_id);
    for (auto r = lo; r != hi; ++r) targets.push_back(by_token_.at(r->second));
  }
  // Outside the lock: Cancel may block briefly on the engine's intake.
  for (const Entry& e : targets) e.backend->Cancel(e.stream_id);
  return static_cast<int32_t>(targets.size());
}

size_t InflightRequests::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_token_.size();
}

}  // namespace inferd::server
