// Rotary position embedding with precomputed cos/sin (ops::RopeCosSinFor), in the two layouts of
// ops::ApplyRope. Output is always written half-split: out[..., i] = x1 c - x2 s, out[..., half + i] =
// x2 c + x1 s, with (x1, x2) = (x[2i], x[2i+1]) when interleaved (DeepSeek) and (x[i], x[half + i]) otherwise
// (neox). Products and sums in fp32 without fused multiply-add, rounded once to the dtype.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/dtype.h"

namespace inferd::kernels {

struct RopeArgs {
  const void* x = nullptr;  // [num_tokens, heads, dim], strides below (elements), last dim contiguous
  int64_t token_stride = 0;
  int64_t head_stride = 0;
  const float* cos = nullptr;  // [num_tokens, dim / 2] contiguous float32
  const float* sin = nullptr;  // [num_tokens, dim / 2] contiguous float32
  void* out = nullptr;         // [num_tokens, heads, dim] contiguous (must not alias x)
  int64_t num_tokens = 0;
  int64_t heads = 0;
  int64_t dim = 0;  // even
  bool interleaved = false;
  DType dtype = DType::kF32;
};

cudaError_t Rope(const RopeArgs& args, cudaStream_t stream);

}  // namespace inferd::kernels
