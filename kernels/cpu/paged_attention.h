// Paged decode attention on CPU: raw pointers, no torch. One query token per sequence attends to the
// first context_lens[b] cached tokens of its block table. Thin torch wrapper: src/ops/attention.cpp.
#pragma once

#include <cstdint>

#include "elem_type.h"

namespace inferd::kernels::cpu {

// Strides are in elements; the last dimension of q, k, v is contiguous.
struct PagedDecodeArgs {
  const void* q = nullptr;  // [num_seqs, num_q_heads, head_dim_k] contiguous, q_type
  ElemType q_type = ElemType::kFloat32;
  const void* k_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim_k] (strided), kv_type
  const void* v_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim_v] (strided), kv_type
  ElemType kv_type = ElemType::kFloat32;
  int64_t k_block_stride = 0, k_token_stride = 0, k_head_stride = 0;
  int64_t v_block_stride = 0, v_token_stride = 0, v_head_stride = 0;
  const int32_t* block_tables = nullptr;  // [num_seqs, block_table_stride]
  int64_t block_table_stride = 0;
  const int32_t* context_lens = nullptr;  // [num_seqs], each >= 1
  float* out = nullptr;                   // [num_seqs, num_q_heads, head_dim_v] contiguous float32
  int64_t num_seqs = 0;
  int64_t num_q_heads = 0;
  int64_t num_kv_heads = 0;  // divides num_q_heads; query head h reads kv head h / (q/kv)
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t block_size = 0;
  float scale = 1.0f;
  // Split-K: with kv_splits > 1 each (sequence, kv head) context is cut into kv_splits ranges of
  // PagedDecodeSplitTokens tokens (the last ones may be short or empty); each range writes its softmax-
  // normalised partial output and (max score, sum of exp) to part_out / part_ml, and PagedDecodeMergeRange
  // combines them into out. With kv_splits == 1 the items write out directly and part_* are unused.
  int64_t kv_splits = 1;
  float* part_out = nullptr;  // [num_seqs, num_q_heads, kv_splits, head_dim_v]
  float* part_ml = nullptr;   // [num_seqs, num_q_heads, kv_splits, 2]: max scaled score, sum of exp(s - max)
};

// Instruction sets with a decode-attention path, dispatched at run time by CPU features. Each path widens
// bf16 K/V in registers and accumulates in float32; the softmax's exp is kernels/cpu/fast_exp.h on every path.
enum class AttentionIsa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
const char* AttentionIsaName(AttentionIsa isa);
bool AttentionIsaSupported(AttentionIsa isa);  // kScalar always
AttentionIsa AttentionBestIsa();

// Number of work items of PagedDecodeAttentionRange: num_seqs * num_kv_heads * kv_splits, item =
// (seq * num_kv_heads + kv_head) * kv_splits + split.
int64_t PagedDecodeItems(const PagedDecodeArgs& args);
// Tokens per split range of a sequence with `context_len` tokens (a multiple of 16, >= 16).
int64_t PagedDecodeSplitTokens(int64_t context_len, int64_t kv_splits);
// kv_splits that keeps `threads` busy: 1 when num_seqs * num_kv_heads items already give every thread
// several, else enough splits for about 4 items per thread with at least 64 tokens of max_context each.
int64_t PagedDecodeSplits(int64_t num_seqs, int64_t num_kv_heads, int64_t max_context, int threads);

// Computes work items [begin, end) on the best path. Each item reads its K and V rows once for all the query
// heads of its kv head. Thread-safe for disjoint ranges; the caller parallelises.
void PagedDecodeAttentionRange(const PagedDecodeArgs& args, int64_t begin, int64_t end);
// The same on a forced path; requires AttentionIsaSupported(isa).
void PagedDecodeAttentionRangeIsa(const PagedDecodeArgs& args, AttentionIsa isa, int64_t begin, int64_t end);
// After every item is done and only when kv_splits > 1: merges the partials of rows [begin, end) of
// num_seqs * num_q_heads (row = seq * num_q_heads + head) into out by their log-sum-exp weights.
void PagedDecodeMergeRange(const PagedDecodeArgs& args, int64_t begin, int64_t end);

}  // namespace inferd::kernels::cpu
