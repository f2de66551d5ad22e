#include "scheduler/deadline_admission.h"

#include <algorithm>

namespace inferd::scheduler {
namespace {

int32_t CeilDiv(int64_t a, int64_t b) { return static_cast<int32_t>((a + b - 1) / std::max<int64_t>(b, 1)); }

// Prefill of n tokens from position start, with `logits` rows wanting logits.
StepFeatures Prefill(int64_t start, int64_t n, int64_t logits) {
  StepFeatures f;
  const double dn = static_cast<double>(n);
  f.prefill_tokens = dn;
  f.logit_rows = static_cast<double>(logits);
  f.attention = (dn * static_cast<double>(start) + dn * (dn + 1) / 2) / 1000.0;
  return f;
}

}  // namespace

RealtimeWork EstimateRealtimeWork(const RequestSpec& spec, const StepCostCoefficients& cost,
                                  const SchedulerOptions& options, int32_t block_size) {
  StepFeatures f;
  int32_t steps = 0;
  const int64_t ctx = static_cast<int64_t>(spec.prompt.size());
  const int64_t chunk = std::max(1, options.max_prefill_chunk_tokens);
  if (spec.is_recommend()) {
    const int64_t bs = std::max(1, block_size);
    const int64_t cached = ((ctx - 1) / bs) * bs;  // full context blocks shared through the prefix cache
    if (cached > 0) {
      f += Prefill(0, ctx, 0);
      steps += CeilDiv(ctx, chunk);
    }
    int64_t fed_total = 0;
    for (const auto& cand : spec.candidates) {
      const int64_t c = static_cast<int64_t>(cand.size());
      const int64_t fed = ctx + c - cached;
      f += Prefill(cached, fed, c);
      fed_total += fed;
    }
    steps += std::max(1, CeilDiv(fed_total, options.max_num_batched_tokens));
  } else {
    const int64_t max_tokens =
        spec.max_tokens > 0 ? spec.max_tokens : std::max<int64_t>(1, options.max_model_len - ctx);
    f += Prefill(0, ctx, 1);
    steps += CeilDiv(ctx, chunk);
    const int64_t decodes = max_tokens - 1;
    f.decode_rows += static_cast<double>(decodes);
    f.logit_rows += static_cast<double>(decodes);
    f.attention += (static_cast<double>(decodes) * static_cast<double>(ctx) +
                    static_cast<double>(decodes) * static_cast<double>(decodes + 1) / 2) / 1000.0;
    steps += static_cast<int32_t>(decodes);
  }
  RealtimeWork w;
  w.steps = steps;
  w.marginal_seconds = cost.Predict(f);
  f.steps = steps;
  w.seconds = cost.Predict(f);
  return w;
}

AdmissionDecision PredictRealtimeLatency(const AdmissionInput& in, const SchedulerOptions& options) {
  const double share = in.complex_present ? std::clamp(options.complex_min_share, 0.0, 0.95) : 0.0;
  AdmissionDecision d;
  d.predicted_seconds = std::max(in.own.steps * in.step_seconds,
                                 (in.ahead_marginal_seconds + in.own.seconds) / (1.0 - share));
  d.meets = d.predicted_seconds <= in.seconds_to_deadline;
  return d;
}

}  // namespace inferd::scheduler
