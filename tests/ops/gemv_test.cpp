// kernels/cpu/gemv.*: every ISA path against a double-precision scalar reference, each forced through
// GemvRangeIsa so all paths this CPU supports run here; paths it lacks skip.
#include "kernels/cpu/gemv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace inferd::kernels::cpu {
namespace {

uint16_t TruncBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}
float FromBf16(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// One product's operands in both storage types; `ref` and `mag` ([m, n]) in double from the stored values.
struct Problem {
  int64_t m, n, k, ldx, ldy;
  GemvType type;
  bool bias;
  std::vector<float> xf, wf, bf;     // float32 storage
  std::vector<uint16_t> xh, wh, bh;  // bf16 storage
  std::vector<double> ref, mag;      // sum x*w (+ b), sum |x*w| (+ |b|)

  Problem(int64_t m_, int64_t n_, int64_t k_, GemvType t, bool with_bias, uint32_t seed)
      : m(m_), n(n_), k(k_), ldx(k_ + 3), ldy(n_ + 2), type(t), bias(with_bias) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& f, std::vector<uint16_t>& h, size_t count) {
      f.resize(count);
      h.resize(count);
      for (size_t i = 0; i < count; ++i) {
        h[i] = TruncBf16(dist(gen));
        f[i] = t == GemvType::kBFloat16 ? FromBf16(h[i]) : dist(gen);
      }
    };
    fill(xf, xh, static_cast<size_t>(m * ldx));
    fill(wf, wh, static_cast<size_t>(n * k));
    fill(bf, bh, static_cast<size_t>(n));
    ref.assign(static_cast<size_t>(m * n), 0.0);
    mag.assign(static_cast<size_t>(m * n), 0.0);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = bias ? bf[static_cast<size_t>(j)] : 0.0, a = std::fabs(s);
        for (int64_t kk = 0; kk < k; ++kk) {
          const double p =
              static_cast<double>(xf[static_cast<size_t>(i * ldx + kk)]) * wf[static_cast<size_t>(j * k + kk)];
          s += p;
          a += std::fabs(p);
        }
        ref[static_cast<size_t>(i * n + j)] = s;
        mag[static_cast<size_t>(i * n + j)] = a;
      }
    }
  }

  GemvArgs Args(void* y) const {
    GemvArgs a;
    const bool h = type == GemvType::kBFloat16;
    a.x = h ? static_cast<const void*>(xh.data()) : xf.data();
    a.ldx = ldx;
    a.w = h ? static_cast<const void*>(wh.data()) : wf.data();
    a.type = type;
    a.y = y;
    a.ldy = ldy;
    a.bias = !bias ? nullptr : h ? static_cast<const void*>(bh.data()) : bf.data();
    a.m = m;
    a.n = n;
    a.k = k;
    return a;
  }

  // Output as float; rows with stride ldy, columns outside [0, n) untouched (checked by the caller).
  std::vector<float> Run(GemvIsa isa, int weight_rows, int64_t n_split = 0, bool prepack = false) const {
    std::vector<float> yf(static_cast<size_t>(m * ldy), -7.0f);
    std::vector<uint16_t> yh(static_cast<size_t>(m * ldy), TruncBf16(-7.0f));
    const bool h = type == GemvType::kBFloat16;
    GemvArgs a = Args(h ? static_cast<void*>(yh.data()) : yf.data());
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
    if (h)
      for (size_t i = 0; i < yh.size(); ++i) yf[i] = FromBf16(yh[i]);
    return yf;
  }
};

class GemvIsaTest : public ::testing::TestWithParam<GemvIsa> {
 protected:
  void SetUp() override {
    if (!GemvIsaSupported(GetParam())) GTEST_SKIP() << GemvIsaName(GetParam()) << " not supported by this CPU";
  }
};

// float32 accumulation of k products: error within about k * 2^-24 of sum |x*w| (allowed: 2x that + 1e-6);
// bf16 output adds one rounding (half an ulp, 2^-9 relative).
double Tolerance(const Problem& p, size_t idx) {
  const double acc = (1.2e-7 * static_cast<double>(p.k) + 1e-6) * p.mag[idx];
  return p.type == GemvType::kBFloat16 ? acc + std::ldexp(std::fabs(p.ref[idx]), -8) : acc;
}

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
        Problem one = all;
        one.m = 1;
        const size_t off = static_cast<size_t>(i * all.ldx);
        one.xf.assign(all.xf.begin() + static_cast<std::ptrdiff_t>(off),
                      all.xf.begin() + static_cast<std::ptrdiff_t>(off + all.ldx));
        one.xh.assign(all.xh.begin() + static_cast<std::ptrdiff_t>(off),
                      all.xh.begin() + static_cast<std::ptrdiff_t>(off + all.ldx));
        const std::vector<float> y = one.Run(isa, 1);
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

}  // namespace
}  // namespace inferd::kernels::cpu
