#include "server/business_stats.h"

#include <algorithm>

namespace inferd::server {

BusinessStatsRecorder::BusinessStatsRecorder(std::vector<std::string> pool_names, std::vector<std::string> variants)
    : pool_names_(std::move(pool_names)),
      variants_(std::move(variants)),
      cells_(std::make_unique<Cell[]>(std::max<size_t>(1, pool_names_.size()) * kNumRequestClasses *
                                      (variants_.size() + 1))) {}

void BusinessStatsRecorder::Record(size_t pool, RequestClass cls, uint32_t variant, Event event, uint64_t count) {
  Cell& c = At(pool, cls, variant);
  switch (event) {
    case Event::kImpression:
      c.impressions.fetch_add(count, std::memory_order_relaxed);
      break;
    case Event::kClick:
      c.clicks.fetch_add(count, std::memory_order_relaxed);
      break;
    case Event::kConversion:
      c.conversions.fetch_add(count, std::memory_order_relaxed);
      break;
  }
}

void BusinessStatsRecorder::RecordQuality(size_t pool, RequestClass cls, uint32_t variant, double score) {
  const auto it = std::lower_bound(kQualityBucketBounds.begin(), kQualityBucketBounds.end(), score);
  const size_t bucket = std::min<size_t>(it - kQualityBucketBounds.begin(), kQualityBucketBounds.size() - 1);
  Cell& c = At(pool, cls, variant);
  c.quality_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  c.quality_sum.fetch_add(score, std::memory_order_relaxed);
  c.quality_count.fetch_add(1, std::memory_order_relaxed);
}

BusinessStats BusinessStatsRecorder::Snapshot() const {
  BusinessStats s;
  s.pool_names = pool_names_;
  s.variants = variants_;
  const size_t slots = variants_.size() + 1;
  s.per_class.resize(pool_names_.size());
  if (!variants_.empty())
    s.per_variant.assign(slots, std::vector<std::array<ModelBusinessStats, kNumRequestClasses>>(pool_names_.size()));
  for (size_t p = 0; p < pool_names_.size(); ++p) {
    for (size_t k = 0; k < kNumRequestClasses; ++k) {
      ModelBusinessStats& total = s.per_class[p][k];
      for (size_t v = 0; v < slots; ++v) {
        const Cell& c = cells_[Index(p, k, v)];
        ModelBusinessStats m;
        m.impressions = c.impressions.load(std::memory_order_relaxed);
        m.clicks = c.clicks.load(std::memory_order_relaxed);
        m.conversions = c.conversions.load(std::memory_order_relaxed);
        m.quality_count = c.quality_count.load(std::memory_order_relaxed);
        m.quality_sum = c.quality_sum.load(std::memory_order_relaxed);
        for (size_t b = 0; b < kQualityBucketBounds.size(); ++b) {
          m.quality_buckets[b] = c.quality_buckets[b].load(std::memory_order_relaxed);
        }
        total.impressions += m.impressions;
        total.clicks += m.clicks;
        total.conversions += m.conversions;
        total.quality_count += m.quality_count;
        total.quality_sum += m.quality_sum;
        for (size_t b = 0; b < kQualityBucketBounds.size(); ++b) total.quality_buckets[b] += m.quality_buckets[b];
        if (!variants_.empty()) s.per_variant[v][p][k] = m;
      }
    }
  }
  s.unknown_request_feedback = unknown_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace inferd::server
