// DeepSeekMoE routing and token grouping by expert on CUDA, the semantics of ops::MoeRoute (src/ops/moe.h):
// scores = softmax or sigmoid of the fp32 router logits; selection over scores (+ bias for noaux_tc);
// group-limited selection keeps the topk_group best groups (group score: max, or for noaux_tc the sum of the
// group's top two) and gives the other groups' experts a choice value of 0; weights are the unbiased scores
// of the chosen experts, optionally renormalised (sum + 1e-20), times routed_scaling_factor.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace inferd::kernels {

enum class MoeScoringKind : int { kSoftmax = 0, kSigmoid = 1 };
enum class MoeSelectKind : int { kGreedy = 0, kGroupLimited = 1, kNoauxTc = 2 };

struct MoeRouteArgs {
  const float* logits = nullptr;  // [num_tokens, num_experts] contiguous float32
  const float* bias = nullptr;    // [num_experts] float32, or nullptr (read for kNoauxTc only)
  int64_t* topk_ids = nullptr;    // [num_tokens, top_k] out, best choice first (ties: lower expert id)
  float* topk_weights = nullptr;  // [num_tokens, top_k] out
  int64_t num_tokens = 0;
  int64_t num_experts = 0;  // <= kMoeMaxExperts
  int64_t top_k = 1;        // <= num_experts (and <= the experts in topk_group groups)
  int64_t n_group = 1;      // divides num_experts (group-limited / noaux_tc)
  int64_t topk_group = 1;   // <= n_group
  MoeScoringKind scoring = MoeScoringKind::kSoftmax;
  MoeSelectKind select = MoeSelectKind::kGreedy;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
};

constexpr int64_t kMoeMaxExperts = 4096;

// cudaErrorInvalidValue for arguments outside the limits above (nothing is launched).
cudaError_t MoeRoute(const MoeRouteArgs& args, cudaStream_t stream);

// Groups the flat choices by expert, stably: order lists the indices i of ids in ascending expert order and,
// within an expert, ascending i (the result of a stable argsort of ids). Ids outside [0, num_experts) are
// left out of counts and order (order's tail past sum(counts) is then unspecified).
// ids:     [num_entries] int64 (topk_ids flattened)
// counts:  [num_experts] int64 out
// offsets: [num_experts + 1] int64 out, exclusive prefix sum of counts
// order:   [num_entries] int64 out
cudaError_t GroupByExpert(const int64_t* ids, int64_t num_entries, int64_t num_experts, int64_t* counts,
                          int64_t* offsets, int64_t* order, cudaStream_t stream);

}  // namespace inferd::kernels
