#include "ops/moe.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "ops/cuda_ops.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace inferd::ops {

std::pair<at::Tensor, at::Tensor> MoeRoute(const at::Tensor& router_logits, const at::Tensor& bias,
                                           const MoeRoutingParams& p) {
  TORCH_CHECK(router_logits.scalar_type() == at::kFloat, "MoeRoute: router logits must be float32");
  if (router_logits.is_cuda()) return CudaMoeRoute(router_logits, bias, p);
  const int64_t num_tokens = router_logits.size(0);
  const int64_t num_experts = router_logits.size(1);
  at::Tensor scores = p.scoring == MoeScoring::kSoftmax ? router_logits.softmax(-1) : router_logits.sigmoid();
  at::Tensor choice = scores;
  if (p.method == MoeTopkMethod::kNoauxTc && bias.defined()) choice = scores + bias.to(at::kFloat).unsqueeze(0);
  at::Tensor topk_ids;
  if (p.method == MoeTopkMethod::kGreedy) {
    topk_ids = std::get<1>(choice.topk(p.top_k, -1, /*largest=*/true, /*sorted=*/false));
  } else {
    TORCH_CHECK(p.n_group > 0 && num_experts % p.n_group == 0, "MoeRoute: n_group must divide the expert count");
    at::Tensor grouped = choice.view({num_tokens, p.n_group, num_experts / p.n_group});
    at::Tensor group_scores = p.method == MoeTopkMethod::kNoauxTc
                                  ? std::get<0>(grouped.topk(2, -1)).sum(-1)
                                  : std::get<0>(grouped.max(-1));
    at::Tensor group_idx = std::get<1>(group_scores.topk(p.topk_group, -1, true, false));
    at::Tensor group_mask = at::zeros_like(group_scores).scatter_(1, group_idx, 1.0);
    at::Tensor score_mask = group_mask.unsqueeze(-1).expand_as(grouped).reshape({num_tokens, num_experts});
    at::Tensor masked = choice.masked_fill(score_mask.logical_not(), 0.0);
    topk_ids = std::get<1>(masked.topk(p.top_k, -1, true, false));
  }
  at::Tensor weights = scores.gather(1, topk_ids);
  if (p.norm_topk_prob) weights = weights / (weights.sum(-1, /*keepdim=*/true) + 1e-20);
  weights = weights * p.routed_scaling_factor;
  return {topk_ids, weights};
}

at::Tensor MoeExperts(const at::Tensor& x, const at::Tensor& w_gate_up, const at::Tensor& w_down,
                      const at::Tensor& topk_ids, const at::Tensor& topk_weights, const std::vector<int64_t>& slot_of) {
  const int64_t num_experts = w_gate_up.size(0);
  TORCH_CHECK(slot_of.empty() || static_cast<int64_t>(slot_of.size()) == num_experts,
              "MoeExperts: one slot per expert");
  auto slot = [&](int64_t e) { return slot_of.empty() ? e : slot_of[static_cast<size_t>(e)]; };
  const int64_t top_k = topk_ids.size(1);
  at::Tensor flat_ids = topk_ids.reshape({-1});
  auto [order, counts_dev] = GroupByExpert(flat_ids, num_experts);  // choices grouped by expert, ascending
  at::Tensor token_of = at::floor_divide(order, top_k);             // [num_tokens * top_k]
  at::Tensor counts = counts_dev.to(at::kCPU);
  const int64_t* count = counts.data_ptr<int64_t>();
  at::Tensor xs = x.index_select(0, token_of);
  const std::vector<int64_t> rows(count, count + num_experts);
  at::Tensor ys;
  if (!rows.empty() && *std::max_element(rows.begin(), rows.end()) <= kGemvMaxRows &&
      SegmentedGemvEligible(xs, w_gate_up) && SegmentedGemvEligible(xs, w_down)) {
    // Decode-sized groups: all experts' products in two pool calls, each expert's weights read once.
    ys = SegmentedGemvLinear(SiluAndMul(SegmentedGemvLinear(xs, w_gate_up, rows, slot_of)), w_down, rows, slot_of);
  } else {
    ys = at::empty_like(xs);
    int64_t offset = 0;
    for (int64_t e = 0; e < num_experts; ++e) {
      const int64_t n = count[e];
      if (n == 0) continue;
      at::Tensor h = SiluAndMul(Linear(xs.narrow(0, offset, n), w_gate_up[slot(e)]));
      ys.narrow(0, offset, n).copy_(Linear(h, w_down[slot(e)]));
      offset += n;
    }
  }
  at::Tensor w = topk_weights.reshape({-1}).index_select(0, order).unsqueeze(1);
  at::Tensor weighted = (ys * w).to(x.scalar_type());
  return at::zeros_like(x).index_add_(0, token_of, weighted);
}

at::Tensor MoeExpertsNaive(const at::Tensor& x, const at::Tensor& w_gate_up, const at::Tensor& w_down,
                           const at::Tensor& topk_ids, const at::Tensor& topk_weights) {
  at::Tensor out = at::zeros_like(x);
  at::Tensor ids = topk_ids.to(at::kCPU);
  for (int64_t t = 0; t < x.size(0); ++t) {
    for (int64_t j = 0; j < ids.size(1); ++j) {
      const int64_t e = ids[t][j].item<int64_t>();
      at::Tensor h = SiluAndMul(at::linear(x.narrow(0, t, 1), w_gate_up[e]));
      at::Tensor y = at::linear(h, w_down[e]) * topk_weights[t][j];
      out.narrow(0, t, 1).add_(y.to(x.scalar_type()));
    }
  }
  return out;
}

}  // namespace inferd::ops
