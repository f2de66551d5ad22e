// MoE routing and token grouping on CUDA against the CPU path of ops::MoeRoute / ops::GroupByExpert
// (src/ops/moe.cpp) on the same fp32 router logits: softmax greedy (V2-Lite), softmax group-limited (V2),
// sigmoid noaux_tc with a bias (V3). MoeRoute's id order is unspecified, so rows are compared as
// (id, weight) sets sorted by id. Weights: |diff| <= 1e-6 + 1e-5 |cpu| (fp32 softmax/sigmoid of one input).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "cuda_test_util.h"
#include "ops/moe.h"

namespace inferd::ops {
namespace {

using testing::ExpectClose;

std::pair<at::Tensor, at::Tensor> SortById(const std::pair<at::Tensor, at::Tensor>& r) {
  at::Tensor ids = r.first.to(at::kCPU), w = r.second.to(at::kCPU);
  auto [sorted, idx] = ids.sort(-1);
  return {sorted, w.gather(1, idx)};
}

struct Case {
  const char* name;
  int64_t experts;
  MoeRoutingParams p;
  bool bias;
};

MoeRoutingParams Params(MoeScoring s, MoeTopkMethod m, int64_t k, int64_t groups, int64_t keep, bool norm,
                        double scale) {
  MoeRoutingParams p;
  p.scoring = s;
  p.method = m;
  p.top_k = k;
  p.n_group = groups;
  p.topk_group = keep;
  p.norm_topk_prob = norm;
  p.routed_scaling_factor = scale;
  return p;
}

TEST(CudaMoeRouting, MatchesCpuRouting) {
  INFERD_REQUIRE_CUDA();
  at::manual_seed(17);
  const Case cases[] = {
      {"softmax_greedy_v2_lite", 64, Params(MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, 6, 1, 1, false, 1.0), false},
      {"softmax_group_limited_v2", 160,
       Params(MoeScoring::kSoftmax, MoeTopkMethod::kGroupLimitedGreedy, 6, 8, 3, false, 16.0), false},
      {"sigmoid_noaux_tc_v3", 256, Params(MoeScoring::kSigmoid, MoeTopkMethod::kNoauxTc, 8, 8, 4, true, 2.5), true},
      {"sigmoid_noaux_tc_no_bias", 64, Params(MoeScoring::kSigmoid, MoeTopkMethod::kNoauxTc, 4, 4, 2, true, 1.0),
       false},
  };
  for (const Case& c : cases) {
    for (int64_t tokens : {1, 7, 300}) {
      at::Tensor logits = at::randn({tokens, c.experts}) * 2.0;
      at::Tensor bias = c.bias ? at::randn({c.experts}) * 0.1 : at::Tensor();
      auto cpu = SortById(MoeRoute(logits, bias, c.p));
      auto cuda_raw = MoeRoute(logits.cuda(), c.bias ? bias.cuda() : bias, c.p);
      ASSERT_TRUE(cuda_raw.first.is_cuda() && cuda_raw.second.is_cuda()) << c.name;
      auto cuda = SortById(cuda_raw);
      const std::string what = std::string(c.name) + " tokens " + std::to_string(tokens);
      EXPECT_TRUE(at::equal(cuda.first, cpu.first)) << what << ": chosen experts differ";
      ExpectClose(cuda.second, cpu.second, {1e-6, 1e-5}, what + " weights");
    }
  }
}

TEST(CudaMoeRouting, GroupByExpertIsAStableArgsort) {
  INFERD_REQUIRE_CUDA();
  at::manual_seed(23);
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{0, 8}, {1, 4}, {8 * 6, 64}, {4096 * 8, 256}, {1000, 3}};
  for (const auto& [entries, experts] : sizes) {
    // Few experts and many entries: long runs of equal ids, so only a stable grouping matches.
    at::Tensor ids = at::randint(0, experts, {entries}, at::kLong);
    auto [order_cpu, counts_cpu] = GroupByExpert(ids, experts);
    auto [order_cuda, counts_cuda] = GroupByExpert(ids.cuda(), experts);
    const std::string what = std::to_string(entries) + " entries, " + std::to_string(experts) + " experts";
    EXPECT_TRUE(at::equal(counts_cuda.cpu(), counts_cpu)) << what;
    EXPECT_TRUE(at::equal(order_cuda.cpu(), order_cpu)) << what;
    // Independent of either implementation: the counts are a histogram of ids.
    for (int64_t e = 0; e < experts; ++e) {
      EXPECT_EQ(counts_cpu[e].item<int64_t>(), ids.eq(e).sum().item<int64_t>()) << what << " expert " << e;
    }
  }
}

}  // namespace
}  // namespace inferd::ops
