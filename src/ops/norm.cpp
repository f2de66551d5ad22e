#include "ops/norm.h"

#include <ATen/ATen.h>

namespace inferd::ops {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor normed = (xf * at::rsqrt(var + eps)).to(x.scalar_type());
  return weight * normed;
}

at::Tensor SiluAndMul(const at::Tensor& gate_up) {
  const int64_t inter = gate_up.size(-1) / 2;
  return at::silu(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
}

}  // namespace inferd::ops
