#include <ATen/ATen.h>

#include "kernels/cpu/gemm.h"
#include "ops/linear.h"
#include "ops/parallel.h"

namespace inferd::ops {

bool GemmEligible(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!x.device().is_cpu() || x.dim() != 2 || w.dim() != 2 || x.size(0) <= kGemvMaxRows) return false;
  const auto t = x.scalar_type();
  if (t != w.scalar_type() || (b.defined() && b.scalar_type() != t)) return false;
  // bfloat16 only: there the kernel beat at::linear at every prefill shape measured; float32 at::linear
  // (MKL sgemm) was as fast or faster on dense-270m's products (benchmarks/kernels/RESULTS.md).
  if (t != at::kBFloat16) return false;
  if (kernels::cpu::GemmBestIsa() == kernels::cpu::GemvIsa::kScalar) return false;
  return w.is_contiguous() && (!b.defined() || b.is_contiguous());
}

at::Tensor GemmLinear(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b) {
  TORCH_CHECK(x_in.dim() == 2 && w.dim() == 2 && x_in.size(1) == w.size(1), "GemmLinear: shapes");
  TORCH_CHECK(w.is_contiguous(), "GemmLinear: weight must be contiguous");
  const auto t = x_in.scalar_type();
  TORCH_CHECK((t == at::kBFloat16 || t == at::kFloat) && w.scalar_type() == t && (!b.defined() || b.scalar_type() == t),
              "GemmLinear: x, weight and bias must share one dtype, float32 or bfloat16");
  const at::Tensor x = x_in.stride(1) == 1 ? x_in : x_in.contiguous();
  const at::Tensor bias = b.defined() ? b.contiguous() : b;
  const int64_t m = x.size(0), n = w.size(0), k = w.size(1);
  at::Tensor y = at::empty({m, n}, x.options());
  kernels::cpu::GemvArgs a;
  a.x = x.data_ptr();
  a.ldx = x.stride(0);
  a.w = w.data_ptr();
  a.type = t == at::kBFloat16 ? kernels::cpu::GemvType::kBFloat16 : kernels::cpu::GemvType::kFloat32;
  a.y = y.data_ptr();
  a.ldy = n;
  a.bias = bias.defined() ? bias.data_ptr() : nullptr;
  a.m = m;
  a.n = n;
  a.k = k;
  kernels::cpu::Gemm(a, ParallelChunks);
  return y;
}

}  // namespace inferd::ops
