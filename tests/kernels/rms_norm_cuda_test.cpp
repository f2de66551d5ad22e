// CUDA RMSNorm against a CPU reference. Reported as skipped on machines without a CUDA device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda/device.h"
#include "cuda/rms_norm.h"

namespace inferd::kernels {
namespace {

std::vector<float> Reference(const std::vector<float>& x, const std::vector<float>& w, int64_t n, int64_t h,
                             float eps) {
  std::vector<float> out(x.size());
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < h; ++i) ss += double(x[t * h + i]) * x[t * h + i];
    float inv = 1.0f / std::sqrt(float(ss / h) + eps);
    for (int64_t i = 0; i < h; ++i) out[t * h + i] = x[t * h + i] * inv * w[i];
  }
  return out;
}

TEST(RmsNormCuda, MatchesCpuReferenceF32) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const int64_t n = 37, h = 1000;
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> x(n * h), w(h);
  for (auto& v : x) v = d(rng);
  for (auto& v : w) v = 1.f + 0.1f * d(rng);
  float *dx, *dw, *dout;
  ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dw, w.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dout, x.size() * 4), cudaSuccess);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
  ASSERT_EQ(RmsNorm(dx, dw, dout, n, h, 1e-6f, DType::kF32, nullptr), cudaSuccess);
  std::vector<float> out(x.size());
  ASSERT_EQ(cudaMemcpy(out.data(), dout, out.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  auto ref = Reference(x, w, n, h, 1e-6f);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << i;
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dout);
}

TEST(RmsNormCuda, ZeroTokensIsANoOp) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  EXPECT_EQ(RmsNorm(nullptr, nullptr, nullptr, 0, 64, 1e-6f, DType::kBF16, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace inferd::kernels
