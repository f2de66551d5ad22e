// Matrix product for prefill-sized inputs: y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) for m beyond the
// GEMV kernel's rows (weights [N, K] row-major, as nn.Linear stores them). Raw pointers, no torch; the
// wrapper is src/ops/linear.cpp. Operands are described by GemvArgs (x_packed is ignored).
//
// Compute bound: the design is BLIS-style cache and register blocking.
//   * x is converted to float32 once per call into row panels of MR rows, [ceil(m / MR)][k][MR] (shared
//     by all tasks);
//   * each task owns a column panel of at most NC output columns (and a row range when there are too few
//     column panels to share out). A task whose rows take several passes of MC rows (prefill) converts
//     its W rows to float32 once into NR-column micro-panels [NC / NR][k][NR] and reuses them for every
//     pass (kAvx512: NC 128, so that this panel and a pass's x panels fit L2 together). A task of one pass
//     (decode-sized m: at most MC rows) converts one KC x NR micro-panel at a time into an L1-resident buffer right
//     before every row panel multiplies it, and the first row panel's micro-kernel prefetches the next micro-panel's
//     bf16/float32 weights into L2 meanwhile, so the conversion neither waits on memory nor round-trips a whole panel
//     through L2; its default NC is narrowed to give at least 8 column tasks where N has 8 micro-panels (row tasks,
//     which convert the same weights once each, only below that);
//   * the micro-kernel keeps an MR x NR tile of float32 accumulators in registers and, for each k of a
//     KC block, multiplies a broadcast x value by NR weights (fused multiply-add). Its x micro-panel
//     (MR x KC floats) stays in L1 while it walks the KC x NC block of packed weights in L2.
//   kAvx512: MR x NR 32 with MR up to 14 (28 zmm accumulators): MR is the fewest 14-row panels that cover
//   m, evened out (m = 16: two panels of 8 rows; 64: five of 13), so decode-sized batches compute no
//   padding rows beyond one per panel; kAvx512Bf16 (bf16 operands; float32 ones take kAvx512): the same
//   tile and blocking, with x and W packed as 32-bit bf16 pairs (elements 2j, 2j + 1; a zero pads odd K)
//   instead of float32, and each vdpbf16ps multiplying a broadcast x pair by 16 columns' pairs, two K steps
//   per instruction (twice kAvx512's multiply-adds per cycle, half its packed bytes); kAvx2: MR 6 x NR 16
//   (12 ymm accumulators); kScalar: plain loops (the reference path).
//
// Accumulation-order invariant: for a given ISA and K, y[m, n] is computed in float32 in one fixed order
// that depends only on K (not on m, on the row's place in its panel, on the column or row ranges of the
// tasks, nor on how many tasks run): K is cut into blocks of GemmKBlock(K) (the last one shorter); within
// a block one accumulator sums the products in k order, and block sums are added in k order
// (((b0 + b1) + b2) ...); kAvx512Bf16 the same with the products taken a pair at a time, in pair order, each
// pair added as vdpbf16ps adds it (denormal inputs and outputs flushed to zero), so its results are not
// bitwise kAvx512's. kScalar: one float32 sum in k order. The bias is added in float32 after the
// last block, then the output is rounded once (bf16: to nearest even).
#pragma once

#include <cstdint>
#include <functional>

#include "kernels/cpu/gemv.h"

namespace inferd::kernels::cpu {

// Runs fn(task) for every task in [0, num_tasks), possibly concurrently (ops::ParallelChunks); returns
// when all are done.
using GemmParallelFor = std::function<void(int64_t num_tasks, const std::function<void(int64_t task)>& fn)>;

// Block sizes; 0 takes the default for the ISA. kc must be fixed for a given K (it sets the order).
struct GemmBlocking {
  int64_t mc = 0;  // x rows per pass over a task's columns (rounded up to a multiple of MR)
  int64_t kc = 0;  // K block (the float32 accumulator chain length before the tile is added to memory)
  int64_t nc = 0;  // output columns per task (rounded up to a multiple of NR)
  int64_t mr = 0;  // kAvx512 tile rows, 1-14 (0: the fewest 14-row panels, evened out; other ISAs ignore it)
};

// True when Gemm has a vector path for `isa` on this CPU.
bool GemmIsaSupported(GemvIsa isa);
// The path Gemm takes on this CPU (a vector path where one exists, else kScalar).
GemvIsa GemmBestIsa();
// K block length for `isa` and K (the accumulation order above), with the default blocking.
int64_t GemmKBlock(GemvIsa isa, int64_t k);

// y for every row and column on the best path. Scratch is thread-local (one call at a time per thread).
void Gemm(const GemvArgs& args, const GemmParallelFor& parallel_for);

// The same on a forced path and blocking. Requires GemmIsaSupported(isa) or isa == kScalar.
void GemmIsa(const GemvArgs& args, GemvIsa isa, const GemmParallelFor& parallel_for, const GemmBlocking& blocking = {});

}  // namespace inferd::kernels::cpu
