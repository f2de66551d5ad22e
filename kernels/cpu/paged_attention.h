// Paged decode attention on CPU: raw pointers, no torch. One query token per sequence attends to the
// first context_lens[b] cached tokens of its block table. Thin torch wrapper: src/ops/attention.cpp.
#pragma once

#include <cstdint>

#include "elem_type.h"

namespace inferd::kernels::cpu {

// Strides are in elements; the last dimension of q, k, v is contiguous.
struct PagedDecodeArgs {
  const void* q = nullptr;        // [num_seqs, num_q_heads, head_dim_k] contiguous, q_type
  ElemType q_type = ElemType::kFloat32;
  const void* k_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim_k] (strided), kv_type
  const void* v_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim_v] (strided), kv_type
  ElemType kv_type = ElemType::kFloat32;
  int64_t k_block_stride = 0, k_token_stride = 0, k_head_stride = 0;
  int64_t v_block_stride = 0, v_token_stride = 0, v_head_stride = 0;
  const int32_t* block_tables = nullptr;  // [num_seqs, block_table_stride]
  int64_t block_table_stride = 0;
  const int32_t* context_lens = nullptr;  // [num_seqs], each >= 1
  float* out = nullptr;           // [num_seqs, num_q_heads, head_dim_v] contiguous float32
  int64_t num_seqs = 0;
  int64_t num_q_heads = 0;
  int64_t num_kv_heads = 0;       // divides num_q_heads; query head h reads kv head h / (q/kv)
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t block_size = 0;
  float scale = 1.0f;
};

// Instruction sets with a decode-attention path, dispatched at run time by CPU features. Each path widens
// bf16 K/V in registers and accumulates in float32; the softmax's exp is kernels/cpu/fast_exp.h on every path.
enum class AttentionIsa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
const char* AttentionIsaName(AttentionIsa isa);
bool AttentionIsaSupported(AttentionIsa isa);  // kScalar always
AttentionIsa AttentionBestIsa();

// Computes work items [begin, end) of num_seqs * num_kv_heads (item = seq * num_kv_heads + kv_head) on the
// best path. Thread-safe for disjoint ranges; the caller parallelises.
void PagedDecodeAttentionRange(const PagedDecodeArgs& args, int64_t begin, int64_t end);
// The same on a forced path; requires AttentionIsaSupported(isa).
void PagedDecodeAttentionRangeIsa(const PagedDecodeArgs& args, AttentionIsa isa, int64_t begin, int64_t end);

}  // namespace inferd::kernels::cpu
