#include "ops/moe.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/elem_type.h"
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
  if (p.routed_scaling_factor != 1.0) weights = weights * p.routed_scaling_factor;
  return {topk_ids, weights};
}

namespace {

at::Tensor SharedMlp(const at::Tensor& x, const at::Tensor& gate_up, const at::Tensor& down) {
  return Linear(SiluAndMul(Linear(x, gate_up)), down);
}

// Decode-sized routed experts (every expert at most kGemvMaxRows rows) and the shared experts' MLP on CPU:
// choices grouped by a counting sort (stable: GroupByExpert's order), the gate/up products of all experts and
// of the shared MLP in one pool call, the down products in another, and the weighted sum written per token
// with the general path's arithmetic (index_add_ of dtype-rounded products in grouped order into zeros: a
// float32 sum in that order, rounded to dtype once; then the shared MLP's output added). Undefined when the products
// are not all segmented-GEMV eligible.
at::Tensor FewTokenExperts(const at::Tensor& x_in, const std::vector<at::Tensor>& w_gate_up,
                           const std::vector<at::Tensor>& w_down, const at::Tensor& topk_ids,
                           const at::Tensor& topk_weights, const at::Tensor& shared_gate_up,
                           const at::Tensor& shared_down) {
  const at::ScalarType dtype = x_in.scalar_type();
  if (!x_in.device().is_cpu() || x_in.dim() != 2 || (dtype != at::kBFloat16 && dtype != at::kFloat)) return {};
  const at::Tensor x = x_in.is_contiguous() ? x_in : x_in.contiguous();
  // Eligibility depends on x's device and dtype only, so x stands for the gathered rows.
  if (!SegmentedGemvEligible(x, w_gate_up) || !SegmentedGemvEligible(x, w_down)) return {};
  const at::Tensor ids = topk_ids.to(at::kLong).contiguous();
  const at::Tensor weights = topk_weights.to(at::kFloat).contiguous();
  const int64_t num_tokens = x.size(0), hidden = x.size(1), top_k = ids.size(1), n = num_tokens * top_k;
  const int64_t num_experts = static_cast<int64_t>(w_gate_up.size());
  const int64_t* id = ids.data_ptr<int64_t>();
  std::vector<int64_t> count(static_cast<size_t>(num_experts), 0);
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(id[i] >= 0 && id[i] < num_experts, "MoeExperts: expert id ", id[i], " out of range");
    ++count[static_cast<size_t>(id[i])];
  }
  if (*std::max_element(count.begin(), count.end()) > kGemvMaxRows) return {};
  std::vector<int64_t> start(static_cast<size_t>(num_experts) + 1, 0);
  for (int64_t e = 0; e < num_experts; ++e) start[e + 1] = start[e] + count[e];
  std::vector<int64_t> order(static_cast<size_t>(n));  // grouped position -> flat choice
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(next[static_cast<size_t>(id[i])]++)] = i;
  at::Tensor xs = at::empty({n, hidden}, x.options());
  const int64_t row_bytes = hidden * static_cast<int64_t>(x.element_size());
  const char* xp = static_cast<const char*>(x.data_ptr());
  char* xsp = static_cast<char*>(xs.data_ptr());
  for (int64_t j = 0; j < n; ++j)
    std::memcpy(xsp + j * row_bytes, xp + order[static_cast<size_t>(j)] / top_k * row_bytes,
                static_cast<size_t>(row_bytes));
  const bool fuse_shared =
      shared_gate_up.defined() && SegmentedMatchesLinear(x, shared_gate_up) &&
      SegmentedMatchesLinear(at::empty({num_tokens, shared_down.size(1)}, x.options()), shared_down);
  std::vector<SegmentedProduct> first{{xs, w_gate_up, count, {}}};
  if (fuse_shared) first.push_back({x, {shared_gate_up}, {num_tokens}, {}});
  std::vector<at::Tensor> h = SegmentedGemvLinears(first);
  std::vector<SegmentedProduct> second{{SiluAndMul(h[0]), w_down, count, {}}};
  if (fuse_shared) second.push_back({SiluAndMul(h[1]), {shared_down}, {num_tokens}, {}});
  std::vector<at::Tensor> y = SegmentedGemvLinears(second);
  at::Tensor shared;
  if (fuse_shared) {
    shared = y[1];
  } else if (shared_gate_up.defined()) {
    shared = SharedMlp(x, shared_gate_up, shared_down);
  }
  // Token t's choices in grouped order, then the weighted sum in that order.
  std::vector<int64_t> by_token(static_cast<size_t>(n));
  std::vector<int64_t> filled(static_cast<size_t>(num_tokens), 0);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t t = order[static_cast<size_t>(j)] / top_k;
    by_token[static_cast<size_t>(t * top_k + filled[static_cast<size_t>(t)]++)] = j;
  }
  at::Tensor out = at::empty_like(x);
  const float* wt = weights.data_ptr<float>();
  auto combine = [&](auto tag) {
    using T = decltype(tag);
    auto load = [](T v) {
      if constexpr (std::is_same_v<T, float>) {
        return v;
      } else {
        return kernels::cpu::Bf16ToFloat(v);
      }
    };
    auto round = [](float v) {
      if constexpr (std::is_same_v<T, float>) {
        return v;
      } else {
        return kernels::cpu::FloatToBf16(v);
      }
    };
    const T* ys = static_cast<const T*>(y[0].data_ptr());
    const T* sh = shared.defined() ? static_cast<const T*>(shared.data_ptr()) : nullptr;
    T* o = static_cast<T*>(out.data_ptr());
    std::vector<float> acc(static_cast<size_t>(hidden));
    for (int64_t t = 0; t < num_tokens; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t c = 0; c < top_k; ++c) {
        const int64_t j = by_token[static_cast<size_t>(t * top_k + c)];
        const float w = wt[order[static_cast<size_t>(j)]];
        const T* row = ys + j * hidden;
        for (int64_t d = 0; d < hidden; ++d) acc[d] += load(round(load(row[d]) * w));
      }
      for (int64_t d = 0; d < hidden; ++d)
        o[t * hidden + d] = sh ? round(load(round(acc[d])) + load(sh[t * hidden + d])) : round(acc[d]);
    }
  };
  if (dtype == at::kFloat) {
    combine(float{});
  } else {
    combine(uint16_t{});
  }
  return out;
}

}  // namespace

