#include "cuda/common.cuh"
#include "cuda/rope.h"

namespace inferd::kernels {
namespace {

using detail::FromFloat;
using detail::ToFloat;

constexpr int kThreads = 256;

// One thread per (token, head, pair); grid-strided.
template <typename T>
__global__ void RopeKernel(RopeArgs a) {
  const T* x = static_cast<const T*>(a.x);
  T* out = static_cast<T*>(a.out);
  const int64_t half = a.dim / 2;
  const int64_t total = a.num_tokens * a.heads * half;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = i % half;
    const int64_t h = (i / half) % a.heads;
    const int64_t t = i / (half * a.heads);
    const T* row = x + t * a.token_stride + h * a.head_stride;
    const float x1 = ToFloat(a.interleaved ? row[2 * p] : row[p]);
    const float x2 = ToFloat(a.interleaved ? row[2 * p + 1] : row[half + p]);
    const float c = a.cos[t * half + p], s = a.sin[t * half + p];
    T* o = out + (t * a.heads + h) * a.dim;
    o[p] = FromFloat<T>(__fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
    o[half + p] = FromFloat<T>(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
  }
}

}  // namespace

cudaError_t Rope(const RopeArgs& a, cudaStream_t stream) {
  if (a.num_tokens < 0 || a.heads <= 0 || a.dim <= 0 || a.dim % 2 != 0) return cudaErrorInvalidValue;
  if (a.num_tokens == 0) return cudaSuccess;
  const int64_t total = a.num_tokens * a.heads * (a.dim / 2);
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
  return INFERD_CUDA_DISPATCH(a.dtype, [&] {
    RopeKernel<T><<<grid, kThreads, 0, stream>>>(a);
    return cudaGetLastError();
  });
}

}  // namespace inferd::kernels
