// Paged decode attention on CUDA: one query token per sequence against the first context_lens[b] tokens of
// its block table, the cache layout of kernels/cpu/paged_attention.h (same block_tables / context_lens /
// strides). MHA, GQA and MQA; MLA's absorbed decode is the MQA case with V read as the latent prefix of each
// K row (v_cache = k_cache with head_dim_v = kv_lora_rank and the same strides).
// One thread block per (sequence, query head); each warp walks a strided subset of the tokens with an
// online softmax in fp32, and the warps' partial states are merged at the end. Memory beyond the output:
// O(head_dim) shared memory per block; no [heads, context] or [seq, seq] matrix anywhere.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/dtype.h"

namespace inferd::kernels {

// Strides are in elements; the last dimension of q, k, v is contiguous. q and the caches share `dtype`.
struct PagedDecodeArgs {
  const void* q = nullptr;        // [num_seqs, num_q_heads, head_dim_k] contiguous
  const void* k_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim_k] (strided)
  const void* v_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim_v] (strided)
  int64_t k_block_stride = 0, k_token_stride = 0, k_head_stride = 0;
  int64_t v_block_stride = 0, v_token_stride = 0, v_head_stride = 0;
  const int32_t* block_tables = nullptr;  // [num_seqs, block_table_stride], device memory
  int64_t block_table_stride = 0;
  const int32_t* context_lens = nullptr;  // [num_seqs], device memory; a length <= 0 gives a zero output row
  float* out = nullptr;                   // [num_seqs, num_q_heads, head_dim_v] contiguous float32
  int64_t num_seqs = 0;
  int64_t num_q_heads = 0;
  int64_t num_kv_heads = 0;  // divides num_q_heads; query head h reads kv head h / (num_q_heads / num_kv_heads)
  int64_t head_dim_k = 0;    // <= kPagedMaxHeadDim
  int64_t head_dim_v = 0;    // <= kPagedMaxHeadDim
  int64_t block_size = 0;
  float scale = 1.0f;
  DType dtype = DType::kF32;
};

constexpr int64_t kPagedMaxHeadDim = 1024;

// cudaErrorInvalidValue for shapes outside the limits above (nothing is launched).
cudaError_t PagedDecodeAttention(const PagedDecodeArgs& args, cudaStream_t stream);

}  // namespace inferd::kernels
