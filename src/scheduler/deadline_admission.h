// Deadline-aware admission of realtime requests: a pure policy over plain inputs. The engine calls it on the
// submitting thread with the cost model's coefficients, the realtime work already admitted and the recent
// step time; a request that cannot make its deadline is refused at once instead of being served late.
#pragma once

#include <cstdint>

#include "scheduler/scheduler_options.h"
#include "scheduler/sequence.h"
#include "scheduler/step_cost_model.h"

namespace inferd::scheduler {

struct RealtimeWork {
  double marginal_seconds = 0.0;  // the request's own chunks, without the per-step fixed cost
  double seconds = 0.0;           // marginal + steps x the per-step fixed cost
  int32_t steps = 0;              // engine steps it needs at least (prefill chunks, then one per decode)
};

// Predicted work of `spec` alone. Recommend: the context prefilled once (when it has a shareable full block),
// then each candidate from the last cached block on, scored at every candidate token. Generate: the prompt in
// chunks, then max_tokens - 1 decodes (max_tokens 0 counts up to max_model_len).
RealtimeWork EstimateRealtimeWork(const RequestSpec& spec, const StepCostCoefficients& cost,
                                  const SchedulerOptions& options, int32_t block_size);

struct AdmissionInput {
  RealtimeWork own;
  double ahead_marginal_seconds = 0.0;  // admitted, unfinished realtime work (every one counts as ahead)
  double step_seconds = 0.0;            // recent mean wall time of a step
  bool complex_present = false;         // complex work is queued or running (it keeps its minimum share)
  double seconds_to_deadline = 0.0;
};

struct AdmissionDecision {
  bool meets = true;
  double predicted_seconds = 0.0;  // arrival -> finish
};

// Latency = max(own steps x step time, (work ahead + own work) / (1 - complex share)): the request needs its
// steps, and realtime work gets at most 1 - complex_min_share of the engine while complex work is present.
AdmissionDecision PredictRealtimeLatency(const AdmissionInput& in, const SchedulerOptions& options);

}  // namespace inferd::scheduler
