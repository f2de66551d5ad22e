// ops::GemmLinear (kernels/cpu/gemm.* on the ops pool) against float64 matmuls of the same dtype-rounded
// inputs, ops::Linear's routing of more than kGemvMaxRows rows to it, and MoE experts that receive that
// many rows.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/gemm.h"
#include "ops/linear.h"
#include "ops/moe.h"
#include "ops/parallel.h"

namespace inferd::ops {
namespace {

double MaxDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

class GemmLinearTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kernels::cpu::GemmBestIsa() == kernels::cpu::GemvIsa::kScalar)
      GTEST_SKIP() << "no GEMM vector path on this CPU (Linear keeps at::linear)";
    SetPoolThreads(2);
  }
};

// True when every |got - ref| is within the float32 accumulation bound: a k-term float32 dot product errs
// by at most about k * 2^-24 * sum |x*w| (allowed 2x that + 1e-6 relative); bf16 output adds one rounding
// (2^-9 relative, allowed 2^-8). `mag` = sum |x*w| (+ |b|) per element, in double.
bool WithinBound(const at::Tensor& got, const at::Tensor& ref, const at::Tensor& mag, int64_t k) {
  at::Tensor tol = (1.2e-7 * static_cast<double>(k) + 1e-6) * mag;
  if (got.scalar_type() == at::kBFloat16) tol = tol + ref.abs() * std::ldexp(1.0, -8);
  return ((got.to(at::kDouble) - ref).abs() <= tol).all().item<bool>();
}

TEST_F(GemmLinearTest, MatchesMatmulAndLinearRoutesLargeInputsToIt) {
  at::manual_seed(11);
  struct Shape {
    int64_t m, n, k;
  };
  for (const Shape& s :
       {Shape{65, 7, 5}, Shape{128, 129, 1024}, Shape{100, 288, 100}, Shape{300, 33, 47}, Shape{97, 2048, 256}}) {
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor xw = at::randn({s.m, s.k + 3}).to(dtype);
      at::Tensor x = xw.narrow(1, 2, s.k);  // row stride k + 3
      at::Tensor w = at::randn({s.n, s.k}).to(dtype);
      at::Tensor b = at::randn({s.n}).to(dtype);
      at::Tensor prod = x.to(at::kDouble).matmul(w.to(at::kDouble).t());
      at::Tensor mag = x.to(at::kDouble).abs().matmul(w.to(at::kDouble).abs().t());
      at::Tensor ref = prod + b.to(at::kDouble);
      at::Tensor got = GemmLinear(x, w, b);
      ASSERT_EQ(got.scalar_type(), dtype);
      ASSERT_EQ(got.sizes(), ref.sizes());
      EXPECT_TRUE(WithinBound(got, ref, mag + b.to(at::kDouble).abs(), s.k)) << s.m << "x" << s.n << "x" << s.k;
      EXPECT_TRUE(WithinBound(GemmLinear(x, w), prod, mag, s.k)) << s.m << "x" << s.n << "x" << s.k;
      // Linear takes the GEMM kernel for these row counts in bf16 (bit-identical results); float32 stays
      // on at::linear.
      if (dtype == at::kBFloat16) {
        ASSERT_TRUE(GemmEligible(x, w, b));
        EXPECT_EQ(MaxDiff(Linear(x, w, b), got), 0.0) << s.m << "x" << s.n << "x" << s.k;
      } else {
        EXPECT_FALSE(GemmEligible(x, w, b));
      }
      // A row's result does not depend on the other rows in the call (same kernel, same order).
      EXPECT_EQ(MaxDiff(GemmLinear(x.narrow(0, 0, 65), w, b), got.narrow(0, 0, 65)), 0.0);
    }
  }
  // Not eligible: kGemvMaxRows rows or fewer, float32 / mixed dtypes, a non-contiguous weight.
  at::Tensor x = at::randn({kGemvMaxRows, 16}).to(at::kBFloat16), w = at::randn({8, 16}).to(at::kBFloat16);
  EXPECT_TRUE(GemmEligible(at::randn({kGemvMaxRows + 1, 16}).to(at::kBFloat16), w, {}));
  EXPECT_FALSE(GemmEligible(x, w, {}));
  EXPECT_FALSE(GemmEligible(at::randn({80, 16}), w, {}));
  EXPECT_FALSE(GemmEligible(at::randn({80, 16}).to(at::kBFloat16), at::randn({16, 8}).to(at::kBFloat16).t(), {}));
}

