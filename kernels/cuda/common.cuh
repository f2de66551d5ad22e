// Device-side helpers shared by the .cu files: dtype conversions and warp reductions. Private to kernels/cuda.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/dtype.h"

namespace inferd::kernels::detail {

template <typename T>
__device__ __forceinline__ float ToFloat(T v) {
  return static_cast<float>(v);
}
template <>
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float ToFloat(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T FromFloat(float v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat(float v) {
  return __float2bfloat16(v);
}
template <>
__device__ __forceinline__ __half FromFloat(float v) {
  return __float2half(v);
}

// Rounds v to T and back: the value a T tensor would hold.
template <typename T>
__device__ __forceinline__ float Round(float v) {
  return ToFloat(FromFloat<T>(v));
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Largest grid.x a launch may use; kernels that take more rows loop over them (grid-stride).
constexpr int64_t kMaxGridX = 2147483647;
// grid.y / grid.z limit.
constexpr int64_t kMaxGridYZ = 65535;

}  // namespace inferd::kernels::detail

// Calls fn.template operator()<T>() with T the CUDA type of `dtype`; returns cudaErrorInvalidValue otherwise.
#define INFERD_CUDA_DISPATCH(dtype, ...)      \
  [&]() -> cudaError_t {                      \
    switch (dtype) {                          \
      case ::inferd::kernels::DType::kF32: {  \
        using T = float;                      \
        return __VA_ARGS__();                 \
      }                                       \
      case ::inferd::kernels::DType::kBF16: { \
        using T = __nv_bfloat16;              \
        return __VA_ARGS__();                 \
      }                                       \
      case ::inferd::kernels::DType::kF16: {  \
        using T = __half;                     \
        return __VA_ARGS__();                 \
      }                                       \
    }                                         \
    return cudaErrorInvalidValue;             \
  }()
