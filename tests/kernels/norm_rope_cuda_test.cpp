// RmsNorm, AddRmsNorm, SiluAndMul and ApplyRope on CUDA (kernels/cuda via src/ops/cuda_ops.cpp) against
// the CPU path of the same ops on the same inputs, in fp32, bf16 and fp16. Skipped without a CUDA device.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace inferd::ops {
namespace {

using testing::ExpectClose;
using testing::TolFor;

class CudaNormRope : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override {
    INFERD_REQUIRE_CUDA();
    at::manual_seed(11);
  }
  at::ScalarType dt() const { return GetParam(); }
  at::Tensor Randn(at::IntArrayRef shape, double scale = 1.0) const { return (at::randn(shape) * scale).to(dt()); }
};

TEST_P(CudaNormRope, RmsNormMatchesCpu) {
  for (int64_t hidden : {64, 1000, 2048, 7168}) {
    at::Tensor x = Randn({37, hidden}, 3.0), w = (1 + 0.1 * at::randn({hidden})).to(dt());
    at::Tensor cpu = RmsNorm(x, w, 1e-6);
    at::Tensor cuda = RmsNorm(x.cuda(), w.cuda(), 1e-6);
    ExpectClose(cuda, cpu, TolFor(dt()), "rms_norm hidden " + std::to_string(hidden));
  }
}

TEST_P(CudaNormRope, AddRmsNormUpdatesResidualAndMatchesCpu) {
  const int64_t n = 19, hidden = 1536;
  at::Tensor res = Randn({n, hidden}), x = Randn({n, hidden}), w = (1 + 0.1 * at::randn({hidden})).to(dt());
  at::Tensor res_cpu = res.clone(), res_cuda = res.cuda();
  at::Tensor cpu = AddRmsNorm(res_cpu, x, w, 1e-5);
  at::Tensor cuda = AddRmsNorm(res_cuda, x.cuda(), w.cuda(), 1e-5);
  // The residual sum is one rounding of an exact sum of identical inputs: it must match exactly.
  EXPECT_TRUE(at::equal(res_cuda.cpu(), res_cpu)) << "residual differs";
  EXPECT_TRUE(at::equal(res_cpu, (res + x).to(dt()))) << "CPU path is not residual + x";
  ExpectClose(cuda, cpu, TolFor(dt()), "add_rms_norm");
}

TEST_P(CudaNormRope, SiluAndMulMatchesCpu) {
  at::Tensor gu = Randn({23, 2 * 1408}, 4.0);
  ExpectClose(SiluAndMul(gu.cuda()), SiluAndMul(gu), TolFor(dt()), "silu_and_mul");
  at::Tensor empty = Randn({0, 64});
  EXPECT_EQ(SiluAndMul(empty.cuda()).sizes(), (std::vector<int64_t>{0, 32}));
}

// Both layouts, on a strided view like the MLA rope slice (q[:, :, nope:]) and on a contiguous tensor.
TEST_P(CudaNormRope, RopeBothLayoutsMatchCpu) {
  RopeParams p;
  p.rotary_dim = 64;
  p.theta = 10000.0;
  p.kind = RopeKind::kYarn;
  p.factor = 40.0;
  p.original_max_position = 4096;
  p.mscale = 1.0;
  p.mscale_all_dim = 1.0;
  const RopeTable table = MakeRopeTable(p, at::kCPU);
  const int64_t t = 29, heads = 16;
  at::Tensor positions = at::randint(0, 8192, {t}, at::kLong);
  const RopeCosSin cs = RopeCosSinFor(positions, table);
  const RopeCosSin cs_cuda{cs.cos.cuda(), cs.sin.cuda()};
  at::Tensor q = Randn({t, heads, 128 + 64}, 2.0);
  at::Tensor view = q.narrow(2, 128, 64);
  for (bool interleaved : {false, true}) {
    const std::string what = interleaved ? "interleaved" : "neox";
    ExpectClose(ApplyRope(view.cuda(), cs_cuda, interleaved), ApplyRope(view, cs, interleaved), TolFor(dt()),
                what + " strided");
    at::Tensor k = Randn({t, 1, 64});
    ExpectClose(ApplyRope(k.cuda(), cs_cuda, interleaved), ApplyRope(k, cs, interleaved), TolFor(dt()),
                what + " contiguous");
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaNormRope, ::testing::Values(at::kFloat, at::kBFloat16, at::kHalf),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

}  // namespace
}  // namespace inferd::ops
