// kernels/cpu/gemm.*: every GEMM path this CPU supports, forced through GemmIsa, against a double-precision
// reference computed here from the stored operand values; paths the CPU lacks skip.
#include "kernels/cpu/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/ops/matmul_problem.h"

namespace inferd::kernels::cpu {
namespace {

using testing::FromBf16;
using testing::Tolerance;
using testing::TruncBf16;

void Serial(int64_t n, const std::function<void(int64_t)>& fn) {
  for (int64_t i = 0; i < n; ++i) fn(i);
}
void Reversed(int64_t n, const std::function<void(int64_t)>& fn) {
  for (int64_t i = n - 1; i >= 0; --i) fn(i);
}
// Three real threads claiming interleaved tasks (each thread with its own thread-local scratch).
void Threads(int64_t n, const std::function<void(int64_t)>& fn) {
  std::vector<std::thread> ts;
  for (int64_t t = 0; t < 3; ++t)
    ts.emplace_back([&fn, n, t] {
      for (int64_t i = t; i < n; i += 3) fn(i);
    });
  for (auto& t : ts) t.join();
}

struct Problem : testing::MatmulProblem {
  using MatmulProblem::MatmulProblem;
  std::vector<float> Run(GemvIsa isa, const GemmParallelFor& pf, const GemmBlocking& blocking = {}) const {
    return RunWith([&](const GemvArgs& a) { GemmIsa(a, isa, pf, blocking); });
  }
};

void ExpectMatches(const Problem& p, const std::vector<float>& y, const std::string& what) {
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.ldy; ++j) {
      const float got = y[static_cast<size_t>(i * p.ldy + j)];
      if (j >= p.n) {
        ASSERT_EQ(got, -7.0f) << what << ": wrote past column n at row " << i;
        continue;
      }
      const size_t idx = static_cast<size_t>(i * p.n + j);
      ASSERT_NEAR(got, p.ref[idx], Tolerance(p, idx)) << what << " at [" << i << ", " << j << "]";
    }
  }
}

std::string Name(GemvIsa isa, const Problem& p) {
  return std::string(GemvIsaName(isa)) + (p.type == GemvType::kBFloat16 ? " bf16 " : " f32 ") + std::to_string(p.m) +
         "x" + std::to_string(p.n) + "x" + std::to_string(p.k) + (p.bias ? " bias" : "");
}

class GemmIsaTest : public ::testing::TestWithParam<GemvIsa> {
 protected:
  void SetUp() override {
    if (GetParam() != GemvIsa::kScalar && !GemmIsaSupported(GetParam()))
      GTEST_SKIP() << GemvIsaName(GetParam()) << " not supported by this CPU";
  }
};

// m, n, k off every block multiple (MR 14 / 6, NR 32 / 16, KC 256, NC 128 (one pass: 256) / 128, the 16-wide
// pack blocks), k odd, below 16 and across several K blocks; bias on and off; x and y rows strided.
TEST_P(GemmIsaTest, MatchesDoubleReference) {
  const GemvIsa isa = GetParam();
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{65, 33, 17},  {65, 300, 64}, {100, 47, 255}, {129, 257, 513}, {14, 32, 256},
                          {1, 1, 1},     {13, 5, 3},    {71, 16, 1},    {97, 129, 31},   {200, 17, 300},
                          {28, 64, 257}, {66, 95, 130}, {6, 15, 16}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
      for (bool bias : {false, true}) {
        const Problem p(s.m, s.n, s.k, type, bias, seed++);
        ExpectMatches(p, p.Run(isa, Serial), Name(isa, p));
      }
    }
  }
}

// Decode-sized row counts (ops::Linear routes kGemmMinRows to kGemvMaxRows rows here): the AVX-512 tile's
// rows follow m (15 -> 8, 16 -> 8, 17 -> 9, 29 -> 10, 32 -> 11, 43 -> 11, 63 -> 13, 64 -> 13 rows per
// panel), each with a ragged last panel or none, K across two K blocks with a tail, N with a tail.
TEST_P(GemmIsaTest, MatchesDoubleReferenceAtDecodeRowCounts) {
  const GemvIsa isa = GetParam();
  uint32_t seed = 500;
  for (int64_t m : {15, 16, 17, 29, 32, 43, 63, 64}) {
    for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
      const Problem p(m, 77, 300, type, true, seed++);
      ExpectMatches(p, p.Run(isa, Threads), Name(isa, p));
    }
  }
}

