#include "metrics/engine_collector.h"

#include "metrics/family_builder.h"

namespace inferd::metrics {
namespace {

using prometheus::MetricType;

// FinishReason (minus kNone) in enum order, as exported in the `outcome` label.
FinishReason OutcomeReason(int i) {
  return static_cast<FinishReason>(i + 1);
}

}  // namespace

EngineMetrics::EngineMetrics(std::string model) : model_(std::move(model)) {}

void EngineMetrics::Record(const EngineStats& s) {
  if (!recording_.load(std::memory_order_acquire)) return;
  for (const FinishedRequestStats& f : s.finished) {
    PerClass& c = classes_[static_cast<size_t>(f.cls)];
    c.duration.Observe(f.e2e_seconds);
    c.queue.Observe(f.queue_seconds);
    if (f.generated_tokens > 0 && !f.is_recommend) c.ttft.Observe(f.ttft_seconds);
    c.itl.ObserveAll(f.inter_token_seconds);
    c.prompt_tokens.Add(f.prompt_tokens);
    c.cached_prompt_tokens.Add(f.cached_prompt_tokens);
    c.generated_tokens.Add(f.generated_tokens);
    const int outcome = static_cast<int>(f.finish_reason) - 1;
    if (outcome >= 0 && outcome < kNumOutcomes) c.outcomes[static_cast<size_t>(outcome)].Add(1);
  }
  for (int k = 0; k < kNumRequestClasses; ++k) {
    classes_[static_cast<size_t>(k)].running.Set(s.running_requests[static_cast<size_t>(k)]);
    classes_[static_cast<size_t>(k)].waiting.Set(s.waiting_requests[static_cast<size_t>(k)]);
  }
  const int32_t tokens = s.prefill_tokens + s.decode_tokens;
  if (tokens > 0) {
    (s.prefill_tokens > 0 ? prefill_step_ : decode_step_).Observe(s.step_seconds);
    batch_size_.Observe(s.batch_seqs);
    step_tokens_.Observe(tokens);
    busy_seconds_.Add(s.step_seconds);
    steps_.Add(1);
  }
  if (tokens > 0 && s.predicted_seconds > 0) {
    predicted_seconds_.Add(s.predicted_seconds);
    observed_seconds_.Add(s.step_seconds);
    if (s.realtime_active) {
      realtime_active_seconds_.Add(s.step_seconds);
      realtime_active_complex_seconds_.Add(s.step_seconds * s.complex_predicted_seconds / s.predicted_seconds);
    }
  }
  if (s.complex_capped) held_back_steps_.Add(1);
  realtime_refused_total_.Set(static_cast<double>(s.realtime_refused_total));
  realtime_predicted_late_total_.Set(static_cast<double>(s.realtime_predicted_late_total));
  realtime_late_total_.Set(static_cast<double>(s.realtime_late_total));
  cost_error_.Set(s.cost_model_median_error);
  cost_ready_.Set(s.cost_model_ready ? 1.0 : 0.0);
  preemptions_total_.Set(static_cast<double>(s.preemptions_total));
  prefix_queried_total_.Set(static_cast<double>(s.prefix_queried_tokens_total));
  prefix_hit_total_.Set(static_cast<double>(s.prefix_hit_tokens_total));
  kv_usage_.Set(s.kv_usage);
  kv_blocks_.Set(s.kv_num_blocks);
}

std::shared_ptr<EngineMetrics> EngineCollector::AddModel(const std::string& model) {
  auto m = std::make_shared<EngineMetrics>(model);
  std::lock_guard<std::mutex> lock(mu_);
  models_.push_back(m);
  return m;
}

std::vector<prometheus::MetricFamily> EngineCollector::Collect() const {
  std::vector<std::shared_ptr<EngineMetrics>> models;
  {
    std::lock_guard<std::mutex> lock(mu_);
    models = models_;
  }
  using PerClass = EngineMetrics::PerClass;
  std::vector<prometheus::MetricFamily> out;
  // One family per name across every model; `get` picks the value of one (model, class).
  auto per_class_hist = [&](const char* name, const char* help, auto get) {
    FamilyBuilder f(name, help, MetricType::Histogram);
    for (const auto& m : models) {
      for (int k = 0; k < kNumRequestClasses; ++k) {
        const PerClass& c = m->classes_[static_cast<size_t>(k)];
        f.Add({{"model", m->model_}, {"class", RequestClassName(static_cast<RequestClass>(k))}}, get(c).Read());
      }
    }
    out.push_back(f.Take());
  };
  auto per_class_value = [&](const char* name, const char* help, MetricType type, auto get) {
    FamilyBuilder f(name, help, type);
    for (const auto& m : models) {
      for (int k = 0; k < kNumRequestClasses; ++k) {
        const PerClass& c = m->classes_[static_cast<size_t>(k)];
        f.Add({{"model", m->model_}, {"class", RequestClassName(static_cast<RequestClass>(k))}}, get(c).Read());
      }
    }
    out.push_back(f.Take());
  };
  auto per_model = [&](const char* name, const char* help, MetricType type, auto get) {
    FamilyBuilder f(name, help, type);
    for (const auto& m : models) {
      if constexpr (std::is_same_v<decltype(get(*m)), double>) {
        f.Add({{"model", m->model_}}, get(*m));
      } else {
        f.Add({{"model", m->model_}}, get(*m).Read());
      }
    }
    out.push_back(f.Take());
  };

  per_class_hist("inferd_request_duration_seconds", "Time from arrival to the end of a request, by class.",
                 [](const PerClass& c) -> const AtomicHistogram& { return c.duration; });
  per_class_hist("inferd_request_queue_seconds", "Time a request waited before it was first scheduled.",
                 [](const PerClass& c) -> const AtomicHistogram& { return c.queue; });
  per_class_hist("inferd_time_to_first_token_seconds", "Time from arrival to the first generated token (Generate).",
                 [](const PerClass& c) -> const AtomicHistogram& { return c.ttft; });
  per_class_hist("inferd_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.",
                 [](const PerClass& c) -> const AtomicHistogram& { return c.itl; });
  per_class_value("inferd_prompt_tokens_total",
                  "Prompt (or Recommend context and candidate) tokens of finished requests.", MetricType::Counter,
                  [](const PerClass& c) -> const AtomicCounter& { return c.prompt_tokens; });
  per_class_value("inferd_cached_prompt_tokens_total",
                  "Prompt tokens of finished requests served from the prefix cache.", MetricType::Counter,
                  [](const PerClass& c) -> const AtomicCounter& { return c.cached_prompt_tokens; });
  per_class_value("inferd_generated_tokens_total", "Tokens generated for finished requests.", MetricType::Counter,
                  [](const PerClass& c) -> const AtomicCounter& { return c.generated_tokens; });
  {
    FamilyBuilder f("inferd_requests_total", "Requests the engine finished, by outcome (why they ended).",
                    MetricType::Counter);
    for (const auto& m : models) {
      for (int k = 0; k < kNumRequestClasses; ++k) {
        for (int o = 0; o < kNumOutcomes; ++o) {
          f.Add({{"model", m->model_},
                 {"class", RequestClassName(static_cast<RequestClass>(k))},
                 {"outcome", FinishReasonName(OutcomeReason(o))}},
                m->classes_[static_cast<size_t>(k)].outcomes[static_cast<size_t>(o)].Read());
        }
      }
    }
    out.push_back(f.Take());
  }
  per_class_value("inferd_running_requests", "Requests scheduled and not finished, by class.", MetricType::Gauge,
                  [](const PerClass& c) -> const AtomicGauge& { return c.running; });
  per_class_value("inferd_waiting_requests", "Requests queued and not yet scheduled, by class.", MetricType::Gauge,
                  [](const PerClass& c) -> const AtomicGauge& { return c.waiting; });
  per_class_value("inferd_queue_capacity_requests",
                  "Most requests the class's queue holds; beyond it Submit answers RESOURCE_EXHAUSTED.",
                  MetricType::Gauge, [](const PerClass& c) -> const AtomicGauge& { return c.queue_capacity; });

  auto sum_classes = [](const EngineMetrics& m, bool running) {
    double v = 0;
    for (const PerClass& c : m.classes_) v += running ? c.running.Read() : c.waiting.Read();
    return v;
  };
  per_model("inferd_gateway_queued_requests",
            "Inference gateway TotalQueuedRequests: requests queued in this pool and not yet scheduled, all classes.",
            MetricType::Gauge, [&](const EngineMetrics& m) -> double { return sum_classes(m, false); });
  per_model("inferd_gateway_running_requests",
            "Inference gateway TotalRunningRequests: requests scheduled and not finished in this pool, all classes.",
            MetricType::Gauge, [&](const EngineMetrics& m) -> double { return sum_classes(m, true); });
  per_model("inferd_kv_cache_usage_ratio",
            "Inference gateway KVCacheUtilization: share of KV cache blocks in use (0..1).", MetricType::Gauge,
            [](const EngineMetrics& m) -> const AtomicGauge& { return m.kv_usage_; });
  per_model("inferd_kv_cache_blocks", "KV cache blocks in the pool.", MetricType::Gauge,
            [](const EngineMetrics& m) -> const AtomicGauge& { return m.kv_blocks_; });
  per_model("inferd_preemptions_total", "Sequences preempted to free KV cache blocks.", MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicGauge& { return m.preemptions_total_; });
  per_model("inferd_prefix_cache_queried_tokens_total", "Prompt tokens looked up in the prefix cache.",
            MetricType::Counter, [](const EngineMetrics& m) -> const AtomicGauge& { return m.prefix_queried_total_; });
  per_model("inferd_prefix_cache_hit_tokens_total", "Prompt tokens found in the prefix cache.", MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicGauge& { return m.prefix_hit_total_; });
  per_model("inferd_engine_busy_seconds_total",
            "Time the engine thread spent in steps that ran the model; its rate is the busy ratio.",
            MetricType::Counter, [](const EngineMetrics& m) -> const AtomicCounter& { return m.busy_seconds_; });
  per_model("inferd_engine_steps_total", "Engine steps that ran the model.", MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicCounter& { return m.steps_; });

  per_model("inferd_realtime_refused_total",
            "Realtime requests refused at submit: the step-cost model predicted they would miss their deadline.",
            MetricType::Counter, [](const EngineMetrics& m) -> const AtomicGauge& { return m.realtime_refused_total_; });
  per_model("inferd_realtime_predicted_late_total",
            "Realtime requests predicted to miss their deadline and served anyway (realtime_overload: best_effort).",
            MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicGauge& { return m.realtime_predicted_late_total_; });
  per_model("inferd_realtime_late_total", "Realtime requests that finished after their deadline.",
            MetricType::Counter, [](const EngineMetrics& m) -> const AtomicGauge& { return m.realtime_late_total_; });
  per_model("inferd_step_cost_predicted_seconds_total",
            "Step time the step-cost model predicted, over the steps it predicted.", MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicCounter& { return m.predicted_seconds_; });
  per_model("inferd_step_cost_observed_seconds_total",
            "Measured time of the steps the step-cost model predicted.", MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicCounter& { return m.observed_seconds_; });
  per_model("inferd_step_cost_median_error_ratio",
            "Median relative error of the step-cost model over its recent steps (0..).", MetricType::Gauge,
            [](const EngineMetrics& m) -> const AtomicGauge& { return m.cost_error_; });
  per_model("inferd_step_cost_model_ready",
            "1 when the step-cost model is accurate enough to bound complex work and refuse realtime work.",
            MetricType::Gauge, [](const EngineMetrics& m) -> const AtomicGauge& { return m.cost_ready_; });
  per_model("inferd_realtime_active_seconds_total", "Time of steps that ran while realtime work waited or ran.",
            MetricType::Counter, [](const EngineMetrics& m) -> const AtomicCounter& { return m.realtime_active_seconds_; });
  per_model("inferd_realtime_active_complex_seconds_total",
            "Complex work's part of those steps (by the cost model's split); over the total, complex work's share.",
            MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicCounter& { return m.realtime_active_complex_seconds_; });
  per_model("inferd_complex_held_back_steps_total",
            "Steps in which the realtime step budget held complex chunks back.", MetricType::Counter,
            [](const EngineMetrics& m) -> const AtomicCounter& { return m.held_back_steps_; });

  auto per_model_hist = [&](const char* name, const char* help, auto get) {
    FamilyBuilder f(name, help, MetricType::Histogram);
    for (const auto& m : models) f.Add({{"model", m->model_}}, get(*m).Read());
    out.push_back(f.Take());
  };
  per_model_hist("inferd_prefill_step_seconds", "Duration of engine steps that carried prefill tokens.",
                 [](const EngineMetrics& m) -> const AtomicHistogram& { return m.prefill_step_; });
  per_model_hist("inferd_decode_step_seconds", "Duration of engine steps that carried decode tokens only.",
                 [](const EngineMetrics& m) -> const AtomicHistogram& { return m.decode_step_; });
  per_model_hist("inferd_batch_size", "Sequences per engine step.",
                 [](const EngineMetrics& m) -> const AtomicHistogram& { return m.batch_size_; });
  per_model_hist("inferd_step_tokens", "Tokens (prefill plus decode) per engine step.",
                 [](const EngineMetrics& m) -> const AtomicHistogram& { return m.step_tokens_; });
  return out;
}

}  // namespace inferd::metrics