at::Tensor MoeExperts(const at::Tensor& x, const std::vector<at::Tensor>& w_gate_up,
                      const std::vector<at::Tensor>& w_down, const at::Tensor& topk_ids, const at::Tensor& topk_weights,
                      const at::Tensor& shared_gate_up, const at::Tensor& shared_down) {
  const int64_t num_experts = static_cast<int64_t>(w_gate_up.size());
  TORCH_CHECK(num_experts > 0 && w_down.size() == w_gate_up.size(), "MoeExperts: one gate/up and one down per expert");
  TORCH_CHECK(shared_gate_up.defined() == shared_down.defined(), "MoeExperts: shared gate/up and down together");
  if (topk_ids.device().is_cpu()) {
    at::Tensor few = FewTokenExperts(x, w_gate_up, w_down, topk_ids, topk_weights, shared_gate_up, shared_down);
    if (few.defined()) return few;
  }
  const int64_t top_k = topk_ids.size(1);
  at::Tensor flat_ids = topk_ids.reshape({-1});
  auto [order, counts_dev] = GroupByExpert(flat_ids, num_experts);  // choices grouped by expert, ascending
  at::Tensor token_of = at::floor_divide(order, top_k);             // [num_tokens * top_k]
  at::Tensor counts = counts_dev.to(at::kCPU);
  const int64_t* count = counts.data_ptr<int64_t>();
  at::Tensor xs = x.index_select(0, token_of);
  at::Tensor ys = at::empty_like(xs);
  int64_t offset = 0;
  for (int64_t e = 0; e < num_experts; ++e) {
    const int64_t n = count[e];
    if (n == 0) continue;
    at::Tensor h = SiluAndMul(Linear(xs.narrow(0, offset, n), w_gate_up[static_cast<size_t>(e)]));
    ys.narrow(0, offset, n).copy_(Linear(h, w_down[static_cast<size_t>(e)]));
    offset += n;
  }
  at::Tensor w = topk_weights.reshape({-1}).index_select(0, order).unsqueeze(1);
  at::Tensor weighted = (ys * w).to(x.scalar_type());
  at::Tensor out = at::zeros_like(x).index_add_(0, token_of, weighted);
  if (shared_gate_up.defined()) out = out + SharedMlp(x, shared_gate_up, shared_down);
  return out;
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
