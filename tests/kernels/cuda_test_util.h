// Shared by the CUDA op tests: the skip rule, per-dtype tolerances and an element-wise comparison of a CUDA
// result against the CPU path's result on the same inputs.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "cuda/device.h"

namespace inferd::testing {

// Reported as skipped (never passed) on machines without a CUDA device or a libtorch without CUDA.
#define INFERD_REQUIRE_CUDA()                                                                    \
  do {                                                                                           \
    if (::inferd::kernels::CudaDeviceCount() == 0 || !at::hasCUDA())                             \
      GTEST_SKIP() << "no CUDA device on this machine (tools/gpu_check.sh runs these on a GPU)"; \
  } while (0)

// |cuda - cpu| <= atol + rtol * |cpu| per element. Stated per dtype: about two units in the last place of
// the output dtype (both sides accumulate in fp32 from identical inputs; only the final rounding and the
// order of fp32 sums differ).
struct Tolerance {
  double atol, rtol;
};
inline Tolerance TolFor(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16:
      return {1.6e-2, 1.6e-2};  // 8-bit mantissa: ulp = 2^-7 relative
    case at::kHalf:
      return {2e-3, 2e-3};  // 11-bit mantissa: ulp = 2^-10 relative
    default:
      return {1e-5, 1e-5};  // fp32: order of summation only
  }
}

inline void ExpectClose(const at::Tensor& cuda, const at::Tensor& cpu, Tolerance tol, const std::string& what) {
  ASSERT_EQ(cuda.sizes(), cpu.sizes()) << what;
  ASSERT_EQ(cuda.scalar_type(), cpu.scalar_type()) << what;
  at::Tensor a = cuda.to(at::kCPU).to(at::kDouble).reshape({-1});
  at::Tensor b = cpu.to(at::kDouble).reshape({-1});
  at::Tensor excess = (a - b).abs() - (tol.atol + tol.rtol * b.abs());
  const int64_t worst = excess.argmax().item<int64_t>();
  ASSERT_TRUE(at::isfinite(a).all().item<bool>()) << what << ": non-finite CUDA output";
  EXPECT_LE(excess[worst].item<double>(), 0.0)
      << what << ": element " << worst << " cuda " << a[worst].item<double>() << " cpu " << b[worst].item<double>()
      << " (atol " << tol.atol << ", rtol " << tol.rtol << ")";
}

inline at::TensorOptions Cuda() {
  return at::TensorOptions().device(at::kCUDA);
}

}  // namespace inferd::testing