// Decode-sized products (one pass over the rows: at most 8 AVX-512 / 16 AVX2 row panels) convert one
// K block x NR micro-panel at a time and prefetch the next one's weights: N off the micro-panel width and
// with fewer micro-panels than tasks (row tasks), K with several blocks and a tail, the largest one-pass m
// (112 = 8 panels of 14) and the first several-pass one (113), on three threads.
TEST_P(GemmIsaTest, MatchesDoubleReferenceOnePassPerMicroPanel) {
  const GemvIsa isa = GetParam();
  struct Shape {
    int64_t m, n, k;
  };
  // {16, 96, 512} and {1, 320, 64}: whole 32-row groups and 32-element K steps (kAmxBf16 reads W in place).
  const Shape shapes[] = {{16, 1000, 600}, {12, 45, 513}, {48, 288, 1024}, {112, 70, 300},
                          {113, 70, 300},  {20, 7, 40},   {16, 96, 512},   {1, 320, 64}};
  uint32_t seed = 900;
  for (const Shape& s : shapes) {
    for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
      const Problem p(s.m, s.n, s.k, type, true, seed++);
      ExpectMatches(p, p.Run(isa, Threads), Name(isa, p));
    }
  }
}

// Small blocks force many K blocks, row panels per pass and column tasks on small operands.
TEST_P(GemmIsaTest, MatchesDoubleReferenceWithSmallBlocks) {
  const GemvIsa isa = GetParam();
  for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
    const Problem p(90, 70, 101, type, true, 42);
    for (const GemmBlocking b : {GemmBlocking{1, 16, 1}, GemmBlocking{30, 33, 40}, GemmBlocking{500, 7, 500}})
      ExpectMatches(
          p, p.Run(isa, Serial, b),
          Name(isa, p) + " mc " + std::to_string(b.mc) + " kc " + std::to_string(b.kc) + " nc " + std::to_string(b.nc));
  }
}

// The invariant in gemm.h: for one ISA and K, a row's result depends on neither the row count, the row's
// place in its panel, the tasks' order or concurrency nor the mc / nc blocking (kc fixed).
TEST_P(GemmIsaTest, RowResultIndependentOfBatchTasksAndBlocking) {
  const GemvIsa isa = GetParam();
  for (GemvType type : {GemvType::kFloat32, GemvType::kBFloat16}) {
    for (int64_t k : {int64_t{77}, int64_t{600}}) {
      const Problem all(83, 301, k, type, true, 99);
      const std::vector<float> base = all.Run(isa, Serial);
      EXPECT_EQ(all.Run(isa, Reversed), base);
      EXPECT_EQ(all.Run(isa, Threads), base);
      const int64_t kc = GemmKBlock(isa, k);
      EXPECT_EQ(all.Run(isa, Threads, GemmBlocking{20, kc, 48}), base);
      EXPECT_EQ(all.Run(isa, Serial, GemmBlocking{1000, kc, 1000}), base);
      // Forced tile rows (kAvx512: 83 rows default to 14 per panel; 1, 5 and 13 here).
      for (int64_t mr : {int64_t{1}, int64_t{5}, int64_t{13}})
        EXPECT_EQ(all.Run(isa, Threads, GemmBlocking{0, kc, 0, mr}), base) << "mr " << mr;
      // Rows 0, 40 and 82 alone, as one-row products of the same x row and weights.
      for (int64_t i : {int64_t{0}, int64_t{40}, int64_t{82}}) {
        const std::vector<float> y = Problem::RowOf(all, i).Run(isa, Serial);
        for (int64_t j = 0; j < all.n; ++j)
          ASSERT_EQ(y[static_cast<size_t>(j)], base[static_cast<size_t>(i * all.ldy + j)])
              << GemvIsaName(isa) << " row " << i << " col " << j << " k " << k;
      }
    }
  }
}

