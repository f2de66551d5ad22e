#include "cuda/common.cuh"
#include "cuda/rms_norm.h"

namespace inferd::kernels {
namespace {

using detail::FromFloat;
using detail::Round;
using detail::ToFloat;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// Sum of v over the block; every thread gets the result. Uses `scratch` [kWarps] and two barriers.
__device__ float BlockSum(float v, float* scratch) {
  v = detail::WarpSum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kWarps; ++w) total += scratch[w];
  return total;
}

// Rows are grid-strided over blocks; threads stride over hidden. When residual != nullptr the row read is
// T(residual + x), written back to residual first.
template <typename T>
__global__ void __launch_bounds__(kThreads) RmsNormKernel(const T* __restrict__ x, T* residual, const T* __restrict__ w,
                                                          T* out, int64_t rows, int64_t hidden, float eps) {
  __shared__ float scratch[kWarps];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * hidden;
    T* rr = residual ? residual + r * hidden : nullptr;
    T* out_row = out + r * hidden;
    float ss = 0.f;
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      float v = ToFloat(xr[i]);
      if (rr) {
        v = Round<T>(ToFloat(rr[i]) + v);
        rr[i] = FromFloat<T>(v);
      }
      ss += v * v;
    }
    const float inv = rsqrtf(BlockSum(ss, scratch) / static_cast<float>(hidden) + eps);
    // Each thread re-reads only the elements it wrote, so no barrier is needed between the passes.
    const T* src = rr ? rr : xr;
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      const float normed = Round<T>(ToFloat(src[i]) * inv);
      out_row[i] = FromFloat<T>(normed * ToFloat(w[i]));
    }
  }
}

template <typename T>
__global__ void SiluAndMulKernel(const T* __restrict__ gate_up, T* __restrict__ out, int64_t rows, int64_t inter) {
  const int64_t total = rows * inter;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter, c = i % inter;
    const float g = ToFloat(gate_up[r * 2 * inter + c]);
    const float u = ToFloat(gate_up[r * 2 * inter + inter + c]);
    const float silu = Round<T>(g / (1.0f + expf(-g)));
    out[i] = FromFloat<T>(silu * u);
  }
}

unsigned RowGrid(int64_t rows) {
  return static_cast<unsigned>(rows < 65536 ? rows : 65536);
}

}  // namespace

cudaError_t RmsNorm(const void* x, const void* weight, void* out, int64_t num_tokens, int64_t hidden, float eps,
                    DType dtype, cudaStream_t stream) {
  if (num_tokens < 0 || hidden <= 0) return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  return INFERD_CUDA_DISPATCH(dtype, [&] {
    RmsNormKernel<T><<<RowGrid(num_tokens), kThreads, 0, stream>>>(static_cast<const T*>(x), nullptr,
                                                                   static_cast<const T*>(weight), static_cast<T*>(out),
                                                                   num_tokens, hidden, eps);
    return cudaGetLastError();
  });
}

cudaError_t FusedAddRmsNorm(const void* x, void* residual, const void* weight, void* out, int64_t num_tokens,
                            int64_t hidden, float eps, DType dtype, cudaStream_t stream) {
  if (num_tokens < 0 || hidden <= 0 || residual == nullptr) return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  return INFERD_CUDA_DISPATCH(dtype, [&] {
    RmsNormKernel<T><<<RowGrid(num_tokens), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(residual),
                                                                   static_cast<const T*>(weight), static_cast<T*>(out),
                                                                   num_tokens, hidden, eps);
    return cudaGetLastError();
  });
}

cudaError_t SiluAndMul(const void* gate_up, void* out, int64_t num_tokens, int64_t inter, DType dtype,
                       cudaStream_t stream) {
  if (num_tokens < 0 || inter <= 0) return cudaErrorInvalidValue;
  if (num_tokens == 0) return cudaSuccess;
  const int64_t total = num_tokens * inter;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
  return INFERD_CUDA_DISPATCH(dtype, [&] {
    SiluAndMulKernel<T>
        <<<grid, kThreads, 0, stream>>>(static_cast<const T*>(gate_up), static_cast<T*>(out), num_tokens, inter);
    return cudaGetLastError();
  });
}

}  // namespace inferd::kernels
