// Attention ops. None materialises a [seq, seq] score matrix: prefill is tiled with an online softmax
// (or libtorch SDPA where its shapes allow), decode reads K/V straight from the paged cache.
#pragma once

#include <ATen/core/Tensor.h>

namespace inferd::ops {

// Causal attention of one sequence's chunk of queries against its keys. Query t sits at absolute position
// q_start + t and sees keys [0, q_start + t]. Head counts: num_q_heads % num_kv_heads == 0 (GQA/MQA).
// Accumulates in float32; returns q's dtype.
at::Tensor PrefillAttention(const at::Tensor& q,  // [num_q, num_q_heads, head_dim_k]
                            const at::Tensor& k,  // [num_k, num_kv_heads, head_dim_k], num_k >= q_start + num_q
                            const at::Tensor& v,  // [num_k, num_kv_heads, head_dim_v]
                            int64_t q_start, double scale);
// -> [num_q, num_q_heads, head_dim_v]

// The tiled online-softmax kernel behind PrefillAttention, exposed for tests (never uses SDPA).
at::Tensor TiledCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_start,
                                double scale, int64_t q_tile = 256, int64_t k_tile = 256);

// Reference: naive softmax(q k^T) v with an explicit mask, for tests only (materialises [q, k]).
at::Tensor NaiveCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_start,
                                double scale);

// cache_rows[slots[t]] = rows[t].to(cache dtype) for every token t: the step's K, V (or MLA latent) rows into
// their paged-cache slots, as cache_rows.index_copy_(0, slots, rows.to(dtype)) does. On CPU, when each
// token's row is contiguous and already in the cache's dtype, a raw row copy with no at:: dispatch or
// temporary; otherwise index_copy_. Throws when a slot is out of range or the shapes differ.
void WriteCacheRows(at::Tensor& cache_rows,   // [num_slots, ...] (a view of the cache's blocks)
                    const at::Tensor& slots,  // [T] int64
                    const at::Tensor& rows);  // [T, ...] (cache_rows' trailing shape)

// One query token per sequence against its paged cache. k_cache / v_cache may be strided views of one
// buffer (MLA reads V as the latent prefix of its K rows) but their last dim must be contiguous.
at::Tensor PagedDecodeAttention(const at::Tensor& q,             // [num_seqs, num_q_heads, head_dim_k]
                                const at::Tensor& k_cache,       // [num_blocks, block_size, num_kv_heads, head_dim_k]
                                const at::Tensor& v_cache,       // [num_blocks, block_size, num_kv_heads, head_dim_v]
                                const at::Tensor& block_tables,  // [num_seqs, max_blocks] int32
                                const at::Tensor& context_lens,  // [num_seqs] int32, >= 1
                                double scale);
// -> [num_seqs, num_q_heads, head_dim_v], q's dtype

}  // namespace inferd::ops
