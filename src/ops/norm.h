// Normalisation and activation ops. Device follows the inputs.
#pragma once

#include <ATen/core/Tensor.h>

namespace inferd::ops {

// RMSNorm as in Llama/DeepSeek: statistics in float32, result cast back to x's dtype, then scaled.
at::Tensor RmsNorm(const at::Tensor& x,       // [num_tokens, dim]
                   const at::Tensor& weight,  // [dim]
                   double eps);               // -> [num_tokens, dim], x.dtype

// residual += x (in place, in residual's dtype), then RmsNorm(residual): the pre-norm of the next sublayer
// fused with the previous sublayer's residual add on CUDA.
at::Tensor AddRmsNorm(at::Tensor& residual,      // [num_tokens, dim], updated in place
                      const at::Tensor& x,       // [num_tokens, dim], residual's dtype
                      const at::Tensor& weight,  // [dim]
                      double eps);               // -> [num_tokens, dim], residual.dtype

// SwiGLU on a fused gate/up projection: silu(gate) * up.
at::Tensor SiluAndMul(const at::Tensor& gate_up);  // [num_tokens, 2 * inter] -> [num_tokens, inter]

}  // namespace inferd::ops
