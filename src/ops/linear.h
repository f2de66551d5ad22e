// nn.Linear for the model code: y = x w^T (+ b). Inputs of up to kGemvMaxRows rows on CPU (decode steps,
// MoE experts' rows) run the streaming GEMV kernel (kernels/cpu/gemv.*, its best ISA path for this CPU) on
// the ops work pool; more rows run the blocked GEMM kernel (GemmEligible below); the rest goes to
// at::linear (oneDNN/MKL).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

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

// Per-segment products in one pool call (MoE experts' rows, grouped by expert): rows
// [sum(rows[0..s)), sum(rows[0..s])) of x times w[s]^T into the same rows of the result. Every weight is
// read once for all of its segment's rows. GEMV kernel only: check SegmentedGemvEligible; segments of more
// than kGemvMaxRows rows are correct but slow (the kernel is memory-bound by design).
at::Tensor SegmentedGemvLinear(const at::Tensor& x,                // [sum(rows), in]
                               const at::Tensor& w,                // [segments, out, in] contiguous
                               const std::vector<int64_t>& rows);  // [segments], >= 0
// -> [sum(rows), out], x.dtype
bool SegmentedGemvEligible(const at::Tensor& x, const at::Tensor& w);

// The GEMV kernel alone (any row count), for tests. Same contract as Linear; CPU, contiguous weight,
// x/weight/bias of one dtype (float32 or bfloat16).
at::Tensor GemvLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// Inputs of more than kGemvMaxRows rows (prefill, Recommend's context and candidates, MoE experts with
// many rows) run the blocked GEMM kernel (kernels/cpu/gemm.*, src/ops/gemm_linear.cpp) on the ops work
// pool where it is eligible: CPU, 2-D, bfloat16 x / weight / bias, contiguous weight, a vector path on
// this CPU (measured faster than at::linear there; float32 stays on at::linear, which matched or beat it
// on dense-270m's products: benchmarks/kernels/RESULTS.md).
bool GemmEligible(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
// The GEMM kernel alone (any row count, float32 or bfloat16), for tests. Same contract as GemvLinear.
at::Tensor GemmLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

}  // namespace inferd::ops
