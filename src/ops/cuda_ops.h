// at::Tensor wrappers over the CUDA kernels in kernels/cuda/ (raw pointers + the current stream). The
// ops in norm/rope/attention/moe dispatch here for CUDA tensors; each function has the contract of its CPU
// counterpart named below and returns the same shapes and dtypes. Inputs must be on one CUDA device; dtypes
// float32, bfloat16 or float16. Built without nvcc, every function throws (cuda_ops_stub.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

#include "ops/moe.h"
#include "ops/rope.h"

namespace inferd::ops {

// ops::RmsNorm. x [num_tokens, dim] (any leading shape), weight [dim] of x's dtype.
at::Tensor CudaRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// ops::AddRmsNorm: residual += x in residual's dtype (in place, contiguous), returns RmsNorm(residual).
at::Tensor CudaAddRmsNorm(at::Tensor& residual, const at::Tensor& x, const at::Tensor& weight, double eps);

// ops::SiluAndMul. gate_up [num_tokens, 2 * inter] -> [num_tokens, inter].
at::Tensor CudaSiluAndMul(const at::Tensor& gate_up);

// ops::ApplyRope(x, cs, interleaved). x [num_tokens, heads, dim] (last dim contiguous), cs float32 on x's device.
at::Tensor CudaApplyRope(const at::Tensor& x, const RopeCosSin& cs, bool interleaved);

// ops::PagedDecodeAttention (same arguments); q and the caches share one dtype.
at::Tensor CudaPagedDecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                    const at::Tensor& block_tables, const at::Tensor& context_lens, double scale);

// ops::MoeRoute. Ids come best choice first (MoeRoute's order is unspecified).
std::pair<at::Tensor, at::Tensor> CudaMoeRoute(const at::Tensor& router_logits, const at::Tensor& bias,
                                               const MoeRoutingParams& params);

// Stable grouping of flat expert choices: (order [n] int64 = argsort(ids, stable), counts [num_experts] int64).
std::pair<at::Tensor, at::Tensor> CudaGroupByExpert(const at::Tensor& flat_ids,  // [n] integer
                                                    int64_t num_experts);

}  // namespace inferd::ops
