// Warm-up of one model pool before it serves (start-up and every reload): requests shaped like every class of
// step the scheduler produces, so the first real request of each shape costs about what a steady-state one
// does (kernels selected and their buffers allocated, pages touched, the step-cost model fitted).
//
// The shapes come from the pool's own settings, the ones its scheduler runs on (models[].scheduler,
// kv_cache, limits) and from the model runner's GEMV row limit (ops::kGemvMaxRows through
// worker::ModelRunner::GemvMaxRows), never from a second copy of them. Torch-free: runs against any Engine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "inferd/config.h"
#include "inferd/engine.h"

namespace inferd::daemon {

// What the plan needs to know about the loaded model and its KV pool.
struct WarmupModel {
  int32_t max_model_len = 0;  // context limit
  int32_t vocab_size = 0;     // token ids are drawn below it
  int32_t kv_num_blocks = 0;  // the engine's pool
  int32_t block_size = 16;
  int32_t gemv_max_rows = 64;  // linear layers of up to this many rows run the GEMV kernel, more run GEMM
};

// One warm-up request group: its requests are submitted together and waited for.
struct WarmupGroup {
  std::vector<int32_t> prompt_lengths;  // one Generate per entry, or the Recommend's context
  std::vector<int32_t> max_tokens;      // of each Generate (same length as prompt_lengths; empty for a Recommend)
  int32_t candidates = 0;               // > 0: one Recommend with this many candidates
};

struct WarmupClass {
  std::string name;  // prefill | decode | recommend
  // Shape label of each group, e.g. "decode batch 8", "prefill 264 tokens (chunks of 256)".
  std::vector<std::string> labels;
  std::vector<WarmupGroup> groups;
};

// Shape classes (config.warmup.classes, in that order):
//  prefill:   one prompt longer than prefill_chunk_tokens (a full chunk, then a chunk reading the cached one),
//             max_batched_tokens / prefill_chunk_tokens of them at once (a step that fills the token budget),
//             and a short prompt (<= gemv_max_rows tokens, the GEMV path).
//  decode:    cap short prompts at once (all prefilled in one step), with max_tokens staggered so that the
//             decode-only steps that follow run exactly B sequences for each bucket B, largest first: 1, 2, 4, ...
//             below the cap, the cap itself, and gemv_max_rows + 1 (the first GEMM decode) when below it;
//             cap = min(max_running, max_batched_tokens), less while the KV pool cannot hold them.
//  recommend: one Recommend of 1, 8 and 32 candidates (capped by limits.max_candidates): steps of a few rows,
//             of up to gemv_max_rows (8 candidates of 4-6 tokens) and beyond it (32 candidates).
// Lengths are capped by max_model_len and the KV pool. An empty plan when warm-up is disabled.
std::vector<WarmupClass> PlanWarmup(const ModelPoolConfig& config, const WarmupModel& model);

struct WarmupTiming {
  std::string name;    // class
  double seconds = 0;  // over every round
  int32_t requests = 0;
};

struct WarmupReport {
  std::vector<WarmupTiming> classes;  // in plan order
  double total_seconds = 0;
};

// Rounds over the whole plan. One: its steps of every shape already give the step-cost model behind realtime
// admission its first observations of each.
inline constexpr int32_t kWarmupRounds = 1;

// Runs `plan` kWarmupRounds times on `engine`, one group after the other; `before_group` (may be empty) is
// called before each group is submitted (a reload's warm-up waits there for the serving pool's realtime work:
// daemon/realtime_yield.h). Recommends carry a far deadline so admission never refuses them while the cost
// model is still coarse. Throws std::runtime_error naming the shape when a warm-up request is refused or fails.
WarmupReport RunWarmup(Engine& engine, const std::vector<WarmupClass>& plan, int32_t vocab_size,
                       const std::function<void()>& before_group = nullptr);

}  // namespace inferd::daemon
