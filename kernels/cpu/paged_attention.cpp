#include "paged_attention.h"

// GCC 12 flags the _mm*_undefined_*() placeholders inside AVX-512 intrinsics as (maybe-)uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "fast_exp.h"

namespace inferd::kernels::cpu {
namespace {

#define INFERD_ATTN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define INFERD_ATTN_AVX2 __attribute__((target("avx2,fma")))
#define INFERD_ATTN_INLINE __attribute__((always_inline)) inline

// s[i] = exp(s[i] - m), returns the sum; inlined into each ISA's function so it vectorises at its width.
INFERD_ATTN_INLINE float ExpSumLoop(float* s, int64_t n, float m) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    s[i] = FastExp(s[i] - m);
    sum += s[i];
  }
  return sum;
}

// Row primitives per ISA: s = q . k, o += p * v, e = exp(s - m) in place (returns the sum); k / v rows
// are float32 or bf16 (widened in registers), q / o / s float32.
struct ScalarOps {
  template <typename S>
  static INFERD_ATTN_INLINE float Load(const S* p, int64_t i) {
    if constexpr (sizeof(S) == 2) {
      return Bf16ToFloat(p[i]);
    } else {
      return p[i];
    }
  }
  template <typename S>
  static float Dot(const float* q, const S* k, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += q[i] * Load(k, i);
    return s;
  }
  template <typename S>
  static void Axpy(float p, const S* v, float* o, int64_t n) {
    for (int64_t i = 0; i < n; ++i) o[i] += p * Load(v, i);
  }
  static float ExpSum(float* s, int64_t n, float m) { return ExpSumLoop(s, n, m); }
};

struct Avx512Ops {
  template <typename S>
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE __m512 Load16(const S* p, __mmask16 m) {
    if constexpr (sizeof(S) == 2) {
      const __m256i h = _mm256_maskz_loadu_epi16(m, p);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_maskz_loadu_ps(m, p);
    }
  }
  static INFERD_ATTN_INLINE __mmask16 Tail(int64_t rest) {
    return rest >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rest) - 1);
  }
  template <typename S>
  INFERD_ATTN_AVX512 static float Dot(const float* q, const S* k, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), Load16(k + i, 0xffff), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), Load16(k + i + 16, 0xffff), a1);
    }
    for (; i < n; i += 16) {
      const __mmask16 m = Tail(n - i);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), Load16(k + i, m), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  }
  template <typename S>
  INFERD_ATTN_AVX512 static void Axpy(float p, const S* v, float* o, int64_t n) {
    const __m512 pv = _mm512_set1_ps(p);
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = Tail(n - i);
      _mm512_mask_storeu_ps(o + i, m, _mm512_fmadd_ps(pv, Load16(v + i, m), _mm512_maskz_loadu_ps(m, o + i)));
    }
  }
  INFERD_ATTN_AVX512 static float ExpSum(float* s, int64_t n, float m) { return ExpSumLoop(s, n, m); }
};

struct Avx2Ops {
  template <typename S>
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE __m256 Load8(const S* p) {
    if constexpr (sizeof(S) == 2) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else {
      return _mm256_loadu_ps(p);
    }
  }
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE float Sum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
  }
  template <typename S>
  INFERD_ATTN_AVX2 static float Dot(const float* q, const S* k, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(k + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), Load8(k + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(k + i), a0);
    float s = Sum(_mm256_add_ps(a0, a1));
    for (; i < n; ++i) s += q[i] * ScalarOps::Load(k, i);
    return s;
  }
  template <typename S>
  INFERD_ATTN_AVX2 static void Axpy(float p, const S* v, float* o, int64_t n) {
    const __m256 pv = _mm256_set1_ps(p);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_fmadd_ps(pv, Load8(v + i), _mm256_loadu_ps(o + i)));
    for (; i < n; ++i) o[i] += p * ScalarOps::Load(v, i);
  }
  INFERD_ATTN_AVX2 static float ExpSum(float* s, int64_t n, float m) { return ExpSumLoop(s, n, m); }
};

// Per-thread scratch, reused across items and calls (no allocation once grown).
struct Scratch {
  std::vector<float> q;       // [group, dk]
  std::vector<float> scores;  // [group, ctx]
};
thread_local Scratch t_scratch;

