#include "ops/linear.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemv.h"
#include "ops/parallel.h"

namespace inferd::ops {
namespace {

kernels::cpu::GemvType GemvTypeOf(at::ScalarType t) {
  return t == at::kBFloat16 ? kernels::cpu::GemvType::kBFloat16 : kernels::cpu::GemvType::kFloat32;
}

bool GemvEligible(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!x.device().is_cpu() || x.dim() != 2 || w.dim() != 2 || x.size(0) > kGemvMaxRows || x.size(0) == 0) return false;
  const auto t = x.scalar_type();
  if (t != w.scalar_type() || (b.defined() && b.scalar_type() != t)) return false;
  if (t != at::kBFloat16 && t != at::kFloat) return false;
  if (!kernels::cpu::GemvFast(GemvTypeOf(t))) return false;
  return w.is_contiguous() && (!b.defined() || b.is_contiguous());
}

}  // namespace

at::Tensor GemvLinear(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b) {
  TORCH_CHECK(x_in.dim() == 2 && w.dim() == 2 && x_in.size(1) == w.size(1), "GemvLinear: shapes");
  TORCH_CHECK(w.is_contiguous(), "GemvLinear: weight must be contiguous");
  const at::Tensor x = x_in.stride(1) == 1 ? x_in : x_in.contiguous();
  const int64_t m = x.size(0), n = w.size(0), k = w.size(1);
  at::Tensor y = at::empty({m, n}, x.options());
  kernels::cpu::GemvArgs a;
  a.x = x.data_ptr();
  a.ldx = x.stride(0);
  a.w = w.data_ptr();
  a.type = GemvTypeOf(x.scalar_type());
  a.y = y.data_ptr();
  a.ldy = n;
  a.bias = b.defined() ? b.data_ptr() : nullptr;
  a.m = m;
  a.n = n;
  a.k = k;
  // x converted once for all chunks: [m, padded k] float32.
  const kernels::cpu::GemvIsa isa = kernels::cpu::GemvBestIsa(a.type);
  std::vector<float> packed(static_cast<size_t>(kernels::cpu::GemvPackedXSize(a, isa)));
  if (!packed.empty()) {
    kernels::cpu::GemvPackX(a, isa, packed.data());
    a.x_packed = packed.data();
  }
  // Chunks of ~64 KiB of weights (stay in L2 while every row block reads them; a multiple of 4 rows),
  // enough of them to balance.
  const int64_t elem = static_cast<int64_t>(x.element_size());
  int64_t rows = std::max<int64_t>(4, (int64_t{64} << 10) / std::max<int64_t>(1, k * elem));
  rows = (rows + 3) / 4 * 4;
  const int64_t chunks = (n + rows - 1) / rows;
  ParallelChunks(chunks, [&](int64_t c) {
    const int64_t begin = c * rows;
    kernels::cpu::GemvRange(a, begin, std::min(n, begin + rows));
  });
  return y;
}

at::Tensor HeadLinear(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 3 && w.dim() == 3 && x.size(1) == w.size(0) && x.size(2) == w.size(2), "HeadLinear: shapes");
  if (!GemvEligible(x.select(1, 0), w[0], {}) || x.stride(2) != 1) {
    return at::bmm(x.transpose(0, 1), w.transpose(1, 2)).transpose(0, 1);
  }
  const int64_t m = x.size(0), heads = x.size(1), n = w.size(1), k = w.size(2);
  at::Tensor y = at::empty({m, heads, n}, x.options());
  const int64_t elem = static_cast<int64_t>(x.element_size());
  ParallelChunks(heads, [&](int64_t h) {
    kernels::cpu::GemvArgs a;
    a.x = static_cast<const char*>(x.data_ptr()) + h * x.stride(1) * elem;
    a.ldx = x.stride(0);
    a.w = static_cast<const char*>(w.data_ptr()) + h * n * k * elem;
    a.type = GemvTypeOf(x.scalar_type());
    a.y = static_cast<char*>(y.data_ptr()) + h * n * elem;
    a.ldy = heads * n;
    a.m = m;
    a.n = n;
    a.k = k;
    kernels::cpu::GemvRange(a, 0, n);
  });
  return y;
}

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (GemvEligible(x, w, b)) return GemvLinear(x, w, b);
  if (GemmEligible(x, w, b)) return GemmLinear(x, w, b);
  return at::linear(x, w, b);
}

}  // namespace inferd::ops
