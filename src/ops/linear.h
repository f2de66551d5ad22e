// nn.Linear for the model code: y = x w^T (+ b). Inputs of up to kGemvMaxRows rows on CPU (decode steps,
// MoE experts' rows) run the streaming GEMV kernel (kernels/cpu/gemv.*, its best ISA path for this CPU) on
// the ops work pool; everything else goes to at::linear (oneDNN/MKL).
#pragma once

#include <ATen/core/Tensor.h>

namespace inferd::ops {

// Rows up to which the GEMV kernel is used: it reads each weight once per call whatever the row count and
// reuses it from cache across register blocks of up to 8 rows; measured faster than at::linear at 1-64
// rows (benchmarks/kernels/RESULTS.md).
constexpr int64_t kGemvMaxRows = 64;

at::Tensor Linear(const at::Tensor& x,           // [rows, in]
                  const at::Tensor& weight,      // [out, in]
                  const at::Tensor& bias = {});  // [out] or undefined
// -> [rows, out], x.dtype

// Per-head products (MLA's absorbed decode weights): y[b, h, :] = x[b, h, :] w[h]^T.
at::Tensor HeadLinear(const at::Tensor& x,   // [rows, heads, in], last dim contiguous
                      const at::Tensor& w);  // [heads, out, in]
// -> [rows, heads, out], x.dtype

// The GEMV kernel alone (any row count), for tests. Same contract as Linear; CPU, contiguous weight,
// x/weight/bias of one dtype (float32 or bfloat16).
at::Tensor GemvLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

}  // namespace inferd::ops
