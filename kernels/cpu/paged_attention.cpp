#include "paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace inferd::kernels::cpu {
namespace {

inline float Bf16ToFloat(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline void LoadRow(const void* base, int64_t offset, ElemType type, int64_t n, float* dst) {
  if (type == ElemType::kFloat32) {
    std::memcpy(dst, static_cast<const float*>(base) + offset, n * sizeof(float));
  } else {
    const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFloat(src[i]);
  }
}

inline float Dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void Axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// One (sequence, kv head) item: all query heads of the group share each K/V row load.
// Exact two-pass softmax over the context; memory O(group * context), never [seq, seq].
__attribute__((target_clones("avx512f", "avx2", "default"))) void DecodeItem(const PagedDecodeArgs& a,
                                                                               int64_t item) {
  const int64_t seq = item / a.num_kv_heads;
  const int64_t kvh = item % a.num_kv_heads;
  const int64_t group = a.num_q_heads / a.num_kv_heads;
  const int64_t dk = a.head_dim_k;
  const int64_t dv = a.head_dim_v;
  const int64_t ctx = a.context_lens[seq];
  const int32_t* table = a.block_tables + seq * a.block_table_stride;

  std::vector<float> q(group * dk);
  for (int64_t g = 0; g < group; ++g) {
    LoadRow(a.q, (seq * a.num_q_heads + kvh * group + g) * dk, a.q_type, dk, q.data() + g * dk);
  }
  std::vector<float> scores(group * ctx);
  std::vector<float> row(std::max(dk, dv));
  for (int64_t t = 0; t < ctx; ++t) {
    const int64_t block = table[t / a.block_size];
    const int64_t off = block * a.k_block_stride + (t % a.block_size) * a.k_token_stride + kvh * a.k_head_stride;
    LoadRow(a.k_cache, off, a.kv_type, dk, row.data());
    for (int64_t g = 0; g < group; ++g) scores[g * ctx + t] = Dot(q.data() + g * dk, row.data(), dk) * a.scale;
  }
  std::vector<float> sums(group);
  for (int64_t g = 0; g < group; ++g) {
    float* s = scores.data() + g * ctx;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < ctx; ++t) m = std::max(m, s[t]);
    float sum = 0.0f;
    for (int64_t t = 0; t < ctx; ++t) {
      s[t] = std::exp(s[t] - m);
      sum += s[t];
    }
    sums[g] = sum;
  }
  float* out = a.out + (seq * a.num_q_heads + kvh * group) * dv;
  std::fill(out, out + group * dv, 0.0f);
  for (int64_t t = 0; t < ctx; ++t) {
    const int64_t block = table[t / a.block_size];
    const int64_t off = block * a.v_block_stride + (t % a.block_size) * a.v_token_stride + kvh * a.v_head_stride;
    LoadRow(a.v_cache, off, a.kv_type, dv, row.data());
    for (int64_t g = 0; g < group; ++g) Axpy(scores[g * ctx + t], row.data(), out + g * dv, dv);
  }
  for (int64_t g = 0; g < group; ++g) {
    const float inv = 1.0f / sums[g];
    float* o = out + g * dv;
    for (int64_t i = 0; i < dv; ++i) o[i] *= inv;
  }
}

}  // namespace

void PagedDecodeAttentionRange(const PagedDecodeArgs& args, int64_t begin, int64_t end) {
  for (int64_t item = begin; item < end; ++item) DecodeItem(args, item);
}

}  // namespace inferd::kernels::cpu
