#include "gemv.h"

// GCC 12 flags _mm256_undefined_pd() inside _mm512_reduce_add_ps as maybe-uninitialized (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

namespace inferd::kernels::cpu {
namespace {

inline float Bf16ToFloat(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Round to nearest even, NaN kept quiet (same as c10::BFloat16).
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline void Store(const GemvArgs& a, int64_t m, int64_t n, float v) {
  if (a.bias) v += a.type == GemvType::kFloat32 ? static_cast<const float*>(a.bias)[n]
                                                : Bf16ToFloat(static_cast<const uint16_t*>(a.bias)[n]);
  if (a.type == GemvType::kFloat32) {
    static_cast<float*>(a.y)[m * a.ldy + n] = v;
  } else {
    static_cast<uint16_t*>(a.y)[m * a.ldy + n] = FloatToBf16(v);
  }
}

// ---- AVX-512 paths: 4 weight rows x MR x rows per pass, K in 32-lane (bf16) / 16-lane (fp32) steps ----

constexpr int kRows = 4;

template <int MR>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void Bf16Block(const GemvArgs& a, int64_t n0,
                                                                                int64_t rows, int64_t m0) {
  const uint16_t* x = static_cast<const uint16_t*>(a.x) + m0 * a.ldx;
  const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * a.k;
  __m512 acc[kRows][MR];
  for (int r = 0; r < kRows; ++r)
    for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_setzero_ps();
  const int64_t k = a.k;
  int64_t kk = 0;
  for (; kk + 32 <= k; kk += 32) {
    __m512bh xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = (__m512bh)_mm512_loadu_si512(x + i * a.ldx + kk);
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w + r * k + kk);
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_dpbf16_ps(acc[r][i], wv, xv[i]);
    }
  }
  if (kk < k) {
    const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << (k - kk)) - 1);
    __m512bh xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + i * a.ldx + kk);
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + r * k + kk);
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_dpbf16_ps(acc[r][i], wv, xv[i]);
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < MR; ++i) Store(a, m0 + i, n0 + r, _mm512_reduce_add_ps(acc[r][i]));
}

template <int MR>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void F32Block(const GemvArgs& a, int64_t n0, int64_t rows,
                                                                   int64_t m0) {
  const float* x = static_cast<const float*>(a.x) + m0 * a.ldx;
  const float* w = static_cast<const float*>(a.w) + n0 * a.k;
  __m512 acc[kRows][MR];
  for (int r = 0; r < kRows; ++r)
    for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_setzero_ps();
  const int64_t k = a.k;
  int64_t kk = 0;
  for (; kk + 16 <= k; kk += 16) {
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_ps(x + i * a.ldx + kk);
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const __m512 wv = _mm512_loadu_ps(w + r * k + kk);
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_fmadd_ps(wv, xv[i], acc[r][i]);
    }
  }
  if (kk < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1);
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_maskz_loadu_ps(mask, x + i * a.ldx + kk);
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const __m512 wv = _mm512_maskz_loadu_ps(mask, w + r * k + kk);
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_fmadd_ps(wv, xv[i], acc[r][i]);
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < MR; ++i) Store(a, m0 + i, n0 + r, _mm512_reduce_add_ps(acc[r][i]));
}

// Dispatches the x rows in groups of at most 4 (acc registers: 4 x 4 = 16 of 32 zmm).
template <typename Block1, typename Block2, typename Block3, typename Block4>
void Rows(const GemvArgs& a, int64_t n0, int64_t rows, Block1 b1, Block2 b2, Block3 b3, Block4 b4) {
  int64_t m0 = 0;
  for (; m0 + 4 <= a.m; m0 += 4) b4(a, n0, rows, m0);
  switch (a.m - m0) {
    case 3: b3(a, n0, rows, m0); break;
    case 2: b2(a, n0, rows, m0); break;
    case 1: b1(a, n0, rows, m0); break;
    default: break;
  }
}

void GenericRange(const GemvArgs& a, int64_t n_begin, int64_t n_end) {
  for (int64_t n = n_begin; n < n_end; ++n) {
    for (int64_t m = 0; m < a.m; ++m) {
      float s = 0.0f;
      if (a.type == GemvType::kFloat32) {
        const float* x = static_cast<const float*>(a.x) + m * a.ldx;
        const float* w = static_cast<const float*>(a.w) + n * a.k;
        for (int64_t kk = 0; kk < a.k; ++kk) s += x[kk] * w[kk];
      } else {
        const uint16_t* x = static_cast<const uint16_t*>(a.x) + m * a.ldx;
        const uint16_t* w = static_cast<const uint16_t*>(a.w) + n * a.k;
        for (int64_t kk = 0; kk < a.k; ++kk) s += Bf16ToFloat(x[kk]) * Bf16ToFloat(w[kk]);
      }
      Store(a, m, n, s);
    }
  }
}

bool HasAvx512() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"); }

}  // namespace

bool GemvBf16Native() {
  static const bool ok = HasAvx512() && __builtin_cpu_supports("avx512bf16");
  return ok;
}

void GemvRange(const GemvArgs& a, int64_t n_begin, int64_t n_end) {
  static const bool avx512 = HasAvx512();
  if (a.type == GemvType::kBFloat16 && GemvBf16Native()) {
    for (int64_t n0 = n_begin; n0 < n_end; n0 += kRows) {
      const int64_t rows = n_end - n0 < kRows ? n_end - n0 : kRows;
      Rows(a, n0, rows, Bf16Block<1>, Bf16Block<2>, Bf16Block<3>, Bf16Block<4>);
    }
  } else if (a.type == GemvType::kFloat32 && avx512) {
    for (int64_t n0 = n_begin; n0 < n_end; n0 += kRows) {
      const int64_t rows = n_end - n0 < kRows ? n_end - n0 : kRows;
      Rows(a, n0, rows, F32Block<1>, F32Block<2>, F32Block<3>, F32Block<4>);
    }
  } else {
    GenericRange(a, n_begin, n_end);
  }
}

}  // namespace inferd::kernels::cpu
