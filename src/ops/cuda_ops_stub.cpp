// Built when nvcc was not found at configure time: CUDA tensors reach these only through a libtorch that
// has CUDA while our kernels were not compiled, and get a clear error.
#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

#include "ops/cuda_ops.h"

namespace inferd::ops {
namespace {

[[noreturn]] void NoKernels(const char* op) {
  throw std::runtime_error(std::string(op) +
                           ": this build has no CUDA kernels (nvcc was not found when it was configured)");
}

}  // namespace

at::Tensor CudaRmsNorm(const at::Tensor&, const at::Tensor&, double) {
  NoKernels("RmsNorm(cuda)");
}
at::Tensor CudaAddRmsNorm(at::Tensor&, const at::Tensor&, const at::Tensor&, double) {
  NoKernels("AddRmsNorm(cuda)");
}
at::Tensor CudaSiluAndMul(const at::Tensor&) {
  NoKernels("SiluAndMul(cuda)");
}
at::Tensor CudaApplyRope(const at::Tensor&, const RopeCosSin&, bool) {
  NoKernels("ApplyRope(cuda)");
}
at::Tensor CudaPagedDecodeAttention(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                    const at::Tensor&, double) {
  NoKernels("PagedDecodeAttention(cuda)");
}
std::pair<at::Tensor, at::Tensor> CudaMoeRoute(const at::Tensor&, const at::Tensor&, const MoeRoutingParams&) {
  NoKernels("MoeRoute(cuda)");
}
std::pair<at::Tensor, at::Tensor> CudaGroupByExpert(const at::Tensor&, int64_t) {
  NoKernels("GroupByExpert(cuda)");
}

}  // namespace inferd::ops
