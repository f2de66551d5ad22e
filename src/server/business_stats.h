// Business-tier counters fed by the Feedback RPC (DESIGN.md section 6). Plain data: metrics/ exports
// a snapshot; nothing here knows Prometheus.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace inferd::server {

// Upper bounds (inclusive) of the quality-score histogram buckets; scores are in [0, 1].
inline constexpr std::array<double, 10> kQualityBucketBounds = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};

struct ModelBusinessStats {
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  uint64_t conversions = 0;
  uint64_t quality_count = 0;
  double quality_sum = 0.0;
  // quality_buckets[i] counts scores s with bound[i-1] < s <= bound[i] (not cumulative).
  std::array<uint64_t, kQualityBucketBounds.size()> quality_buckets{};
};

// Counters since start, keyed by model (pool) name. Monotonic.
struct BusinessStats {
  std::map<std::string, ModelBusinessStats> models;
};

// Thread-safe accumulator behind the Feedback RPC.
class BusinessStatsRecorder {
 public:
  enum class Event { kImpression, kClick, kConversion };

  void Record(const std::string& model, Event event, uint64_t count);
  // `score` must be in [0, 1].
  void RecordQuality(const std::string& model, double score);
  BusinessStats Snapshot() const;

 private:
  mutable std::mutex mu_;
  BusinessStats stats_;  // guarded by mu_
};

}  // namespace inferd::server