// Output rounding: bf16 results are the float32 sums rounded to nearest even; infinity and NaN pass.
// x rows [1, 1]; each column's two weights give a sum whose bf16 rounding is stated by hand.
TEST_P(GemmIsaTest, Bf16OutputRoundsToNearestEvenAndKeepsNonFinite) {
  const GemvIsa isa = GetParam();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float e7 = 1.0f / 128, e8 = 1.0f / 256;
  // sum 1 + 2^-8: halfway between 1 and 1 + 2^-7 -> 1 (even); 1 + 2^-7 + 2^-8: halfway between 1 + 2^-7
  // and 1 + 2^-6 -> 1 + 2^-6 (even); 1 + 2^-7 + 2^-9 (not a tie) -> 1 + 2^-7.
  const float w[][2] = {{1.0f, e8}, {1.0f + e7, e8}, {1.0f + e7, e8 / 2}, {inf, 0.0f}, {nan, 0.0f}, {-2.0f, 0.5f}};
  const float want[] = {1.0f, 1.0f + 2 * e7, 1.0f + e7, inf, nan, -1.5f};
  // 66 rows: several row panels; 5: the decode-sized paths (kAmxBf16 streams the weights as they are there).
  for (const int64_t m : {int64_t{66}, int64_t{5}}) {
    const int64_t n = 6;
    std::vector<uint16_t> xh(static_cast<size_t>(m * 2), TruncBf16(1.0f)), wh, yh(static_cast<size_t>(m * n), 0);
    for (const auto& row : w)
      for (float v : row) wh.push_back(TruncBf16(v));
    GemvArgs a;
    a.x = xh.data();
    a.ldx = 2;
    a.w = wh.data();
    a.type = GemvType::kBFloat16;
    a.y = yh.data();
    a.ldy = n;
    a.m = m;
    a.n = n;
    a.k = 2;
    GemmIsa(a, isa, Serial);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const float got = FromBf16(yh[static_cast<size_t>(i * n + j)]);
        if (std::isnan(want[j])) {
          EXPECT_TRUE(std::isnan(got)) << "row " << i;
        } else {
          EXPECT_EQ(got, want[j]) << "row " << i << " col " << j;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, GemmIsaTest,
                         ::testing::Values(GemvIsa::kScalar, GemvIsa::kAvx2, GemvIsa::kAvx512, GemvIsa::kAvx512Bf16,
                                           GemvIsa::kAmxBf16),
                         [](const ::testing::TestParamInfo<GemvIsa>& info) {
                           return std::string(GemvIsaName(info.param));
                         });

TEST(Gemm, DispatchTakesTheBestSupportedPath) {
  const GemvIsa best = GemmBestIsa();
  if (GemvIsaSupported(GemvIsa::kAmxBf16)) {
    EXPECT_EQ(best, GemvIsa::kAmxBf16);
  } else if (GemvIsaSupported(GemvIsa::kAvx512Bf16)) {
    EXPECT_EQ(best, GemvIsa::kAvx512Bf16);
  } else if (GemvIsaSupported(GemvIsa::kAvx512)) {
    EXPECT_EQ(best, GemvIsa::kAvx512);
  } else if (GemvIsaSupported(GemvIsa::kAvx2)) {
    EXPECT_EQ(best, GemvIsa::kAvx2);
  } else {
    EXPECT_EQ(best, GemvIsa::kScalar);
  }
  EXPECT_EQ(GemmIsaSupported(GemvIsa::kAvx512Bf16), GemvIsaSupported(GemvIsa::kAvx512Bf16));
  // AMX is only offered with AVX512-BF16 (its float32 operands and GEMV fall back to the vector paths).
  if (GemmIsaSupported(GemvIsa::kAmxBf16)) {
    EXPECT_TRUE(GemmIsaSupported(GemvIsa::kAvx512Bf16));
  }
  // Gemm runs the chosen path.
  const Problem p(70, 40, 50, GemvType::kBFloat16, true, 5);
  EXPECT_EQ(p.RunWith([](const GemvArgs& a) { Gemm(a, Serial); }), p.Run(best, Serial));
  // float32 operands on kAvx512Bf16 take the kAvx512 path (vdpbf16ps reads bf16 only).
  if (GemmIsaSupported(GemvIsa::kAvx512Bf16)) {
    const Problem f(70, 40, 50, GemvType::kFloat32, true, 6);
    EXPECT_EQ(f.Run(GemvIsa::kAvx512Bf16, Serial), f.Run(GemvIsa::kAvx512, Serial));
  }
  // float32 operands on kAmxBf16 likewise (tdpbf16ps reads bf16 only).
  if (GemmIsaSupported(GemvIsa::kAmxBf16)) {
    const Problem f(70, 40, 50, GemvType::kFloat32, true, 7);
    EXPECT_EQ(f.Run(GemvIsa::kAmxBf16, Serial), f.Run(GemvIsa::kAvx512, Serial));
  }
}

// Two paths' results for p: within twice the reference bound of each other everywhere, equal in most outputs.
void ExpectAgreeWithinTheBound(const Problem& p, const std::vector<float>& a, const std::vector<float>& b) {
  int64_t equal = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      const size_t at = static_cast<size_t>(i * p.ldy + j), idx = static_cast<size_t>(i * p.n + j);
      ASSERT_NEAR(a[at], b[at], 2 * Tolerance(p, idx)) << "[" << i << ", " << j << "]";
      equal += a[at] == b[at];
    }
  }
  EXPECT_GT(equal, p.m * p.n / 2);
}

