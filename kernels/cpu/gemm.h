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
//   (12 ymm accumulators); kAmxBf16 (bf16 operands; float32 ones take kAvx512): for m > 128 the same blocking
//   with AMX tiles, MR 32 x NR 32: x rows are the A tiles as they are ([ceil(k / 32)][MR][32] bf16,
//   zero-padded), W's bf16 pairs the B tiles (the kAvx512Bf16 micro-panel, slot rows padded to 16), and each
//   tdpbf16ps multiplies a 16 x 32 x block by 32 x 16 weights into a 16 x 16 float32 tile (4 tiles per
//   micro-kernel; the tile state is configured per task); for m <= 128 (decode, short chunks) the roles swap
//   so that no weight is converted: 16 W rows x 32 K elements are an A tile loaded in place, x's pairs the B
//   tiles (16 rows each, two per pass over a 32-row weight group), and the [n][m] result tiles are
//   transposed into y; kScalar: plain loops (the reference path).
//
// Accumulation-order invariant: for a given ISA and K, y[m, n] is computed in float32 in one fixed order
// that depends only on K (not on m, on the row's place in its panel, on the column or row ranges of the
// tasks, nor on how many tasks run): K is cut into blocks of GemmKBlock(K) (the last one shorter); within
// a block one accumulator sums the products in k order, and block sums are added in k order
// (((b0 + b1) + b2) ...); kAvx512Bf16 the same with the products taken a pair at a time, in pair order, each
// pair added as vdpbf16ps adds it (denormal inputs and outputs flushed to zero), so its results are not
// bitwise kAvx512's. kAmxBf16: one float32 chain per output over all of K in 32-element steps, as tdpbf16ps
// adds them (denormals flushed), the tile's sums stored and loaded back between K blocks, so kc does not
// change its results. kScalar: one float32 sum in k order. The bias is added in float32 after the
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

// kAmxBf16's weights-in-place path (m <= 128) in pieces, for callers that put several products' work into one
// pool call (ops::SegmentedGemvLinear). GemmAmxStreamTakes: the product is bf16 with 1-128 rows and AMX is
// usable. x is packed once per product (GemmAmxStreamXSize uint32 slots, GemmAmxStreamPackX), then
// GemmAmxStreamRange computes the output columns of weight groups [g_begin, g_end) (32 columns each, of
// GemmAmxStreamGroups) for every row, exactly as GemmIsa(kAmxBf16) does. Thread-safe for disjoint groups.
bool GemmAmxStreamTakes(const GemvArgs& args);
int64_t GemmAmxStreamXSize(const GemvArgs& args);
void GemmAmxStreamPackX(const GemvArgs& args, uint32_t* out);
int64_t GemmAmxStreamGroups(const GemvArgs& args);
void GemmAmxStreamRange(const GemvArgs& args, const uint32_t* x_packed, int64_t g_begin, int64_t g_end);

}  // namespace inferd::kernels::cpu
