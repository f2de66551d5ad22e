// Skinny matrix product for decode: y[m, n] = sum_k x[m, k] * w[n, k] for 1-64 rows m (weights [N, K]
// row-major, as nn.Linear stores them). Raw pointers, no torch; the wrapper is src/ops/linear.cpp.
//
// Memory bound at few rows: every weight byte is read once per call whatever m is. The kernel streams
// `weight_rows` W rows at a time (one by default: a single sequential stream, which the hardware
// prefetcher follows best) and, for each, applies it to a register block of up to 8 x rows, so a batch
// reuses each weight row from L1/L2 instead of reading it again per row.
//
// Dispatch is at run time by CPU features (GemvBestIsa); each ISA can also be forced (GemvRangeIsa) so that
// every path this CPU supports is testable on it.
//
// Accumulation-order invariant: for a given ISA, y[m, n] is computed in float32 in one fixed order that
// depends only on k (not on m, on the row's position in its register block, on `weight_rows`, nor on the
// column range), so a row's result does not depend on how many rows are in the call:
//   kAvx512 / kAvx2: two float32 vector accumulators (16 / 8 lanes); K is cut into blocks of 32 / 16;
//     accumulator 0 takes the block's even elements, accumulator 1 its odd ones (bf16: the shift and the
//     mask that widen a bf16 pair to two float32 lanes), float32: the block's first and second half; at the
//     end acc0 + acc1 is reduced across lanes. Products are fused multiply-adds.
//   kAvx512Bf16: vdpbf16ps (bf16 pairs, float32 accumulate), two accumulators alternating over 32-element
//     blocks of K, acc0 + acc1 reduced across lanes at the end (float32 inputs take the kAvx512 path).
//   kScalar: one float32 sum in k order.
// The output is rounded once (bf16: to nearest even) after the bias is added in float32.
#pragma once

#include <cstdint>
#include <string>

namespace inferd::kernels::cpu {

enum class GemvType : int { kFloat32 = 0, kBFloat16 = 1 };

// Instruction sets, in increasing preference. kAmxBf16 (AMX tiles, bf16 operands) is a GEMM path only
// (gemm.h): GEMV never picks it, and a GEMV forced onto it runs kAvx512Bf16.
enum class GemvIsa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3, kAmxBf16 = 4 };

struct GemvArgs {
  const void* x = nullptr;  // [m, k] with row stride ldx (elements), type `type`
  int64_t ldx = 0;
  const void* w = nullptr;  // [n, k] contiguous, type `type`
  GemvType type = GemvType::kFloat32;
  void* y = nullptr;  // [m, n] with row stride ldy (elements), type `type` (bf16 rounded to nearest even)
  int64_t ldy = 0;
  const void* bias = nullptr;  // [n], type `type`, or null
  int64_t m = 0, n = 0, k = 0;
  // Optional: x already converted by GemvPackX for the ISA the call runs (shared by the chunks of one
  // product); null makes every GemvRange call convert x into a thread-local buffer itself.
  const float* x_packed = nullptr;
};

const char* GemvIsaName(GemvIsa isa);
// True when this CPU can run `isa` (kScalar always; kAmxBf16: AMX-BF16 and AVX512-BF16 in CPUID and the
// kernel's permission to use tile data, requested on the first call).
bool GemvIsaSupported(GemvIsa isa);
// INFERD_CPU_ISA, where set, caps the paths GemvIsaSupported offers (so every dispatch, GEMV and GEMM) at
// one of scalar, avx2, avx512, avx512bf16, amxbf16 (GemvIsaName): to measure a faster CPU's slower paths
// on it, or to keep AMX off. Empty when unset or valid; otherwise what is wrong with it (the cap is then
// ignored; the daemon refuses to start).
std::string GemvIsaEnvError();
// The path GemvRange takes for `type` on this CPU.
GemvIsa GemvBestIsa(GemvType type);
// True when GemvRange beats a BLAS for this type here (a vector path exists).
bool GemvFast(GemvType type);

// Floats GemvPackX writes for `isa` (0 where the path reads x as it is: kScalar, kAvx512Bf16 with bf16).
int64_t GemvPackedXSize(const GemvArgs& args, GemvIsa isa);
// Converts x to the float32 layout the `isa` path reads: out[GemvPackedXSize(args, isa)].
void GemvPackX(const GemvArgs& args, GemvIsa isa, float* out);

// Computes output columns [n_begin, n_end) for every row on the best path. Thread-safe for disjoint
// column ranges.
void GemvRange(const GemvArgs& args, int64_t n_begin, int64_t n_end);

// The same on a forced path. weight_rows: W rows streamed together (1, 2 or 4; 0 = the default, 1).
// Requires GemvIsaSupported(isa); args.x_packed, when set, must come from GemvPackX for this isa.
void GemvRangeIsa(const GemvArgs& args, GemvIsa isa, int64_t n_begin, int64_t n_end, int weight_rows = 0);

}  // namespace inferd::kernels::cpu
