#include "metrics/lifecycle_collector.h"

#include "inferd/serving_stats.h"
#include "metrics/family_builder.h"

namespace inferd::metrics {
namespace {

using prometheus::MetricType;

template <typename Value>
prometheus::MetricFamily PerModel(const char* name, const char* help, MetricType type,
                                  const std::vector<PoolLifecycleStats>& pools, Value value) {
  FamilyBuilder f(name, help, type);
  for (const PoolLifecycleStats& p : pools) f.Add({{"model", p.model}}, static_cast<double>(value(p)));
  return f.Take();
}

}  // namespace

LifecycleCollector::LifecycleCollector(std::function<std::vector<PoolLifecycleStats>()> pools,
                                       std::function<ControlStats()> control)
    : pools_(std::move(pools)), control_(std::move(control)) {}

std::vector<prometheus::MetricFamily> LifecycleCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  const std::vector<PoolLifecycleStats> pools = pools_ ? pools_() : std::vector<PoolLifecycleStats>{};
  const auto gauge = MetricType::Gauge;
  const auto counter = MetricType::Counter;
  if (!pools.empty()) {
    FamilyBuilder phases("inferd_model_load_phase_seconds",
                         "Duration of each phase of the serving model's load (tokenizer, open, copy, kv_pool, "
                         "residency, warmup_<class>, total).",
                         gauge);
    for (const PoolLifecycleStats& p : pools) {
      for (const auto& [phase, seconds] : p.load_phases) phases.Add({{"model", p.model}, {"phase", phase}}, seconds);
    }
    out.push_back(phases.Take());
    out.push_back(PerModel("inferd_model_generation", "Loads of the pool's serving model: 1 first, +1 per reload.",
                           gauge, pools, [](const PoolLifecycleStats& p) { return p.generation; }));
    out.push_back(PerModel("inferd_model_weights_locked",
                           "1 when the serving model's weights and KV pool are locked in RAM (mlock), else 0.", gauge,
                           pools, [](const PoolLifecycleStats& p) { return p.residency == "locked" ? 1 : 0; }));
    out.push_back(PerModel("inferd_model_resident_bytes",
                           "Bytes of the serving model's weights and KV pool kept resident (locked or prefaulted).",
                           gauge, pools,
                           [](const PoolLifecycleStats& p) { return p.residency == "none" ? 0 : p.resident_bytes; }));
    out.push_back(PerModel("inferd_model_reload_switch_seconds",
                           "The latest successful reload: from the request to new requests going to the new model.",
                           gauge, pools, [](const PoolLifecycleStats& p) { return p.last_reload_seconds; }));
    out.push_back(PerModel("inferd_model_reload_seconds_total",
                           "Seconds from request to switch-over, summed over successful reloads.", counter, pools,
                           [](const PoolLifecycleStats& p) { return p.reload_seconds_total; }));
    FamilyBuilder reloads("inferd_model_reloads_total",
                          "Reloads of a pool by result: ok (switched) or failed (the old model kept serving).",
                          counter);
    for (const PoolLifecycleStats& p : pools) {
      reloads.Add({{"model", p.model}, {"result", "ok"}}, static_cast<double>(p.reloads_ok));
      reloads.Add({{"model", p.model}, {"result", "failed"}}, static_cast<double>(p.reloads_failed));
    }
    out.push_back(reloads.Take());
  }
  if (control_) {
    const ControlStats c = control_();
    FamilyBuilder f("inferd_control_requests_total",
                    "inferd.v1.Control calls by method and gRPC status code (access refusals included).", counter);
    for (size_t m = 0; m < kControlMethods.size(); ++m) {
      for (size_t code = 0; code < static_cast<size_t>(kNumGrpcCodes); ++code) {
        if (code != 0 && c.calls[m][code] == 0) continue;
        f.Add({{"method", kControlMethods[m]}, {"code", GrpcCodeName(static_cast<int>(code))}},
              static_cast<double>(c.calls[m][code]));
      }
    }
    out.push_back(f.Take());
  }
  return out;
}

}  // namespace inferd::metrics
