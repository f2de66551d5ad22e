// RMSNorm: out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight[:], accumulated in fp32, with the
// roundings of transformers' RMSNorm (normalised value rounded to the dtype, then multiplied by weight).
// SiLU-and-mul lives here too: both are the row-wise ops around a dense MLP.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/dtype.h"

namespace inferd::kernels {

// x:      [num_tokens, hidden] contiguous, dtype `dtype`
// weight: [hidden], dtype `dtype`
// out:    [num_tokens, hidden] contiguous, dtype `dtype` (may alias x)
cudaError_t RmsNorm(const void* x, const void* weight, void* out, int64_t num_tokens, int64_t hidden, float eps,
                    DType dtype, cudaStream_t stream);

// residual[t, :] = T(residual[t, :] + x[t, :]) (in place), then out = RmsNorm(residual). Same result as an
// add in the dtype followed by RmsNorm.
// x:        [num_tokens, hidden] contiguous
// residual: [num_tokens, hidden] contiguous, read and written (must not alias x or out)
// weight:   [hidden]
// out:      [num_tokens, hidden] contiguous
cudaError_t FusedAddRmsNorm(const void* x, void* residual, const void* weight, void* out, int64_t num_tokens,
                            int64_t hidden, float eps, DType dtype, cudaStream_t stream);

// out[t, i] = T(T(silu(gate_up[t, i])) * gate_up[t, inter + i]), silu in fp32 (the roundings of
// at::silu(gate) * up in the dtype).
// gate_up: [num_tokens, 2 * inter] contiguous (gate columns first)
// out:     [num_tokens, inter] contiguous
cudaError_t SiluAndMul(const void* gate_up, void* out, int64_t num_tokens, int64_t inter, DType dtype,
                       cudaStream_t stream);

}  // namespace inferd::kernels
