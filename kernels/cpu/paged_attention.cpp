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

// Vector primitives per ISA, W float32 lanes. Load / LoadN read float32 or bf16 (widened in registers);
// LoadN and StoreN touch only the first n lanes (n may exceed W: then all W); HSum(v[W]) returns the vector
// whose lane i is the sum of v[i]'s lanes (a transpose-and-add, W-1 adds per W sums).
struct ScalarVec {
  using V = float;
  static constexpr int W = 1;
  static V Zero() { return 0.0f; }
  static V Set1(float x) { return x; }
  template <typename S>
  static V Load(const S* p) {
    if constexpr (sizeof(S) == 2) {
      return Bf16ToFloat(*p);
    } else {
      return *p;
    }
  }
  template <typename S>
  static V LoadN(const S* p, int64_t n) {
    return n > 0 ? Load(p) : 0.0f;
  }
  static void Store(float* p, V v) { *p = v; }
  static void StoreN(float* p, V v, int64_t n) {
    if (n > 0) *p = v;
  }
  static V Fma(V a, V b, V c) { return a * b + c; }
  static V HSum(const V* v) { return v[0]; }
  static float ExpSum(float* s, int64_t n, float m) { return ExpSumLoop(s, n, m); }
};

struct Avx512Vec {
  using V = __m512;
  static constexpr int W = 16;
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE V Zero() { return _mm512_setzero_ps(); }
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE V Set1(float x) { return _mm512_set1_ps(x); }
  static INFERD_ATTN_INLINE __mmask16 Mask(int64_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xffff) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
  }
  template <typename S>
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE V Load(const S* p) {
    if constexpr (sizeof(S) == 2) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_loadu_ps(p);
    }
  }
  template <typename S>
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE V LoadN(const S* p, int64_t n) {
    const __mmask16 m = Mask(n);
    if constexpr (sizeof(S) == 2) {
      const __m256i h = _mm256_maskz_loadu_epi16(m, p);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_maskz_loadu_ps(m, p);
    }
  }
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE void StoreN(float* p, V v, int64_t n) {
    _mm512_mask_storeu_ps(p, Mask(n), v);
  }
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  INFERD_ATTN_AVX512 static INFERD_ATTN_INLINE V HSum(const V* v) {
    // Inputs taken as u[4k + j] = v[4j + k]: the four levels below leave u[4k + j]'s sum in lane 4j + k.
    V u[16];
    for (int i = 0; i < 16; ++i) u[i] = v[(i % 4) * 4 + i / 4];
    V w[8], x[4], y[2];
    for (int i = 0; i < 8; ++i) {  // 128-bit lanes [a0+a2, a1+a3, b0+b2, b1+b3]
      w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x44),
                           _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xEE));
    }
    for (int i = 0; i < 4; ++i) {  // 128-bit lane j: partials of u[4i + j]
      x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                           _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
    }
    for (int i = 0; i < 2; ++i) {
      y[i] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]), _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]));
    }
    const __m512d a = _mm512_castps_pd(y[0]), b = _mm512_castps_pd(y[1]);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  INFERD_ATTN_AVX512 static float ExpSum(float* s, int64_t n, float m) { return ExpSumLoop(s, n, m); }
};

struct Avx2Vec {
  using V = __m256;
  static constexpr int W = 8;
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE V Zero() { return _mm256_setzero_ps(); }
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE V Set1(float x) { return _mm256_set1_ps(x); }
  template <typename S>
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE V Load(const S* p) {
    if constexpr (sizeof(S) == 2) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else {
      return _mm256_loadu_ps(p);
    }
  }
  template <typename S>
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE V LoadN(const S* p, int64_t n) {
    if (n >= 8) return Load(p);
    S tmp[8] = {};
    for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
    return Load(tmp);
  }
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE void StoreN(float* p, V v, int64_t n) {
    if (n >= 8) return _mm256_storeu_ps(p, v);
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    for (int64_t i = 0; i < n; ++i) p[i] = tmp[i];
  }
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  INFERD_ATTN_AVX2 static INFERD_ATTN_INLINE V HSum(const V* v) {
    // hadd twice leaves [v0..v3 partial sums | the same of the upper halves], then the halves are added.
    const V s0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    const V s1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
  }
  INFERD_ATTN_AVX2 static float ExpSum(float* s, int64_t n, float m) { return ExpSumLoop(s, n, m); }
};

// Prefetches the cache lines of [p, p + bytes) into L1.
INFERD_ATTN_INLINE void PrefetchBytes(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(c + b, _MM_HINT_T0);
  _mm_prefetch(c + bytes - 1, _MM_HINT_T0);  // a row that starts mid-line ends in one more line
}

