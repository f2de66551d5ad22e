#include "server/business_stats.h"

#include <algorithm>

namespace inferd::server {

void BusinessStatsRecorder::Record(const std::string& model, Event event, uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  ModelBusinessStats& m = stats_.models[model];
  switch (event) {
    case Event::kImpression:
      m.impressions += count;
      break;
    case Event::kClick:
      m.clicks += count;
      break;
    case Event::kConversion:
      m.conversions += count;
      break;
  }
}

void BusinessStatsRecorder::RecordQuality(const std::string& model, double score) {
  const auto it = std::lower_bound(kQualityBucketBounds.begin(), kQualityBucketBounds.end(), score);
  const size_t bucket = std::min<size_t>(it - kQualityBucketBounds.begin(), kQualityBucketBounds.size() - 1);
  std::lock_guard<std::mutex> lock(mu_);
  ModelBusinessStats& m = stats_.models[model];
  ++m.quality_count;
  m.quality_sum += score;
  ++m.quality_buckets[bucket];
}

BusinessStats BusinessStatsRecorder::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace inferd::server
