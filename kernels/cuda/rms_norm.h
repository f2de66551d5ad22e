// RMSNorm: out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight[:], accumulated in fp32.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace inferd::kernels {

enum class DType { kF32, kBF16, kF16 };

// x:      [num_tokens, hidden] contiguous, dtype `dtype`
// weight: [hidden], dtype `dtype`
// out:    [num_tokens, hidden] contiguous, dtype `dtype` (may alias x)
cudaError_t RmsNorm(const void* x, const void* weight, void* out, int64_t num_tokens, int64_t hidden, float eps,
                    DType dtype, cudaStream_t stream);

}  // namespace inferd::kernels