// The routing policy of linear.h: fewer than kGemmMinRows rows on the GEMV kernel, kGemmMinRows to
// kGemvMaxRows on the GEMM kernel in float32 and bf16 (where its AVX-512 path runs; the GEMV elsewhere), more on the
// GEMM kernel in bf16 and at::linear in float32; whichever runs, the result is within the float32 accumulation bound of
// a double matmul, and Linear returns exactly what the chosen kernel returns alone.
TEST_F(GemmLinearTest, LinearRoutesDecodeRowsByTheCrossover) {
  at::manual_seed(13);
  const int64_t n = 45, k = 300;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor w = at::randn({n, k}).to(dtype), b = at::randn({n}).to(dtype);
    for (int64_t m : {int64_t{1}, kGemmMinRowsAmx - 1, kGemmMinRowsAmx, kGemmMinRows - 1, kGemmMinRows,
                      kGemmMinRows + 1, int64_t{33}, kGemvMaxRows - 1, kGemvMaxRows, kGemvMaxRows + 1}) {
      at::Tensor x = at::randn({m, k}).to(dtype);
      // Decode-sized rows take the GEMM from kGemmMinRows rows only on its AVX-512 paths, from kGemmMinRowsAmx on
      // AMX (bf16; linear.h).
      const kernels::cpu::GemvIsa isa = kernels::cpu::GemmBestIsa();
      const bool decode_gemm = isa == kernels::cpu::GemvIsa::kAvx512 || isa == kernels::cpu::GemvIsa::kAvx512Bf16 ||
                               isa == kernels::cpu::GemvIsa::kAmxBf16;
      const bool amx = isa == kernels::cpu::GemvIsa::kAmxBf16 && dtype == at::kBFloat16;
      const int64_t min_rows = amx ? kGemmMinRowsAmx : kGemmMinRows;
      const LinearPath want = m > kGemvMaxRows ? (dtype == at::kBFloat16 ? LinearPath::kGemm : LinearPath::kAtLinear)
                              : m >= min_rows && decode_gemm ? LinearPath::kGemm
                                                             : LinearPath::kGemv;
      EXPECT_EQ(LinearPathFor(x, w, b), want) << m << " rows, " << dtype;
      at::Tensor got = Linear(x, w, b);
      at::Tensor prod = x.to(at::kDouble).matmul(w.to(at::kDouble).t());
      at::Tensor mag = x.to(at::kDouble).abs().matmul(w.to(at::kDouble).abs().t()) + b.to(at::kDouble).abs();
      EXPECT_TRUE(WithinBound(got, prod + b.to(at::kDouble), mag, k)) << m << " rows, " << dtype;
      if (want == LinearPath::kGemv) {
        EXPECT_EQ(MaxDiff(got, GemvLinear(x, w, b)), 0.0) << m;
      } else if (want == LinearPath::kGemm) {
        EXPECT_EQ(MaxDiff(got, GemmLinear(x, w, b)), 0.0) << m;
      }
    }
  }
}

// Experts that receive more than kGemvMaxRows rows take the GEMM kernel through Linear (bf16; float32 runs
// at::linear, checked the same way).
TEST_F(GemmLinearTest, MoeExpertsWithManyRowsMatchPerTokenLoop) {
  at::manual_seed(12);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    const int64_t t = 300, h = 48, inter = 40, e = 4, k = 2;  // about 150 rows per expert
    at::Tensor x = at::randn({t, h}).to(dtype);
    at::Tensor gu = (at::randn({e, 2 * inter, h}) * 0.3).to(dtype), down = (at::randn({e, h, inter}) * 0.3).to(dtype);
    auto [ids, w] = MoeRoute(at::randn({t, e}), {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, k});
    at::Tensor counts = at::bincount(ids.reshape({-1}), {}, e);
    ASSERT_GT(counts.min().item<int64_t>(), kGemvMaxRows);
    const double tol = dtype == at::kFloat ? 1e-4 : 5e-2;
    EXPECT_LT(MaxDiff(MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w), MoeExpertsNaive(x, gu, down, ids, w)), tol);
  }
}

}  // namespace
}  // namespace inferd::ops
