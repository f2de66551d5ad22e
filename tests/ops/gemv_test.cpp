// kernels/cpu/gemv.*: every ISA path against a double-precision scalar reference, each forced through
// GemvRangeIsa so all paths this CPU supports run here; paths it lacks skip.
#include "kernels/cpu/gemv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/ops/matmul_problem.h"

namespace inferd::kernels::cpu {
namespace {

using testing::FromBf16;
using testing::Tolerance;
using testing::TruncBf16;

struct Problem : testing::MatmulProblem {
  using MatmulProblem::MatmulProblem;

  // Output as float; rows with stride ldy, columns outside [0, n) untouched (checked by the caller).
  std::vector<float> Run(GemvIsa isa, int weight_rows, int64_t n_split = 0, bool prepack = false) const {
    return RunWith([&](GemvArgs a) {
      std::vector<float> packed(static_cast<size_t>(GemvPackedXSize(a, isa)));
      if (prepack) {
        GemvPackX(a, isa, packed.data());
        a.x_packed = packed.empty() ? nullptr : packed.data();
      }
      if (n_split > 0) {
        for (int64_t b = 0; b < n; b += n_split) GemvRangeIsa(a, isa, b, std::min(n, b + n_split), weight_rows);
      } else {
        GemvRangeIsa(a, isa, 0, n, weight_rows);
      }
    });
  }
};

class GemvIsaTest : public ::testing::TestWithParam<GemvIsa> {
 protected:
  void SetUp() override {
    if (!GemvIsaSupported(GetParam())) GTEST_SKIP() << GemvIsaName(GetParam()) << " not supported by this CPU";
  }
};

TEST_P(GemvIsaTest, MatchesScalarReference) {
  const GemvIsa isa = GetParam();
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{1, 7, 5},   {1, 129, 1024}, {1, 9, 640}, {2, 5, 15},   {3, 67, 100}, {4, 64, 96},
                          {5, 33, 47}, {8, 10, 31},    {9, 6, 33},  {16, 40, 64}, {17, 9, 65},  {64, 13, 130},
                          {3, 4, 1},   {6, 11, 16},    {7, 5, 17},  {12, 3, 63},  {2, 2, 32}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
      const Problem p(s.m, s.n, s.k, type, /*with_bias=*/seed % 2 == 0, seed);
      ++seed;
      for (int weight_rows : {1, 2, 4}) {
        const std::vector<float> y = p.Run(isa, weight_rows);
        for (int64_t i = 0; i < p.m; ++i) {
          for (int64_t j = 0; j < p.ldy; ++j) {
            const float got = y[static_cast<size_t>(i * p.ldy + j)];
            if (j >= p.n) {
              ASSERT_EQ(got, -7.0f) << "wrote past column n at row " << i;
              continue;
            }
            const size_t idx = static_cast<size_t>(i * p.n + j);
            ASSERT_NEAR(got, p.ref[idx], Tolerance(p, idx))
                << GemvIsaName(isa) << (type == GemvType::kBFloat16 ? " bf16 " : " f32 ") << s.m << "x" << s.n << "x"
                << s.k << " weight_rows " << weight_rows << " at [" << i << ", " << j << "]";
          }
        }
      }
    }
  }
}

// The invariant in gemv.h: per ISA, a result depends on neither the row count, the row's place in its
// register block, weight_rows, the column range nor who packed x.
TEST_P(GemvIsaTest, RowResultIndependentOfBatchAndBlocking) {
  const GemvIsa isa = GetParam();
  for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
    for (int64_t k : {int64_t{77}, int64_t{640}}) {
      const Problem all(19, 23, k, type, true, 99);
      const std::vector<float> base = all.Run(isa, 1);
      EXPECT_EQ(all.Run(isa, 2), base);
      EXPECT_EQ(all.Run(isa, 4), base);
      EXPECT_EQ(all.Run(isa, 0, /*n_split=*/5), base);
      EXPECT_EQ(all.Run(isa, 1, 0, /*prepack=*/true), base);
      // Each row alone: the same x row and weights as row i of the batch.
      for (int64_t i = 0; i < all.m; ++i) {
        const std::vector<float> y = Problem::RowOf(all, i).Run(isa, 1);
        for (int64_t j = 0; j < all.n; ++j)
          ASSERT_EQ(y[static_cast<size_t>(j)], base[static_cast<size_t>(i * all.ldy + j)])
              << GemvIsaName(isa) << " row " << i << " col " << j << " k " << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, GemvIsaTest,
                         ::testing::Values(GemvIsa::kScalar, GemvIsa::kAvx2, GemvIsa::kAvx512, GemvIsa::kAvx512Bf16),
                         [](const ::testing::TestParamInfo<GemvIsa>& info) {
                           return std::string(GemvIsaName(info.param));
                         });

TEST(Gemv, DispatchTakesASupportedVectorPathWhereOneExists) {
  for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
    const GemvIsa best = GemvBestIsa(type);
    EXPECT_TRUE(GemvIsaSupported(best));
    // No supported path ranks above the chosen one.
    for (int i = static_cast<int>(best) + 1; i <= static_cast<int>(GemvIsa::kAvx512Bf16); ++i) {
      const GemvIsa other = static_cast<GemvIsa>(i);
      if (other == GemvIsa::kAvx512Bf16 && type == GemvType::kFloat32) continue;  // float32 has no bf16 path
      EXPECT_FALSE(GemvIsaSupported(other))
          << GemvIsaName(other) << " supported but " << GemvIsaName(best) << " chosen";
    }
    EXPECT_EQ(GemvFast(type), best != GemvIsa::kScalar);
    // GemvRange is the chosen path.
    const Problem p(5, 21, 100, type, true, 7);
    std::vector<float> y(static_cast<size_t>(p.m * p.ldy), -7.0f);
    std::vector<uint16_t> yh(y.size(), TruncBf16(-7.0f));
    const bool h = type == GemvType::kBFloat16;
    GemvRange(p.Args(h ? static_cast<void*>(yh.data()) : y.data()), 0, p.n);
    if (h)
      for (size_t i = 0; i < yh.size(); ++i) y[i] = FromBf16(yh[i]);
    EXPECT_EQ(y, p.Run(best, 0));
  }
}

// kAmxBf16 is a GEMM path: the GEMV never chooses it, and one forced onto it runs kAvx512Bf16 (x packed or not).
TEST(Gemv, AmxBf16RunsTheAvx512Bf16Path) {
  if (!GemvIsaSupported(GemvIsa::kAmxBf16)) GTEST_SKIP() << "amx-bf16 not usable on this CPU or kernel";
  for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
    EXPECT_NE(GemvBestIsa(type), GemvIsa::kAmxBf16);
    const Problem p(7, 40, 99, type, true, 8);
    EXPECT_EQ(p.Run(GemvIsa::kAmxBf16, 0), p.Run(GemvIsa::kAvx512Bf16, 0));
    EXPECT_EQ(p.Run(GemvIsa::kAmxBf16, 0, 0, true), p.Run(GemvIsa::kAvx512Bf16, 0, 0, true));
  }
}

}  // namespace
}  // namespace inferd::kernels::cpu