// One (sequence, kv head) item: all query heads of the group share each K/V row load. Exact two-pass
// softmax over the context (scores, max, exp, normalise, then the weighted V sum); memory
// O(group * context), never [seq, seq].
template <typename Ops, typename S>
void DecodeItem(const PagedDecodeArgs& a, int64_t item, Scratch& sc) {
  const int64_t seq = item / a.num_kv_heads;
  const int64_t kvh = item % a.num_kv_heads;
  const int64_t group = a.num_q_heads / a.num_kv_heads;
  const int64_t dk = a.head_dim_k;
  const int64_t dv = a.head_dim_v;
  const int64_t ctx = a.context_lens[seq];
  const int32_t* table = a.block_tables + seq * a.block_table_stride;
  const S* kc = static_cast<const S*>(a.k_cache);
  const S* vc = static_cast<const S*>(a.v_cache);

  sc.q.resize(static_cast<size_t>(group * dk));
  sc.scores.resize(static_cast<size_t>(group * ctx));
  float* q = sc.q.data();
  float* scores = sc.scores.data();
  for (int64_t g = 0; g < group; ++g) {
    const int64_t off = (seq * a.num_q_heads + kvh * group + g) * dk;
    for (int64_t i = 0; i < dk; ++i) {
      q[g * dk + i] = a.q_type == ElemType::kFloat32 ? static_cast<const float*>(a.q)[off + i]
                                                     : Bf16ToFloat(static_cast<const uint16_t*>(a.q)[off + i]);
    }
  }
  for (int64_t t = 0; t < ctx; ++t) {
    const int64_t block = table[t / a.block_size];
    const S* k = kc + block * a.k_block_stride + (t % a.block_size) * a.k_token_stride + kvh * a.k_head_stride;
    for (int64_t g = 0; g < group; ++g) scores[g * ctx + t] = Ops::Dot(q + g * dk, k, dk) * a.scale;
  }
  for (int64_t g = 0; g < group; ++g) {
    float* s = scores + g * ctx;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < ctx; ++t) m = std::max(m, s[t]);
    const float inv = 1.0f / Ops::ExpSum(s, ctx, m);
    for (int64_t t = 0; t < ctx; ++t) s[t] *= inv;
  }
  float* out = a.out + (seq * a.num_q_heads + kvh * group) * dv;
  std::fill(out, out + group * dv, 0.0f);
  for (int64_t t = 0; t < ctx; ++t) {
    const int64_t block = table[t / a.block_size];
    const S* v = vc + block * a.v_block_stride + (t % a.block_size) * a.v_token_stride + kvh * a.v_head_stride;
    for (int64_t g = 0; g < group; ++g) Ops::Axpy(scores[g * ctx + t], v, out + g * dv, dv);
  }
}

template <typename Ops>
void RangeOn(const PagedDecodeArgs& a, int64_t begin, int64_t end) {
  Scratch& sc = t_scratch;
  for (int64_t item = begin; item < end; ++item) {
    if (a.kv_type == ElemType::kFloat32) {
      DecodeItem<Ops, float>(a, item, sc);
    } else {
      DecodeItem<Ops, uint16_t>(a, item, sc);
    }
  }
}

}  // namespace

const char* AttentionIsaName(AttentionIsa isa) {
  switch (isa) {
    case AttentionIsa::kScalar:
      return "scalar";
    case AttentionIsa::kAvx2:
      return "avx2";
    case AttentionIsa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool AttentionIsaSupported(AttentionIsa isa) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  switch (isa) {
    case AttentionIsa::kScalar:
      return true;
    case AttentionIsa::kAvx2:
      return avx2;
    case AttentionIsa::kAvx512:
      return avx512;
  }
  return false;
}

AttentionIsa AttentionBestIsa() {
  static const AttentionIsa best = AttentionIsaSupported(AttentionIsa::kAvx512) ? AttentionIsa::kAvx512
                                   : AttentionIsaSupported(AttentionIsa::kAvx2) ? AttentionIsa::kAvx2
                                                                                : AttentionIsa::kScalar;
  return best;
}

void PagedDecodeAttentionRangeIsa(const PagedDecodeArgs& args, AttentionIsa isa, int64_t begin, int64_t end) {
  switch (isa) {
    case AttentionIsa::kAvx512:
      RangeOn<Avx512Ops>(args, begin, end);
      break;
    case AttentionIsa::kAvx2:
      RangeOn<Avx2Ops>(args, begin, end);
      break;
    case AttentionIsa::kScalar:
      RangeOn<ScalarOps>(args, begin, end);
      break;
  }
}

void PagedDecodeAttentionRange(const PagedDecodeArgs& args, int64_t begin, int64_t end) {
  PagedDecodeAttentionRangeIsa(args, AttentionBestIsa(), begin, end);
}

}  // namespace inferd::kernels::cpu
