// nn.Linear for the model code: y = x w^T (+ b). On CPU, inputs of fewer than kGemmMinRows rows (decode
// steps of few sequences, MoE experts' rows) run the streaming GEMV kernel (kernels/cpu/gemv.*, its best
// ISA path for this CPU) on the ops work pool; from kGemmMinRows rows on (decode-sized rows: where the
// GEMM's AVX-512 path runs; from kGemmMinRowsAmx where it runs on AMX) they run the GEMM kernel
// (kernels/cpu/gemm.*; LinearPathFor below says which); what neither takes goes to at::linear (oneDNN/MKL).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace inferd::ops {

// Decode-sized inputs: steps of up to this many rows run only the ops pool's kernels (GEMV or, from
// kGemmMinRows rows, GEMM: float32 as well as bfloat16), never at::linear; measured faster than at::linear
// at 1-64 rows (benchmarks/kernels/RESULTS.md). The worker switches libtorch's intra-op threads off for
// such steps.
constexpr int64_t kGemvMaxRows = 64;

// The one routing constant between the two kernels: products of at least this many rows run the GEMM
// kernel, fewer the GEMV kernel. The GEMV streams each weight once per register block of rows but its
// dot-product form (an x load per FMA, a lane reduction per output) caps it at about 45 GFLOP per CPU
// second here; the GEMM's register tile computes faster, and for decode-sized products it converts each
// weight micro-panel to float32 right before use while prefetching the next (kernels/cpu/gemm.h), so the
// conversion no longer needs many rows to amortise. Measured on dense-270m's and moe-700m's products,
// bf16 and float32, 2 threads on the ops pool (bench_gemm --gemv 1, benchmarks/kernels/RESULTS.md, issue-9
// crossover rerun): the GEMM is 1.08-1.49x the GEMV at 16 rows and faster at every row count above, 0.98-2.19x
// at 12, 0.70-1.33x at 8. This holds for the GEMM's AVX-512 path only: forced onto AVX2 (6 x 16 tile) both
// kernels were measured at 8-64 rows and the GEMM was 0.54-0.93x the GEMV at every row count, so on CPUs
// without AVX-512 every decode-sized product runs the GEMV.
constexpr int64_t kGemmMinRows = 16;
// The same crossover for bf16 products where the GEMM runs on AMX tiles (kAmxBf16): there decode-sized
// products load 16 weight rows straight into a tile and tdpbf16ps makes the compute free, so the weights
// stream at the memory's rate; measured on dense-270m's and moe-700m's products (bench_gemm --isa amxbf16
// --gemv 1, Intel Xeon with AMX, benchmarks/kernels/RESULTS.md): the GEMM is 1.30-1.64x the GEMV at 4 rows,
// 2.1-2.5x at 8, 0.94-1.36x at 2 and 0.74-0.99x at 1.
constexpr int64_t kGemmMinRowsAmx = 4;

// What is wrong with INFERD_CPU_ISA (kernels/cpu/gemv.h: caps the CPU kernels' instruction set), empty when
// it is unset or valid. ModelRunner::Load refuses a CPU model on a non-empty answer.
std::string CpuIsaEnvError();

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
// [sum(rows[0..s)), sum(rows[0..s])) of x times w[index[s]]^T (w[s] when index is empty) into the same rows
// of the result. Every weight is read once for all of its segment's rows. The weights are separate tensors
// of one shape and dtype (views of a checkpoint's mapping, slices of one stack, anything contiguous). GEMV
// kernel (check SegmentedGemvEligible), except that bf16 segments of kGemmMinRowsAmx to 128 rows run the
// GEMM's AMX path where the CPU has it, as ops::Linear would; segments of more than kGemvMaxRows rows on the
// GEMV are correct but slow (the kernel is memory-bound by design).
at::Tensor SegmentedGemvLinear(const at::Tensor& x,                      // [sum(rows), in]
                               const std::vector<at::Tensor>& w,         // [weights] of [out, in], contiguous
                               const std::vector<int64_t>& rows,         // [segments], >= 0
                               const std::vector<int64_t>& index = {});  // [segments] in [0, weights), or empty
// -> [sum(rows), out], x.dtype
bool SegmentedGemvEligible(const at::Tensor& x, const std::vector<at::Tensor>& w);

// Several SegmentedGemvLinear products (of one dtype) in one pool call: result p is
// SegmentedGemvLinear(products[p].x, .w, .rows, .index), the same bits.
struct SegmentedProduct {
  at::Tensor x;                // [sum(rows), in]
  std::vector<at::Tensor> w;   // [weights] of [out, in], each contiguous, one shape and dtype
  std::vector<int64_t> rows;   // [segments]
  std::vector<int64_t> index;  // [segments], or empty
};
std::vector<at::Tensor> SegmentedGemvLinears(const std::vector<SegmentedProduct>& products);

// Whether x as one segment of SegmentedGemvLinear against {w} gives ops::Linear(x, w)'s bits (the same
// kernel: the GEMV, or the GEMM's AMX path for bf16 rows where Linear takes it).
bool SegmentedMatchesLinear(const at::Tensor& x,   // [rows, in]
                            const at::Tensor& w);  // [out, in]

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
