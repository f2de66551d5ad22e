// DeepSeekMoE routing and grouped expert execution. Routing runs in float32.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

namespace inferd::ops {

enum class MoeScoring { kSoftmax, kSigmoid };
enum class MoeTopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

struct MoeRoutingParams {
  MoeScoring scoring = MoeScoring::kSoftmax;
  MoeTopkMethod method = MoeTopkMethod::kGreedy;
  int64_t top_k = 1;
  int64_t n_group = 1;      // group-limited / noaux_tc: experts split into n_group equal groups
  int64_t topk_group = 1;   // groups kept per token
  bool norm_topk_prob = false;  // renormalise the chosen weights to sum 1 before scaling
  double routed_scaling_factor = 1.0;
};

// Picks experts per token. Selection uses scores (+ bias for noaux_tc); weights are the unbiased scores of
// the chosen experts, optionally renormalised, times routed_scaling_factor.
// Group score: max of the group (group_limited_greedy) or sum of its top 2 biased scores (noaux_tc).
std::pair<at::Tensor, at::Tensor> MoeRoute(
    const at::Tensor& router_logits,  // [num_tokens, num_experts] float32
    const at::Tensor& bias,           // [num_experts] float32, or undefined (noaux_tc only)
    const MoeRoutingParams& params);
// -> (topk_ids [num_tokens, top_k] int64, topk_weights [num_tokens, top_k] float32)

// Stable grouping of flat expert choices (CUDA kernel on CUDA tensors, argsort + bincount on CPU):
// order = argsort(flat_ids, stable) [n] int64, counts [num_experts] int64, both on flat_ids' device.
std::pair<at::Tensor, at::Tensor> GroupByExpert(const at::Tensor& flat_ids,  // [n] int64 in [0, num_experts)
                                                int64_t num_experts);
// -> (order, counts)

// Runs the routed experts and adds the shared experts' MLP when given (Linear(SiluAndMul(Linear(x,
// shared_gate_up)), shared_down), summed after the routed ones). Tokens are grouped by expert (one stable
// sort), each expert runs one matmul pair over its tokens, results are weighted and scattered back. No
// per-token loops. When no expert has more than kGemvMaxRows tokens (decode steps on CPU), all experts'
// products, with the shared MLP's where they run the kernel ops::Linear would, run as two segmented GEMV
// pool calls (ops::SegmentedGemvLinears): each expert's weights are read once for all of its rows; the result
// has the same bits as the general path's.
// Expert e's weights are w_gate_up[e] (gate rows first) and w_down[e]: separate tensors, each contiguous (views of a
// checkpoint's mapping wherever the file puts them, or slices of one stack). Tokens are grouped and their
// results summed in expert-id order.
at::Tensor MoeExperts(const at::Tensor& x,                       // [num_tokens, hidden]
                      const std::vector<at::Tensor>& w_gate_up,  // [num_experts] of [2 * inter, hidden]
                      const std::vector<at::Tensor>& w_down,     // [num_experts] of [hidden, inter]
                      const at::Tensor& topk_ids,                // [num_tokens, top_k] int64
                      const at::Tensor& topk_weights,            // [num_tokens, top_k] float32
                      const at::Tensor& shared_gate_up = {},     // [2 * shared_inter, hidden], or undefined
                      const at::Tensor& shared_down = {});       // [hidden, shared_inter], or undefined
// -> [num_tokens, hidden], x.dtype

// Reference for tests: per-token, per-choice loop over stacked weights ([num_experts, 2 * inter, hidden] and
// [num_experts, hidden, inter]).
at::Tensor MoeExpertsNaive(const at::Tensor& x, const at::Tensor& w_gate_up, const at::Tensor& w_down,
                           const at::Tensor& topk_ids, const at::Tensor& topk_weights);

}  // namespace inferd::ops