// How far ahead of the P.V loop V rows are prefetched.
constexpr int64_t kPrefetchTokens = 16;

// Per-thread scratch, reused across items and calls (no allocation once grown).
struct Scratch {
  std::vector<float> q;            // [group, dk], pre-scaled
  std::vector<float> scores;       // [group, n_pad] scores, then softmax weights
  std::vector<float> ktile;        // [W, dk] one token tile of K widened to float32 (bf16 cache, group > 1)
  std::vector<const void*> krows;  // [n_pad] K row of each token of the range (the tail repeats the last)
  std::vector<const void*> vrows;  // [n] V row of each token
};
thread_local Scratch t_scratch;

struct ItemRange {
  int64_t seq, kvh, split, begin, end;  // tokens [begin, end) of the sequence's context
};

ItemRange ItemOf(const PagedDecodeArgs& a, int64_t item) {
  ItemRange r;
  r.split = item % a.kv_splits;
  const int64_t sk = item / a.kv_splits;
  r.seq = sk / a.num_kv_heads;
  r.kvh = sk % a.num_kv_heads;
  const int64_t ctx = a.context_lens[r.seq];
  const int64_t len = PagedDecodeSplitTokens(ctx, a.kv_splits);
  r.begin = std::min(ctx, r.split * len);
  r.end = std::min(ctx, r.begin + len);
  return r;
}

namespace scalar_path {
using Vec = ScalarVec;
#include "paged_attention_item.inc"
}  // namespace scalar_path

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2_path {
using Vec = Avx2Vec;
#include "paged_attention_item.inc"
}  // namespace avx2_path
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace avx512_path {
using Vec = Avx512Vec;
#include "paged_attention_item.inc"
}  // namespace avx512_path
#pragma GCC pop_options

}  // namespace

int64_t PagedDecodeSplitTokens(int64_t context_len, int64_t kv_splits) {
  const int64_t per = (context_len + kv_splits - 1) / kv_splits;
  return std::max<int64_t>(16, (per + 15) / 16 * 16);
}

int64_t PagedDecodeItems(const PagedDecodeArgs& args) {
  return args.num_seqs * args.num_kv_heads * args.kv_splits;
}

int64_t PagedDecodeSplits(int64_t num_seqs, int64_t num_kv_heads, int64_t max_context, int threads) {
  const int64_t items = num_seqs * num_kv_heads;
  const int64_t target = 4 * static_cast<int64_t>(threads);
  if (threads <= 1 || items <= 0 || items >= target) return 1;
  const int64_t by_length = std::max<int64_t>(1, max_context / 64);
  return std::clamp<int64_t>((target + items - 1) / items, 1, by_length);
}

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
      avx512_path::RangeOn(args, begin, end);
      break;
    case AttentionIsa::kAvx2:
      avx2_path::RangeOn(args, begin, end);
      break;
    case AttentionIsa::kScalar:
      scalar_path::RangeOn(args, begin, end);
      break;
  }
}

void PagedDecodeAttentionRange(const PagedDecodeArgs& args, int64_t begin, int64_t end) {
  PagedDecodeAttentionRangeIsa(args, AttentionBestIsa(), begin, end);
}

void PagedDecodeMergeRange(const PagedDecodeArgs& a, int64_t begin, int64_t end) {
  const int64_t ns = a.kv_splits, dv = a.head_dim_v;
  for (int64_t row = begin; row < end; ++row) {
    const float* ml = a.part_ml + row * ns * 2;
    const float* po = a.part_out + row * ns * dv;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < ns; ++j) {
      if (ml[2 * j + 1] > 0.0f) m = std::max(m, ml[2 * j]);
    }
    // Partial j is normalised by its own sum l_j; its weight is l_j exp(m_j - m) over the total.
    float total = 0.0f;
    float w[64];
    float* out = a.out + row * dv;
    std::fill(out, out + dv, 0.0f);
    for (int64_t j0 = 0; j0 < ns; j0 += 64) {
      const int64_t jn = std::min<int64_t>(64, ns - j0);
      for (int64_t j = 0; j < jn; ++j) {
        const float l = ml[2 * (j0 + j) + 1];
        w[j] = l > 0.0f ? l * std::exp(ml[2 * (j0 + j)] - m) : 0.0f;
        total += w[j];
      }
      for (int64_t j = 0; j < jn; ++j) {
        if (w[j] == 0.0f) continue;
        const float* o = po + (j0 + j) * dv;
#pragma omp simd
        for (int64_t i = 0; i < dv; ++i) out[i] += w[j] * o[i];
      }
    }
    const float inv = 1.0f / total;
#pragma omp simd
    for (int64_t i = 0; i < dv; ++i) out[i] *= inv;
  }
}

}  // namespace inferd::kernels::cpu
