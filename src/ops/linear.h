// nn.Linear for the model code: y = x w^T (+ b). On CPU, inputs of fewer than kGemmMinRows rows (decode
// steps of few sequences, MoE experts' rows) run the streaming GEMV kernel (kernels/cpu/gemv.*, its best
// ISA path for this CPU) on the ops work pool; from kGemmMinRows rows on they run the blocked GEMM kernel
// (kernels/cpu/gemm.*; LinearPathFor below says which); what neither takes goes to at::linear
// (oneDNN/MKL).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace inferd::ops {

// Decode-sized inputs: steps of up to this many rows run only the ops pool's kernels (GEMV or, from
// kGemmMinRows rows, GEMM: float32 as well as bfloat16), never at::linear; measured faster than at::linear
// at 1-64 rows (benchmarks/kernels/RESULTS.md). The worker switches libtorch's intra-op threads off for
// such steps.
constexpr int64_t kGemvMaxRows = 64;

// The one routing constant between the two kernels: products of at least this many rows run the GEMM
// kernel, fewer the GEMV kernel. The GEMV streams each weight once and overlaps that with its multiply-adds,
// but its dot-product form (an x load per FMA, a lane reduction per output) caps it at about 45 GFLOP per
// CPU second here; the GEMM's register tile computes faster but first converts every weight to float32
// panels, a memory-bound phase its multiply-adds do not overlap, which only enough rows amortise.
// Measured on dense-270m's and moe-700m's products, bf16 and float32, 2 threads (bench_gemm --gemv 1,
// benchmarks/kernels/RESULTS.md): the GEMM is 1.11-1.26x faster at 64 rows, 0.75-1.06x at 48, slower below.
constexpr int64_t kGemmMinRows = 64;

enum class LinearPath { kGemv, kGemm, kAtLinear };
// The kernel Linear runs for these operands.
LinearPath LinearPathFor(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

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
// on dense-270m's products: benchmarks/kernels/RESULTS.md). Decode-sized inputs of kGemmMinRows to
// kGemvMaxRows rows take the GEMM kernel through LinearPathFor, not through this.
bool GemmEligible(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
// The GEMM kernel alone (any row count, float32 or bfloat16), for tests. Same contract as GemvLinear.
at::Tensor GemmLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

}  // namespace inferd::ops