// kAvx512Bf16's accumulation order differs from kAvx512's (one vdpbf16ps adds a pair of products), so its
// bf16 results are not bitwise kAvx512's; both are within the double reference's bound (the tests above),
// and the two differ by at most that bound's width somewhere and agree in most outputs.
TEST(Gemm, Avx512Bf16AgreesWithAvx512WithinTheReferenceBound) {
  if (!GemmIsaSupported(GemvIsa::kAvx512Bf16)) GTEST_SKIP() << "avx512bf16 not supported by this CPU";
  const Problem p(97, 129, 1000, GemvType::kBFloat16, true, 77);
  const std::vector<float> a = p.Run(GemvIsa::kAvx512Bf16, Threads), b = p.Run(GemvIsa::kAvx512, Threads);
  ExpectAgreeWithinTheBound(p, a, b);
}

// kAmxBf16 sums each output in one chain over K (tile sums carried across K blocks), so its results do not
// depend on kc (unlike the vector paths'), and they agree with kAvx512Bf16's within the reference bound, on
// both of its paths (blocked for m > 128, weights in place below).
TEST(Gemm, AmxBf16IndependentOfKBlockAndAgreesWithAvx512Bf16) {
  if (!GemmIsaSupported(GemvIsa::kAmxBf16)) GTEST_SKIP() << "amx-bf16 not usable on this CPU or kernel";
  const Problem p(97, 129, 1000, GemvType::kBFloat16, true, 78);
  const std::vector<float> a = p.Run(GemvIsa::kAmxBf16, Threads), b = p.Run(GemvIsa::kAvx512Bf16, Threads);
  for (int64_t kc : {int64_t{32}, int64_t{96}, int64_t{1000}})
    EXPECT_EQ(p.Run(GemvIsa::kAmxBf16, Serial, GemmBlocking{0, kc, 0}), a) << "kc " << kc;
  ExpectAgreeWithinTheBound(p, a, b);
  // 40 rows: the weights-in-place path (m <= 128).
  const Problem q(40, 129, 1000, GemvType::kBFloat16, true, 79);
  ExpectAgreeWithinTheBound(q, q.Run(GemvIsa::kAmxBf16, Threads), q.Run(GemvIsa::kAvx512Bf16, Threads));
}

// INFERD_CPU_ISA (gemv.h) caps every dispatch; ctest runs this binary again with it set to avx2 and to an
// invalid value (tests/ops/CMakeLists.txt).
TEST(IsaCap, EnvCapsTheDispatch) {
  const char* v = std::getenv("INFERD_CPU_ISA");
  if (v == nullptr) GTEST_SKIP() << "INFERD_CPU_ISA unset (ctest runs this binary again with it set)";
  const std::string value = v;
  if (value == "no-such-isa") {
    EXPECT_EQ(GemvIsaEnvError(), "INFERD_CPU_ISA=no-such-isa: not one of scalar, avx2, avx512, avx512bf16, amxbf16");
    // An invalid value caps nothing.
    EXPECT_EQ(GemvIsaSupported(GemvIsa::kAvx2), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    return;
  }
  EXPECT_EQ(GemvIsaEnvError(), "");
  int cap = -1;
  for (int i = 0; i <= static_cast<int>(GemvIsa::kAmxBf16); ++i)
    if (value == GemvIsaName(static_cast<GemvIsa>(i))) cap = i;
  ASSERT_GE(cap, 0) << value;
  for (int i = cap + 1; i <= static_cast<int>(GemvIsa::kAmxBf16); ++i)
    EXPECT_FALSE(GemvIsaSupported(static_cast<GemvIsa>(i))) << GemvIsaName(static_cast<GemvIsa>(i));
  EXPECT_LE(static_cast<int>(GemmBestIsa()), cap);
  EXPECT_LE(static_cast<int>(GemvBestIsa(GemvType::kBFloat16)), cap);
}

}  // namespace
}  // namespace inferd::kernels::cpu
