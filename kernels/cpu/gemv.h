// Skinny matrix product for decode: y[m, n] = sum_k x[m, k] * w[n, k] for a few rows m (weights [N, K]
// row-major, as nn.Linear stores them). Memory bound: every weight byte is read once per call, so the
// kernel streams W rows and keeps the x rows in registers/L1. Raw pointers, no torch; the wrapper is
// src/ops/linear.cpp. Accumulates in float32 in the same order for every m (a row's result does not
// depend on how many rows are in the call).
#pragma once

#include <cstdint>

namespace inferd::kernels::cpu {

enum class GemvType : int { kFloat32 = 0, kBFloat16 = 1 };

struct GemvArgs {
  const void* x = nullptr;  // [m, k] with row stride ldx (elements), type `type`
  int64_t ldx = 0;
  const void* w = nullptr;  // [n, k] contiguous, type `type`
  GemvType type = GemvType::kFloat32;
  void* y = nullptr;        // [m, n] with row stride ldy (elements), type `type` (bf16 rounded to nearest even)
  int64_t ldy = 0;
  const void* bias = nullptr;  // [n], type `type`, or null
  int64_t m = 0, n = 0, k = 0;
};

// Computes output columns [n_begin, n_end) for every row. Thread-safe for disjoint column ranges.
void GemvRange(const GemvArgs& args, int64_t n_begin, int64_t n_end);

// True when this CPU runs the bf16 path natively (AVX512-BF16); otherwise GemvRange still works
// (scalar-vector fallback) but is slower than a BLAS.
bool GemvBf16Native();

}  // namespace inferd::kernels::cpu
