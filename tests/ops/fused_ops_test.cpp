// CPU paths of the ops added for the CUDA kernels: AddRmsNorm (the fused residual add + norm) and
// GroupByExpert (MoE token grouping). References are plain loops here, not the ops under test.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/moe.h"
#include "ops/norm.h"

namespace inferd::ops {
namespace {

TEST(AddRmsNorm, UpdatesResidualInPlaceAndNormalisesTheSum) {
  at::manual_seed(1);
  const int64_t n = 5, h = 96;
  const double eps = 1e-6;
  at::Tensor res = at::randn({n, h}), x = at::randn({n, h}), w = at::randn({h});
  at::Tensor res0 = res.clone();
  at::Tensor out = AddRmsNorm(res, x, w, eps);
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < h; ++i) {
      const double s = res0[t][i].item<double>() + x[t][i].item<double>();
      ss += s * s;
    }
    const double inv = 1.0 / std::sqrt(ss / h + eps);
    for (int64_t i = 0; i < h; ++i) {
      const double s = res0[t][i].item<double>() + x[t][i].item<double>();
      EXPECT_NEAR(res[t][i].item<double>(), s, 1e-6) << t << "," << i;
      EXPECT_NEAR(out[t][i].item<double>(), s * inv * w[i].item<double>(), 1e-4) << t << "," << i;
    }
  }
}

TEST(AddRmsNorm, Bf16SumIsRoundedLikeAnAddInTheDtype) {
  at::manual_seed(2);
  at::Tensor res = at::randn({3, 64}).to(at::kBFloat16), x = at::randn({3, 64}).to(at::kBFloat16);
  at::Tensor w = at::ones({64}, at::kBFloat16);
  at::Tensor expected_sum = (res.to(at::kFloat) + x.to(at::kFloat)).to(at::kBFloat16);
  at::Tensor r = res.clone();
  AddRmsNorm(r, x, w, 1e-6);
  EXPECT_TRUE(at::equal(r, expected_sum));
}

// Stable counting sort by expert as the reference.
TEST(GroupByExpert, CpuIsAStableGroupingWithCounts) {
  at::manual_seed(3);
  for (int64_t experts : {1, 3, 64}) {
    at::Tensor ids = at::randint(0, experts, {257}, at::kLong);
    auto [order, counts] = GroupByExpert(ids, experts);
    std::vector<int64_t> want_order, want_counts(experts, 0);
    for (int64_t e = 0; e < experts; ++e) {
      for (int64_t i = 0; i < ids.numel(); ++i) {
        if (ids[i].item<int64_t>() == e) {
          want_order.push_back(i);
          ++want_counts[e];
        }
      }
    }
    ASSERT_EQ(order.numel(), static_cast<int64_t>(want_order.size()));
    for (size_t i = 0; i < want_order.size(); ++i) EXPECT_EQ(order[i].item<int64_t>(), want_order[i]) << i;
    ASSERT_EQ(counts.numel(), experts);
    for (int64_t e = 0; e < experts; ++e) EXPECT_EQ(counts[e].item<int64_t>(), want_counts[e]) << e;
  }
}

}  // namespace
}  // namespace inferd::ops
