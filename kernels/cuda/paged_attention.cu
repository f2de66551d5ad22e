#include <cmath>

#include "cuda/common.cuh"
#include "cuda/paged_attention.h"

namespace inferd::kernels {
namespace {

using detail::ToFloat;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

// Block (seq, head) = (blockIdx.x / num_q_heads, blockIdx.x % num_q_heads), grid-strided.
// Dynamic shared memory: q [head_dim_k] | acc [kWarps][head_dim_v] | m [kWarps] | l [kWarps], all float.
template <typename T>
__global__ void __launch_bounds__(kThreads) PagedDecodeKernel(PagedDecodeArgs a) {
  extern __shared__ float smem[];
  const int64_t dk = a.head_dim_k, dv = a.head_dim_v;
  float* q_s = smem;
  float* acc_s = q_s + dk;
  float* m_s = acc_s + kWarps * dv;
  float* l_s = m_s + kWarps;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t group = a.num_q_heads / a.num_kv_heads;
  const T* q_all = static_cast<const T*>(a.q);
  const T* k_all = static_cast<const T*>(a.k_cache);
  const T* v_all = static_cast<const T*>(a.v_cache);

  for (int64_t item = blockIdx.x; item < a.num_seqs * a.num_q_heads; item += gridDim.x) {
    const int64_t seq = item / a.num_q_heads, head = item % a.num_q_heads, kvh = head / group;
    const int64_t ctx = a.context_lens[seq];
    const int32_t* table = a.block_tables + seq * a.block_table_stride;
    __syncthreads();  // the previous item's merge has finished reading shared memory
    for (int64_t i = threadIdx.x; i < dk; i += blockDim.x) q_s[i] = ToFloat(q_all[item * dk + i]);
    float* acc = acc_s + warp * dv;
    for (int64_t i = lane; i < dv; i += 32) acc[i] = 0.f;
    __syncthreads();

    float m = -INFINITY, l = 0.f;  // this warp's running max and normaliser (identical in every lane)
    for (int64_t t = warp; t < ctx; t += kWarps) {
      const int64_t block = table[t / a.block_size], slot = t % a.block_size;
      const T* k = k_all + block * a.k_block_stride + slot * a.k_token_stride + kvh * a.k_head_stride;
      float dot = 0.f;
      for (int64_t i = lane; i < dk; i += 32) dot += q_s[i] * ToFloat(k[i]);
      const float s = detail::WarpSum(dot) * a.scale;
      const float m_new = fmaxf(m, s);
      const float corr = expf(m - m_new);  // 0 on the first token (m = -inf)
      const float p = expf(s - m_new);
      l = l * corr + p;
      const T* v = v_all + block * a.v_block_stride + slot * a.v_token_stride + kvh * a.v_head_stride;
      for (int64_t i = lane; i < dv; i += 32) acc[i] = acc[i] * corr + p * ToFloat(v[i]);
      m = m_new;
    }
    if (lane == 0) {
      m_s[warp] = m;
      l_s[warp] = l;
    }
    __syncthreads();
    float m_all = -INFINITY;
    for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, m_s[w]);
    float l_all = 0.f;
    for (int w = 0; w < kWarps; ++w) l_all += m_s[w] == -INFINITY ? 0.f : l_s[w] * expf(m_s[w] - m_all);
    float* out = a.out + item * dv;
    for (int64_t i = threadIdx.x; i < dv; i += blockDim.x) {
      float o = 0.f;
      for (int w = 0; w < kWarps; ++w) {
        if (m_s[w] != -INFINITY) o += acc_s[w * dv + i] * expf(m_s[w] - m_all);
      }
      out[i] = l_all > 0.f ? o / l_all : 0.f;
    }
  }
}

}  // namespace

cudaError_t PagedDecodeAttention(const PagedDecodeArgs& a, cudaStream_t stream) {
  if (a.num_seqs < 0 || a.num_q_heads <= 0 || a.num_kv_heads <= 0 || a.num_q_heads % a.num_kv_heads != 0 ||
      a.head_dim_k <= 0 || a.head_dim_v <= 0 || a.head_dim_k > kPagedMaxHeadDim || a.head_dim_v > kPagedMaxHeadDim ||
      a.block_size <= 0) {
    return cudaErrorInvalidValue;
  }
  if (a.num_seqs == 0) return cudaSuccess;
  const int64_t items = a.num_seqs * a.num_q_heads;
  const unsigned grid = static_cast<unsigned>(items < detail::kMaxGridX ? items : detail::kMaxGridX);
  const size_t smem = sizeof(float) * static_cast<size_t>(a.head_dim_k + kWarps * a.head_dim_v + 2 * kWarps);
  return INFERD_CUDA_DISPATCH(a.dtype, [&] {
    PagedDecodeKernel<T><<<grid, kThreads, smem, stream>>>(a);
    return cudaGetLastError();
  });
}

}  // namespace inferd::kernels
