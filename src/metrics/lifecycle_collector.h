// Model lifecycle series from the pool manager's and the Control service's plain stats
// (inferd/lifecycle_stats.h), taken on each scrape.
//
// Series (labels; cardinality):
//   {model, phase} (phases of the serving load: tokenizer, open, copy, kv_pool, residency, warmup_prefill,
//     warmup_decode, warmup_recommend, total): inferd_model_load_phase_seconds (gauge: the latest load's).
//   {model}: inferd_model_generation (1 for the first load, +1 per reload), inferd_model_weights_locked (1 when
//     the weights and KV pool are mlock'ed, 0 when only prefaulted or not at all), inferd_model_resident_bytes,
//     inferd_model_reload_switch_seconds (gauge: the latest reload, request to switch-over),
//     inferd_model_reload_seconds_total (counter: over successful reloads).
//   {model, result} (ok | failed): inferd_model_reloads_total.
//   {method, code} (4 methods; OK always, other codes once seen): inferd_control_requests_total, present only
//     when the Control service is enabled.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <vector>

#include "inferd/lifecycle_stats.h"

namespace inferd::metrics {

class LifecycleCollector : public prometheus::Collectable {
 public:
  // Called on every scrape, from the metrics thread; they must be thread-safe. `control` may be empty
  // (Control service off: no inferd_control_requests_total).
  LifecycleCollector(std::function<std::vector<PoolLifecycleStats>()> pools, std::function<ControlStats()> control);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<std::vector<PoolLifecycleStats>()> pools_;
  std::function<ControlStats()> control_;
};

}  // namespace inferd::metrics
