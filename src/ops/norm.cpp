#include "ops/norm.h"

#include <ATen/ATen.h>

#include "ops/cuda_ops.h"

namespace inferd::ops {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (x.is_cuda() && weight.scalar_type() == x.scalar_type()) return CudaRmsNorm(x, weight, eps);
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor normed = (xf * at::rsqrt(var + eps)).to(x.scalar_type());
  return weight * normed;
}

at::Tensor AddRmsNorm(at::Tensor& residual, const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (residual.is_cuda() && residual.is_contiguous() && x.scalar_type() == residual.scalar_type() &&
      weight.scalar_type() == residual.scalar_type()) {
    return CudaAddRmsNorm(residual, x, weight, eps);
  }
  residual.add_(x);
  return RmsNorm(residual, weight, eps);
}

at::Tensor SiluAndMul(const at::Tensor& gate_up) {
  if (gate_up.is_cuda()) return CudaSiluAndMul(gate_up);
  const int64_t inter = gate_up.size(-1) / 2;
  return at::silu(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
}

}  // namespace inferd::ops
