// Element types the CUDA kernels are instantiated for. Host-only header (no CUDA types), shared by the
// kernels and their at::Tensor wrappers.
#pragma once

namespace inferd::kernels {

enum class DType { kF32, kBF16, kF16 };

}  // namespace inferd::kernels
