// Tunables of the scheduler. config/ fills this from YAML; defaults are documented per field.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "inferd/batch.h"

namespace inferd {

struct SchedulerOptions {
  // Token budget of one step: decode tokens plus prefill chunk tokens.
  int32_t max_num_batched_tokens = 2048;
  // Cap on sequences holding a running slot (decoding or mid-prefill).
  int32_t max_running = 256;
  // Largest prefill chunk one sequence may take in a step, so a long prompt cannot monopolise it.
  int32_t max_prefill_chunk_tokens = 512;
  // Bounded waiting queues: requests admitted but not yet started, per class. Beyond this a submit
  // fails at once with RESOURCE_EXHAUSTED and a retry hint.
  int32_t max_waiting_realtime = 256;
  int32_t max_waiting_complex = 1024;
  // EDF key of a realtime request without its own deadline: arrival + this. Ordering only; a request
  // expires (DEADLINE_EXCEEDED) only at a deadline it carries itself.
  std::chrono::milliseconds realtime_default_deadline{200};
  // Starvation bound: a complex sequence waiting this long (since arrival or preemption) is promoted
  // into the realtime tier with deadline waiting_since + this. At most one sequence is promoted at a time
  // (the longest-waiting one), so the bound guarantees complex progress under realtime load without
  // letting a complex backlog outrank realtime work.
  std::chrono::milliseconds complex_max_wait{5000};
  // Context limit of the model (prompt + generated). Also capped by the pool size in tokens.
  int32_t max_model_len = 4096;
  // Model EOS ids; a request may add its own stop token ids.
  std::vector<TokenId> eos_token_ids;
  // Most candidates one Recommend may carry.
  int32_t max_candidates = 1024;

  // Realtime protection (the step-cost model predicts each step's time from its contents).
  // While realtime work is waiting or running, complex chunks join a step only while the step's predicted
  // time stays within this budget...
  std::chrono::microseconds realtime_step_budget{25000};
  // ...except that complex work, when it has any, keeps at least this share of each step's predicted time
  // and of its token budget (and at least one chunk), so it never stalls.
  double complex_min_share = 0.2;
  // While other realtime requests wait or run, one realtime request's prefill chunks take at most this share
  // of max_num_batched_tokens in a step (a large Recommend is interleaved, not run to completion first).
  // Budget the others leave unused goes back to it in the same step.
  double realtime_max_request_share = 0.5;
  // A realtime request whose deadline the cost model predicts it cannot meet (given the realtime work
  // admitted ahead of it) is refused with RESOURCE_EXHAUSTED and a retry hint; false serves it anyway and
  // counts it as predicted late.
  bool realtime_refuse_unmeetable = true;
};

}  // namespace inferd
