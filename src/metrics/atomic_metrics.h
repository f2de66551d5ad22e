// Lock-free series values for the request and step paths: any number of writers, relaxed atomics, no
// lock. A reader (the scrape) sees each bucket and the sum exactly, possibly mid-update relative to
// each other; Prometheus clients accept the same.
#pragma once

#include <prometheus/client_metric.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>

namespace inferd::metrics {

// Bucket edges (upper bounds, seconds unless said). Both latency classes resolve: 1 ms steps around
// the realtime SLO (default 80 ms), then seconds up to minutes for complex generation.
// Starting point: vLLM's TTFT and inter-token edges, extended down to 1 ms and up to 10 minutes.
inline constexpr double kLatencyBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04,  0.06,  0.08,
                                             0.1,   0.15,   0.25,  0.5,  0.75, 1.0,   2.5,   5.0,
                                             7.5,   10.0,   20.0,  40.0, 80.0, 160.0, 320.0, 640.0};
// Inter-token latency and engine step times.
inline constexpr double kStepBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
                                          0.075,  0.1,   0.15,   0.2,   0.3,  0.4,   0.5,  0.75,  1.0,  2.5,  5.0};
// Sequences per step and tokens per step.
inline constexpr double kCountBuckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};

class AtomicHistogram {
 public:
  static constexpr size_t kMaxBuckets = 32;  // ObserveAll's fast path; more edges fall back to Observe
  // `bounds` ascending; must outlive this histogram (the constants above do).
  explicit AtomicHistogram(std::span<const double> bounds)
      : bounds_(bounds), counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

  void Observe(double v) {
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;  // linear: <= 24 edges, most values land early
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }

  // Observe(v) for each of `values`, with one atomic add per touched bucket instead of one per value.
  void ObserveAll(std::span<const double> values) {
    if (values.empty()) return;
    uint32_t local[kMaxBuckets + 1] = {};
    if (bounds_.size() > kMaxBuckets) {
      for (double v : values) Observe(v);
      return;
    }
    double sum = 0;
    for (double v : values) {
      size_t i = 0;
      while (i < bounds_.size() && v > bounds_[i]) ++i;
      ++local[i];
      sum += v;
    }
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      if (local[i] != 0) counts_[i].fetch_add(local[i], std::memory_order_relaxed);
    }
    sum_.fetch_add(sum, std::memory_order_relaxed);
  }

  // Cumulative buckets ending with +Inf; sample_count is the +Inf bucket.
  prometheus::ClientMetric::Histogram Read() const {
    prometheus::ClientMetric::Histogram h;
    uint64_t cumulative = 0;
    h.bucket.reserve(bounds_.size() + 1);
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      h.bucket.push_back({cumulative, i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity()});
    }
    h.sample_count = cumulative;
    h.sample_sum = sum_.load(std::memory_order_relaxed);
    return h;
  }

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // [bounds.size() + 1], not cumulative
  std::atomic<double> sum_{0.0};
};

class AtomicCounter {
 public:
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class AtomicGauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

}  // namespace inferd::metrics
