#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/rms_norm.h"

namespace inferd::kernels {
namespace {

template <typename T>
__device__ float ToFloat(T v) { return static_cast<float>(v); }
template <>
__device__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ float ToFloat(__half v) { return __half2float(v); }

template <typename T>
__device__ T FromFloat(float v) { return static_cast<T>(v); }
template <>
__device__ __nv_bfloat16 FromFloat(float v) { return __float2bfloat16(v); }
template <>
__device__ __half FromFloat(float v) { return __float2half(v); }

constexpr int kThreads = 256;

// One block per token row; threads stride over hidden and reduce sum of squares in shared memory.
template <typename T>
__global__ void RmsNormKernel(const T* __restrict__ x, const T* __restrict__ w, T* out, int64_t hidden, float eps) {
  const T* row = x + blockIdx.x * hidden;
  T* out_row = out + blockIdx.x * hidden;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = ToFloat(row[i]);
    ss += v * v;
  }
  __shared__ float partial[kThreads];
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  const float inv = rsqrtf(partial[0] / static_cast<float>(hidden) + eps);
  // T(x * inv) * w, in the order transformers' RMSNorm rounds.
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float normed = ToFloat(FromFloat<T>(ToFloat(row[i]) * inv));
    out_row[i] = FromFloat<T>(normed * ToFloat(w[i]));
  }
}

template <typename T>
cudaError_t Launch(const void* x, const void* w, void* out, int64_t n, int64_t hidden, float eps, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  RmsNormKernel<T><<<static_cast<unsigned>(n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<const T*>(w),
                                                                 static_cast<T*>(out), hidden, eps);
  return cudaGetLastError();
}

}  // namespace

cudaError_t RmsNorm(const void* x, const void* weight, void* out, int64_t num_tokens, int64_t hidden, float eps,
                    DType dtype, cudaStream_t stream) {
  switch (dtype) {
    case DType::kF32: return Launch<float>(x, weight, out, num_tokens, hidden, eps, stream);
    case DType::kBF16: return Launch<__nv_bfloat16>(x, weight, out, num_tokens, hidden, eps, stream);
    case DType::kF16: return Launch<__half>(x, weight, out, num_tokens, hidden, eps, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace inferd::kernels
