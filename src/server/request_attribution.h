// RequestAttribution: the model pool and class of recently answered requests, by request id, so that a
// later Feedback is counted against them. Bounded: at most `capacity` ids; the oldest id of a shard is
// forgotten first. Thread-safe; ids are spread over shards, each with its own mutex (no global lock).
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "inferd/request_types.h"

namespace inferd::server {

class RequestAttribution {
 public:
  struct Entry {
    size_t pool = 0;
    RequestClass cls = RequestClass::kComplex;
    uint32_t variant = 0;  // BusinessStatsRecorder's variant slot
  };

  explicit RequestAttribution(size_t capacity);

  // Remembers (or re-points) `request_id`.
  void Remember(const std::string& request_id, Entry entry);
  std::optional<Entry> Find(const std::string& request_id) const;
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;  // guarded by mu
    std::deque<std::string> order;                   // insertion order of `entries`' keys; guarded by mu
  };
  Shard& ShardOf(const std::string& id) const;

  const size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace inferd::server
