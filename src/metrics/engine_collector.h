// Model-tier series from the engine's plain stats (include/inferd/engine.h), one EngineMetrics per model
// pool, fed on that pool's engine thread through Engine::SetStatsCallback. Recording takes no lock.
//
// Series (labels; cardinality per model):
//   histograms {model, class} (2 each): inferd_request_duration_seconds, inferd_request_queue_seconds,
//     inferd_time_to_first_token_seconds, inferd_inter_token_latency_seconds
//   histograms {model} (1 each): inferd_prefill_step_seconds (steps carrying any prefill token),
//     inferd_decode_step_seconds (steps of decode tokens only), inferd_batch_size (sequences per step),
//     inferd_step_tokens (tokens per step)
//   counters {model, class}: inferd_prompt_tokens_total, inferd_cached_prompt_tokens_total,
//     inferd_generated_tokens_total; {model, class, outcome} (2 x 8): inferd_requests_total
//   counters {model}: inferd_preemptions_total, inferd_prefix_cache_queried_tokens_total,
//     inferd_prefix_cache_hit_tokens_total, inferd_engine_busy_seconds_total, inferd_engine_steps_total
//   gauges {model, class}: inferd_running_requests, inferd_waiting_requests, inferd_queue_capacity_requests
//   gauges {model} (the inference gateway's three): inferd_gateway_queued_requests,
//     inferd_gateway_running_requests, inferd_kv_cache_usage_ratio; plus inferd_kv_cache_blocks
// Gauges hold the values at the end of the latest engine step that did work.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inferd/engine.h"
#include "metrics/atomic_metrics.h"

namespace inferd::metrics {

// Outcomes counted by inferd_requests_total: every FinishReason but kNone.
inline constexpr int kNumOutcomes = 8;

class EngineMetrics {
 public:
  explicit EngineMetrics(std::string model);

  // Engine thread. Ignored until set_recording(true) (the daemon's warm-up requests are not counted).
  void Record(const EngineStats& stats);
  void set_recording(bool on) { recording_.store(on, std::memory_order_release); }
  // The bounded queue sizes (scheduler.max_waiting_*), exported as inferd_queue_capacity_requests.
  void set_queue_capacity(RequestClass cls, int32_t requests) {
    classes_[static_cast<size_t>(cls)].queue_capacity.Set(requests);
  }
  const std::string& model() const { return model_; }

 private:
  friend class EngineCollector;
  struct PerClass {
    AtomicHistogram duration{kLatencyBuckets}, queue{kLatencyBuckets}, ttft{kLatencyBuckets}, itl{kStepBuckets};
    AtomicCounter prompt_tokens, cached_prompt_tokens, generated_tokens;
    std::array<AtomicCounter, kNumOutcomes> outcomes;
    AtomicGauge running, waiting, queue_capacity;
  };

  const std::string model_;
  std::atomic<bool> recording_{false};
  std::array<PerClass, kNumRequestClasses> classes_;
  AtomicHistogram prefill_step_{kStepBuckets}, decode_step_{kStepBuckets};
  AtomicHistogram batch_size_{kCountBuckets}, step_tokens_{kCountBuckets};
  AtomicGauge preemptions_total_, prefix_queried_total_, prefix_hit_total_;  // engine cumulative values
  AtomicCounter busy_seconds_, steps_;
  // Realtime protection.
  AtomicGauge realtime_refused_total_, realtime_predicted_late_total_, realtime_late_total_;  // engine cumulative
  AtomicCounter predicted_seconds_, observed_seconds_;  // steps the cost model predicted: predicted, actual
  AtomicCounter realtime_active_seconds_, realtime_active_complex_seconds_, held_back_steps_;
  AtomicGauge cost_error_, cost_ready_;
  AtomicGauge kv_usage_, kv_blocks_;
};

class EngineCollector : public prometheus::Collectable {
 public:
  // The returned recorder stays valid for the collector's lifetime; hand it to the engine's callback.
  std::shared_ptr<EngineMetrics> AddModel(const std::string& model);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mu_;  // guards the list, not the values
  std::vector<std::shared_ptr<EngineMetrics>> models_;
};

}  // namespace inferd::metrics
