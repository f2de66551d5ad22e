#include <ATen/ATen.h>

#include "ops/cuda_ops.h"
#include "ops/moe.h"

namespace inferd::ops {

std::pair<at::Tensor, at::Tensor> GroupByExpert(const at::Tensor& flat_ids, int64_t num_experts) {
  if (flat_ids.is_cuda()) return CudaGroupByExpert(flat_ids, num_experts);
  return {flat_ids.argsort(/*stable=*/true), at::bincount(flat_ids, {}, num_experts)};
}

}  // namespace inferd::ops
