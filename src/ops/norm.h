// Normalisation and activation ops. Device follows the inputs. On CPU, float32/bfloat16 rows with a
// contiguous last dim run one raw kernel call (kernels/cpu/rowwise.*) instead of a chain of at:: ops; the
// result is the at:: formulation's (same rounding points, float32 arithmetic), which other devices run.
#pragma once

#include <ATen/core/Tensor.h>

namespace inferd::ops {

// RMSNorm as in Llama/DeepSeek: statistics in float32, result cast back to x's dtype, then scaled.
at::Tensor RmsNorm(const at::Tensor& x,       // [num_tokens, dim]
                   const at::Tensor& weight,  // [dim]
                   double eps);               // -> [num_tokens, dim], x.dtype

// Residual add and the next RMSNorm in one pass: hidden += delta (in place, rounded to hidden's dtype),
// then returns RmsNorm(hidden, weight, eps). hidden must not alias anything the caller still reads.
at::Tensor AddRmsNorm(at::Tensor& hidden,        // [num_tokens, dim], updated in place
                      const at::Tensor& delta,   // [num_tokens, dim]
                      const at::Tensor& weight,  // [dim]
                      double eps);               // -> [num_tokens, dim], hidden.dtype

// SwiGLU on a fused gate/up projection: silu(gate) * up.
at::Tensor SiluAndMul(const at::Tensor& gate_up);  // [num_tokens, 2 * inter] -> [num_tokens, inter]

}  // namespace inferd::ops
