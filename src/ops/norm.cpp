#include "ops/norm.h"

#include <ATen/ATen.h>

#include "kernels/cpu/rowwise.h"
#include "ops/cuda_ops.h"
#include "ops/parallel.h"

namespace inferd::ops {
namespace {

using kernels::cpu::ElemType;

// CPU, 2-D, float32 or bfloat16, last dim contiguous: the raw kernels' contract.
bool RowKernelEligible(const at::Tensor& x) {
  return x.device().is_cpu() && x.dim() == 2 && x.stride(1) == 1 &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
}

ElemType ElemOf(const at::Tensor& x) {
  return x.scalar_type() == at::kFloat ? ElemType::kFloat32 : ElemType::kBFloat16;
}

bool NormWeightFits(const at::Tensor& x, const at::Tensor& w) {
  return w.device().is_cpu() && w.dim() == 1 && w.is_contiguous() && w.scalar_type() == x.scalar_type() &&
         w.size(0) == x.size(1);
}

at::Tensor RmsNormReference(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor normed = (xf * at::rsqrt(var + eps)).to(x.scalar_type());
  return weight * normed;
}

}  // namespace

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (x.is_cuda() && weight.scalar_type() == x.scalar_type()) return CudaRmsNorm(x, weight, eps);
  if (!RowKernelEligible(x) || !NormWeightFits(x, weight)) return RmsNormReference(x, weight, eps);
  at::Tensor y = at::empty(x.sizes(), x.options());
  const int64_t es = static_cast<int64_t>(x.element_size());
  char* xp = static_cast<char*>(x.data_ptr());
  char* yp = static_cast<char*>(y.data_ptr());
  ParallelRows(x.size(0), x.size(1), [&](int64_t b, int64_t e) {
    kernels::cpu::RmsNormRows(xp + b * x.stride(0) * es, x.stride(0), weight.data_ptr(), yp + b * y.stride(0) * es,
                              y.stride(0), ElemOf(x), e - b, x.size(1), static_cast<float>(eps));
  });
  return y;
}

at::Tensor AddRmsNorm(at::Tensor& hidden, const at::Tensor& delta, const at::Tensor& weight, double eps) {
  if (hidden.is_cuda() && hidden.is_contiguous() && delta.scalar_type() == hidden.scalar_type() &&
      weight.scalar_type() == hidden.scalar_type()) {
    return CudaAddRmsNorm(hidden, delta, weight, eps);
  }
  if (!RowKernelEligible(hidden) || !RowKernelEligible(delta) || delta.scalar_type() != hidden.scalar_type() ||
      delta.sizes() != hidden.sizes() || !NormWeightFits(hidden, weight)) {
    hidden.add_(delta);
    return RmsNorm(hidden, weight, eps);
  }
  at::Tensor y = at::empty(hidden.sizes(), hidden.options());
  const int64_t es = static_cast<int64_t>(hidden.element_size());
  char* hp = static_cast<char*>(hidden.data_ptr());
  const char* dp = static_cast<const char*>(delta.data_ptr());
  char* yp = static_cast<char*>(y.data_ptr());
  ParallelRows(hidden.size(0), hidden.size(1), [&](int64_t b, int64_t e) {
    kernels::cpu::AddRmsNormRows(hp + b * hidden.stride(0) * es, hidden.stride(0), dp + b * delta.stride(0) * es,
                                 delta.stride(0), weight.data_ptr(), yp + b * y.stride(0) * es, y.stride(0),
                                 ElemOf(hidden), e - b, hidden.size(1), static_cast<float>(eps));
  });
  return y;
}

at::Tensor SiluAndMul(const at::Tensor& gate_up) {
  if (gate_up.is_cuda()) return CudaSiluAndMul(gate_up);
  const int64_t inter = gate_up.size(-1) / 2;
  if (!RowKernelEligible(gate_up) || gate_up.size(1) % 2 != 0) {
    return at::silu(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
  }
  at::Tensor y = at::empty({gate_up.size(0), inter}, gate_up.options());
  const int64_t es = static_cast<int64_t>(gate_up.element_size());
  const char* gp = static_cast<const char*>(gate_up.data_ptr());
  char* yp = static_cast<char*>(y.data_ptr());
  ParallelRows(gate_up.size(0), gate_up.size(1), [&](int64_t b, int64_t e) {
    kernels::cpu::SiluMulRows(gp + b * gate_up.stride(0) * es, gate_up.stride(0), yp + b * inter * es, inter,
                              ElemOf(gate_up), e - b, inter);
  });
  return y;
}

}  // namespace inferd::ops
