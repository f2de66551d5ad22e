// Business-tier counters fed by the Feedback RPC (DESIGN.md section 6), attributed to the model and class
// of the request a Feedback names. Plain data: metrics/ exports a snapshot; nothing here knows Prometheus.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "inferd/request_types.h"
#include "inferd/serving_stats.h"

namespace inferd::server {

// Thread-safe and lock-free: one set of relaxed atomics per (pool, class, variant slot), fixed at
// construction. Variant slot 0: no listed variant; slot i + 1: variants[i].
class BusinessStatsRecorder {
 public:
  enum class Event { kImpression, kClick, kConversion };

  explicit BusinessStatsRecorder(std::vector<std::string> pool_names, std::vector<std::string> variants = {});

  // `pool` < pool_names.size(); `variant` <= variants.size().
  void Record(size_t pool, RequestClass cls, uint32_t variant, Event event, uint64_t count);
  // `score` must be in [0, 1].
  void RecordQuality(size_t pool, RequestClass cls, uint32_t variant, double score);
  // A Feedback event whose request_id is not remembered.
  void RecordUnknownRequest() { unknown_.fetch_add(1, std::memory_order_relaxed); }
  // Counters may be mid-update relative to each other; each one is exact.
  BusinessStats Snapshot() const;

 private:
  struct Cell {
    std::atomic<uint64_t> impressions{0}, clicks{0}, conversions{0}, quality_count{0};
    std::atomic<double> quality_sum{0.0};
    std::array<std::atomic<uint64_t>, kQualityBucketBounds.size()> quality_buckets{};
  };
  size_t Index(size_t pool, size_t cls, size_t slot) const {
    return (pool * kNumRequestClasses + cls) * (variants_.size() + 1) + slot;
  }
  Cell& At(size_t pool, RequestClass cls, uint32_t variant) {
    return cells_[Index(pool, static_cast<size_t>(cls), variant <= variants_.size() ? variant : 0)];
  }

  const std::vector<std::string> pool_names_;
  const std::vector<std::string> variants_;
  std::unique_ptr<Cell[]> cells_;  // [pool][class][variant slot]
  std::atomic<uint64_t> unknown_{0};
};

}  // namespace inferd::server
