// Fills the fields the CPU and CUDA paged decode kernels share (kernels::cpu::PagedDecodeArgs and
// kernels::PagedDecodeArgs) from the op's tensors, so the two wrappers describe the KV layout one way.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace inferd::ops {

// q [S, Hq, Dk] contiguous; k_cache [blocks, block_size, Hkv, Dk], v_cache [blocks, block_size, Hkv, Dv], last
// dims contiguous; bt [S, max_blocks] int32 contiguous; cl [S] int32; out [S, Hq, Dv] float32.
template <class Args>
void FillPagedDecodeArgs(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                         const at::Tensor& bt, const at::Tensor& cl, at::Tensor& out, double scale, Args& a) {
  a.q = q.data_ptr();
  a.k_cache = k_cache.data_ptr();
  a.v_cache = v_cache.data_ptr();
  a.k_block_stride = k_cache.stride(0);
  a.k_token_stride = k_cache.stride(1);
  a.k_head_stride = k_cache.stride(2);
  a.v_block_stride = v_cache.stride(0);
  a.v_token_stride = v_cache.stride(1);
  a.v_head_stride = v_cache.stride(2);
  a.block_tables = bt.data_ptr<int32_t>();
  a.block_table_stride = bt.size(1);
  a.context_lens = cl.data_ptr<int32_t>();
  a.out = out.data_ptr<float>();
  a.num_seqs = q.size(0);
  a.num_q_heads = q.size(1);
  a.num_kv_heads = k_cache.size(2);
  a.head_dim_k = q.size(2);
  a.head_dim_v = v_cache.size(3);
  a.block_size = k_cache.size(1);
  a.scale = static_cast<float>(scale);
}

}  // namespace inferd::ops
