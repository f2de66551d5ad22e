#include "gemm.h"

// GCC 12 flags the _mm*_undefined_*() placeholders inside AVX-512 intrinsics (masked loads, lane extracts)
// as (maybe-)uninitialized: false positives.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/elem_type.h"

namespace inferd::kernels::cpu {
namespace {

#define INFERD_GEMM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define INFERD_GEMM_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define INFERD_GEMM_AVX2 __attribute__((target("avx2,fma")))
#define INFERD_GEMM_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")))

inline int64_t CeilDiv(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
inline int64_t RoundUp(int64_t a, int64_t b) {
  return CeilDiv(a, b) * b;
}

// Tasks the product is cut into at least (columns first, then rows), so that a descheduled helper's share
// is small.
constexpr int64_t kMinTasks = 8;

inline float WAt(const GemvArgs& a, int64_t n, int64_t kk) {
  return a.type == GemvType::kFloat32 ? static_cast<const float*>(a.w)[n * a.k + kk]
                                      : Bf16ToFloat(static_cast<const uint16_t*>(a.w)[n * a.k + kk]);
}

// y[m, n] = v + bias[n], rounded once to the output type.
inline void StoreOut(const GemvArgs& a, int64_t m, int64_t n, float v) {
  if (a.type == GemvType::kFloat32) {
    if (a.bias) v += static_cast<const float*>(a.bias)[n];
    static_cast<float*>(a.y)[m * a.ldy + n] = v;
  } else {
    if (a.bias) v += Bf16ToFloat(static_cast<const uint16_t*>(a.bias)[n]);
    static_cast<uint16_t*>(a.y)[m * a.ldy + n] = FloatToBf16(v);
  }
}

// x rows [p * mr, p * mr + mr) as float32 [k][mr] (rows past m are zeros).
void PackXPanel(const GemvArgs& a, int64_t mr, int64_t p, float* out) {
  const int64_t k = a.k, m0 = p * mr, rows = std::min(mr, a.m - m0);
  for (int64_t i = 0; i < rows; ++i) {
    if (a.type == GemvType::kFloat32) {
      const float* src = static_cast<const float*>(a.x) + (m0 + i) * a.ldx;
      for (int64_t kk = 0; kk < k; ++kk) out[kk * mr + i] = src[kk];
    } else {
      const uint16_t* src = static_cast<const uint16_t*>(a.x) + (m0 + i) * a.ldx;
      for (int64_t kk = 0; kk < k; ++kk) out[kk * mr + i] = Bf16ToFloat(src[kk]);
    }
  }
  for (int64_t i = rows; i < mr; ++i)
    for (int64_t kk = 0; kk < k; ++kk) out[kk * mr + i] = 0.0f;
}

// bf16 x rows [p * mr, p * mr + mr) as bf16 pairs [ceil(k / 2)][mr]: slot (kp, i) holds elements 2 kp (low
// half) and 2 kp + 1 (high half, zero past k) of row i; rows past m are zeros.
void PackXPairs(const GemvArgs& a, int64_t mr, int64_t p, uint32_t* out) {
  const int64_t k = a.k, kp_n = (k + 1) / 2, m0 = p * mr, rows = std::min(mr, a.m - m0);
  for (int64_t i = 0; i < rows; ++i) {
    const uint16_t* src = static_cast<const uint16_t*>(a.x) + (m0 + i) * a.ldx;
    for (int64_t kp = 0; kp < k / 2; ++kp)
      out[kp * mr + i] = static_cast<uint32_t>(src[2 * kp]) | static_cast<uint32_t>(src[2 * kp + 1]) << 16;
    if (k % 2) out[(kp_n - 1) * mr + i] = src[k - 1];
  }
  for (int64_t i = rows; i < mr; ++i)
    for (int64_t kp = 0; kp < kp_n; ++kp) out[kp * mr + i] = 0;
}

// Where a micro-kernel's tile goes: float32 partial sums cs [rows][ldc] between K blocks; after the last
// block (plus bias, rounded) y[m0 + i, n0 + j] for i < rows, j < cols.
struct Tile {
  float* cs;
  int64_t ldc;
  bool first, last;
  const GemvArgs* a;
  int64_t m0, n0;
  int rows, cols;
};

// The weights the next micro-panel pack reads, which a micro-kernel prefetches into L2 while it computes
// (`lines` 64-byte lines per K step, spread over the rows) so that the pack does not wait on memory:
// `rows` W rows from `base` on, `ld` bytes apart, `bytes` of each. Null base: nothing to prefetch.
struct Prefetch {
  const char* base = nullptr;
  int64_t ld = 0, bytes = 0;
  int rows = 0, lines = 1;
};

// Prefetches the lines of K step kk: line l is row l % NR, l / NR lines into it, where that lies in p.
template <int NR>
inline void PrefetchStep(const Prefetch& p, int64_t kk) {
  for (int t = 0; t < p.lines; ++t) {
    const int64_t line = kk * p.lines + t, row = line % NR, off = line / NR * 64;
    if (row < p.rows && off < p.bytes) _mm_prefetch(p.base + row * p.ld + off, _MM_HINT_T1);
  }
}

// Finishes a tile held as float32 t[MR][NR] (the K block's sums), one element at a time.
template <int MR, int NR>
void FinishTileScalar(const float (&t)[MR][NR], const Tile& o) {
  for (int i = 0; i < o.rows; ++i) {
    for (int j = 0; j < o.cols; ++j) {
      float v = t[i][j];
      if (!o.first) v += o.cs[i * o.ldc + j];
      if (o.last) {
        StoreOut(*o.a, o.m0 + i, o.n0 + j, v);
      } else {
        o.cs[i * o.ldc + j] = v;
      }
    }
  }
}

// ---- AVX-512F: 14 x 32 tile, 28 zmm accumulators ----

// Rows r[i] (16 floats) -> r[c] = column c of the 16 x 16 block.
INFERD_GEMM_AVX512 inline void Transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + q], 128-bit lane l: column 4l + q of rows 4g .. 4g + 3.
  __m512 u[16];
  for (int g = 0; g < 4; ++g) {
    u[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
  }
  __m512 v[16];
  for (int q = 0; q < 4; ++q) {
    v[q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
    v[4 + q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xdd);
    v[8 + q] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
    v[12 + q] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xdd);
  }
  for (int q = 0; q < 4; ++q) {
    r[q] = _mm512_shuffle_f32x4(v[q], v[8 + q], 0x88);
    r[8 + q] = _mm512_shuffle_f32x4(v[q], v[8 + q], 0xdd);
    r[4 + q] = _mm512_shuffle_f32x4(v[4 + q], v[12 + q], 0x88);
    r[12 + q] = _mm512_shuffle_f32x4(v[4 + q], v[12 + q], 0xdd);
  }
}

// 16 elements (those under `mask`) of a W row from `p` on, as float32.
template <GemvType T>
INFERD_GEMM_AVX512 inline __m512 LoadW16(const void* p, __mmask16 mask) {
  if constexpr (T == GemvType::kFloat32) {
    return _mm512_maskz_loadu_ps(mask, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// One micro-panel: W rows [r0, r0 + rows) (rows <= nr), elements [k0, k0 + kb), as float32 [kb][nr]
// (columns past `rows` are zeros). 16 x 16 blocks transposed in registers (nr a multiple of 16).
template <GemvType T>
INFERD_GEMM_AVX512 void PackWPanelAvx512T(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb,
                                          int64_t nr, float* dst) {
  using E = std::conditional_t<T == GemvType::kFloat32, float, uint16_t>;
  for (int64_t g = 0; g < nr / 16; ++g) {
    const int64_t valid = std::clamp<int64_t>(rows - g * 16, 0, 16);
    const E* w = static_cast<const E*>(a.w) + (r0 + g * 16) * a.k + k0;
    for (int64_t kk = 0; kk < kb; kk += 16) {
      const int64_t kn = std::min<int64_t>(16, kb - kk);
      const __mmask16 mask = static_cast<__mmask16>((1u << kn) - 1);
      __m512 r[16];
      if (valid == 16) {
        for (int i = 0; i < 16; ++i) r[i] = LoadW16<T>(w + i * a.k + kk, mask);
      } else {
        for (int i = 0; i < 16; ++i) r[i] = i < valid ? LoadW16<T>(w + i * a.k + kk, mask) : _mm512_setzero_ps();
      }
      Transpose16(r);
      for (int t = 0; t < kn; ++t) _mm512_storeu_ps(dst + (kk + t) * nr + g * 16, r[t]);
    }
  }
}

void PackWPanelAvx512(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, int64_t nr, float* dst) {
  if (a.type == GemvType::kFloat32) {
    PackWPanelAvx512T<GemvType::kFloat32>(a, r0, rows, k0, kb, nr, dst);
  } else {
    PackWPanelAvx512T<GemvType::kBFloat16>(a, r0, rows, k0, kb, nr, dst);
  }
}

// One bf16 micro-panel as pairs: W rows [r0, r0 + rows) (rows <= nr), elements [k0, k0 + kb) (k0 even), as
// [ceil(kb / 2)][nr] slots of two bf16 (slot (kp, j): elements k0 + 2 kp, k0 + 2 kp + 1 of row r0 + j, zero past
// kb or past `rows`): the 32-bit pairs of 16 x 16 blocks transposed in registers (nr a multiple of 16).
INFERD_GEMM_AVX512 void PackWPairsAvx512(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb,
                                         int64_t nr, uint32_t* dst) {
  for (int64_t g = 0; g < nr / 16; ++g) {
    const int64_t valid = std::clamp<int64_t>(rows - g * 16, 0, 16);
    const uint16_t* w = static_cast<const uint16_t*>(a.w) + (r0 + g * 16) * a.k + k0;
    for (int64_t e = 0; e < kb; e += 32) {
      const int64_t ne = std::min<int64_t>(32, kb - e), np = (ne + 1) / 2;
      const __mmask32 mask = ne == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << ne) - 1);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < valid ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, w + i * a.k + e)) : _mm512_setzero_ps();
      Transpose16(r);
      for (int64_t t = 0; t < np; ++t) _mm512_storeu_ps(dst + (e / 2 + t) * nr + g * 16, r[t]);
    }
  }
}

// Rounds 16 float32 to bf16 (nearest even, NaN quiet) and stores those under `mask`.
INFERD_GEMM_AVX512 inline void StoreBf16x16(uint16_t* dst, __mmask16 mask, __m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i hi = _mm512_srli_epi32(bits, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
  _mm512_mask_cvtepi32_storeu_epi16(dst, mask, r);
}

INFERD_GEMM_AVX512 inline __m512 LoadBias512(const GemvArgs& a, int64_t n, __mmask16 mask) {
  if (!a.bias || mask == 0) return _mm512_setzero_ps();
  if (a.type == GemvType::kFloat32) return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(a.bias) + n);
  const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(a.bias) + n);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Column masks and bias of a 32-column tile's rows.
struct RowOut {
  __mmask16 m0, m1;
  __m512 bias0, bias1;
};

INFERD_GEMM_AVX512 inline RowOut RowOutOf(const Tile& o) {
  RowOut r;
  r.m0 = static_cast<__mmask16>(o.cols >= 16 ? 0xffff : (1u << o.cols) - 1);
  r.m1 = static_cast<__mmask16>(o.cols >= 32 ? 0xffff : o.cols <= 16 ? 0 : (1u << (o.cols - 16)) - 1);
  r.bias0 = r.bias1 = _mm512_setzero_ps();
  if (o.last) {
    r.bias0 = LoadBias512(*o.a, o.n0, r.m0);
    r.bias1 = LoadBias512(*o.a, o.n0 + 16, r.m1);
  }
  return r;
}

// Row i of a tile after its last K block (s0, s1: columns 0-15, 16-31): adds the bias and stores y rounded once.
INFERD_GEMM_AVX512 inline void StoreRow512(__m512 s0, __m512 s1, int i, const Tile& o, const RowOut& r) {
  const GemvArgs& a = *o.a;
  s0 = _mm512_add_ps(s0, r.bias0);
  s1 = _mm512_add_ps(s1, r.bias1);
  if (a.type == GemvType::kFloat32) {
    float* y = static_cast<float*>(a.y) + (o.m0 + i) * a.ldy + o.n0;
    _mm512_mask_storeu_ps(y, r.m0, s0);
    _mm512_mask_storeu_ps(y + 16, r.m1, s1);
  } else {
    uint16_t* y = static_cast<uint16_t*>(a.y) + (o.m0 + i) * a.ldy + o.n0;
    StoreBf16x16(y, r.m0, s0);
    StoreBf16x16(y + 16, r.m1, s1);
  }
}

// The AMX stream path's group result c[t] ([16 columns][16 rows] per tile), transposed: row i of y gets
// columns n0 .. n0 + 31 (tile 0 then tile 1), bias added, rounded once.
INFERD_GEMM_AVX512 void StoreAmxStreamRows(const float (&c)[2][16][16], const Tile& o) {
  __m512 r0[16], r1[16];
  for (int j = 0; j < 16; ++j) {
    r0[j] = _mm512_load_ps(c[0][j]);
    r1[j] = _mm512_load_ps(c[1][j]);
  }
  Transpose16(r0);
  Transpose16(r1);
  const RowOut r = RowOutOf(o);
  for (int i = 0; i < o.rows; ++i) StoreRow512(r0[i], r1[i], i, o, r);
}

// Finishes an AVX-512 tile of MR x 32 float32 sums c[i][0..1] (the K block's): adds the partial sums of the
// earlier blocks, then stores them back, or (last block) adds the bias and stores y rounded once.
template <int MR>
INFERD_GEMM_AVX512 inline void FinishTile512(const __m512 (&c)[MR][2], const Tile& o) {
  const RowOut r = RowOutOf(o);
  for (int i = 0; i < MR; ++i) {
    if (i >= o.rows) break;
    __m512 s0 = c[i][0], s1 = c[i][1];
    float* cs = o.cs + i * o.ldc;
    if (!o.first) {
      s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(r.m0, cs));
      s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(r.m1, cs + 16));
    }
    if (!o.last) {
      _mm512_mask_storeu_ps(cs, r.m0, s0);
      _mm512_mask_storeu_ps(cs + 16, r.m1, s1);
      continue;
    }
    StoreRow512(s0, s1, i, o, r);
  }
}

// Tile rows MR of at most kAvx512MaxMr (a template so that the accumulators stay in registers).
constexpr int kAvx512MaxMr = 14;

// What RunBlocked asks of a register-tile kernel beyond its tile: panels' slot rows padded to a multiple of
// kSlotAlign (and kc to kSlotAlign * kKPerSlot K steps), and no tile registers to configure per task.
struct VectorKernel {
  static constexpr int64_t kSlotAlign = 1;
  static constexpr bool kTiles = false;
  static void BeginTask() {}
  static void EndTask() {}
};

template <int MR>
struct Avx512 : VectorKernel {
  static constexpr int kMr = MR, kNr = 32, kKPerSlot = 1;
  // Several passes: a task's float32 weight panel (kNc x K, 512 KiB at K = 1024) and a pass's x panels
  // (kMc x K, 458 KiB) fit the 1.25 MiB L2 together (kNc 256 did not: 1.46 MiB). One pass (decode): the
  // column block narrows from kNcOnePass (only a micro-panel is converted at a time there).
  static constexpr int64_t kMc = 8 * kMr, kKc = 256, kNc = 128, kNcOnePass = 256;

  static void PackX(const GemvArgs& a, int64_t mr, int64_t p, float* out) { PackXPanel(a, mr, p, out); }
  static void PackPanel(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, float* out) {
    PackWPanelAvx512(a, r0, rows, k0, kb, kNr, out);
  }

  // c[i] += sum over k < kc of A[k][i] * B[k][0..32): A [kc][MR], B [kc][32].
  INFERD_GEMM_AVX512 static void Kernel(int64_t kc, const float* A, const float* B, const Tile& o,
                                        const Prefetch& pf = {}) {
    __m512 c[kMr][2];
    for (int i = 0; i < kMr; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kc; ++kk) {
      if (pf.base) PrefetchStep<kNr>(pf, kk);
      const __m512 b0 = _mm512_loadu_ps(B + kk * kNr), b1 = _mm512_loadu_ps(B + kk * kNr + 16);
      const float* ak = A + kk * kMr;
      for (int i = 0; i < kMr; ++i) {
        const __m512 x = _mm512_set1_ps(ak[i]);
        c[i][0] = _mm512_fmadd_ps(x, b0, c[i][0]);
        c[i][1] = _mm512_fmadd_ps(x, b1, c[i][1]);
      }
    }
    FinishTile512<kMr>(c, o);
  }
};

// AVX512-BF16 (bf16 operands only): the AVX-512 tile, each vdpbf16ps multiplying a broadcast x pair by the
// pairs of 16 columns, so one instruction does two K steps. Panels hold 32-bit bf16 pairs (kKPerSlot).
template <int MR>
struct Avx512Bf16 : VectorKernel {
  static constexpr int kMr = MR, kNr = 32, kKPerSlot = 2;
  // Avx512's blocking (the packed panels take half its bytes).
  static constexpr int64_t kMc = 8 * kMr, kKc = 256, kNc = 128, kNcOnePass = 256;

  static void PackX(const GemvArgs& a, int64_t mr, int64_t p, float* out) {
    PackXPairs(a, mr, p, reinterpret_cast<uint32_t*>(out));
  }
  static void PackPanel(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, float* out) {
    PackWPairsAvx512(a, r0, rows, k0, kb, kNr, reinterpret_cast<uint32_t*>(out));
  }

  // c[i] += sum over pairs kp < ceil(kc / 2) of A[kp][i] . B[kp][0..32): A [kp][MR], B [kp][32] bf16 pairs.
  INFERD_GEMM_AVX512BF16 static void Kernel(int64_t kc, const float* A, const float* B, const Tile& o,
                                            const Prefetch& pf = {}) {
    const auto* a32 = reinterpret_cast<const int32_t*>(A);
    __m512 c[kMr][2];
    for (int i = 0; i < kMr; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
    const int64_t steps = (kc + 1) / 2;
    for (int64_t kp = 0; kp < steps; ++kp) {
      if (pf.base) PrefetchStep<kNr>(pf, kp);
      const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + kp * kNr);
      const __m512bh b1 = (__m512bh)_mm512_loadu_si512(B + kp * kNr + 16);
      const int32_t* ak = a32 + kp * kMr;
      for (int i = 0; i < kMr; ++i) {
        const __m512bh x = (__m512bh)_mm512_set1_epi32(ak[i]);
        c[i][0] = _mm512_dpbf16_ps(c[i][0], x, b0);
        c[i][1] = _mm512_dpbf16_ps(c[i][1], x, b1);
      }
    }
    FinishTile512<kMr>(c, o);
  }
};

// ---- AVX2 + FMA: 6 x 16 tile, 12 ymm accumulators ----

// Rows r[i] (8 floats) -> r[c] = column c of the 8 x 8 block.
INFERD_GEMM_AVX2 inline void Transpose8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
  }
  for (int q = 0; q < 4; ++q) {
    r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
    r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
  }
}

// PackWPanelAvx512's micro-panel, 8 x 8 blocks transposed in registers where all 8 rows and 8 elements
// exist (nr a multiple of 8); ragged rows and the K tail element by element.
template <GemvType T>
INFERD_GEMM_AVX2 void PackWPanelAvx2T(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, int64_t nr,
                                      float* dst) {
  using E = std::conditional_t<T == GemvType::kFloat32, float, uint16_t>;
  for (int64_t g = 0; g < nr / 8; ++g) {
    const int64_t valid = std::clamp<int64_t>(rows - g * 8, 0, 8);
    const E* w = static_cast<const E*>(a.w) + (r0 + g * 8) * a.k + k0;
    int64_t kk = 0;
    if (valid == 8) {
      for (; kk + 8 <= kb; kk += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) {
          if constexpr (T == GemvType::kFloat32) {
            r[i] = _mm256_loadu_ps(w + i * a.k + kk);
          } else {
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i * a.k + kk));
            r[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
          }
        }
        Transpose8(r);
        for (int t = 0; t < 8; ++t) _mm256_storeu_ps(dst + (kk + t) * nr + g * 8, r[t]);
      }
    }
    for (; kk < kb; ++kk)
      for (int64_t j = 0; j < 8; ++j) dst[kk * nr + g * 8 + j] = j < valid ? WAt(a, r0 + g * 8 + j, k0 + kk) : 0.0f;
  }
}

void PackWPanelAvx2(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, int64_t nr, float* dst) {
  if (a.type == GemvType::kFloat32) {
    PackWPanelAvx2T<GemvType::kFloat32>(a, r0, rows, k0, kb, nr, dst);
  } else {
    PackWPanelAvx2T<GemvType::kBFloat16>(a, r0, rows, k0, kb, nr, dst);
  }
}

struct Avx2 : VectorKernel {
  static constexpr int kMr = 6, kNr = 16, kKPerSlot = 1;
  static constexpr int64_t kMc = 16 * kMr, kKc = 256, kNc = 128, kNcOnePass = 128;

  static void PackX(const GemvArgs& a, int64_t mr, int64_t p, float* out) { PackXPanel(a, mr, p, out); }
  static void PackPanel(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, float* out) {
    PackWPanelAvx2(a, r0, rows, k0, kb, kNr, out);
  }

  INFERD_GEMM_AVX2 static void Kernel(int64_t kc, const float* A, const float* B, const Tile& o,
                                      const Prefetch& pf = {}) {
    __m256 c[kMr][2];
    for (int i = 0; i < kMr; ++i) c[i][0] = c[i][1] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < kc; ++kk) {
      if (pf.base) PrefetchStep<kNr>(pf, kk);
      const __m256 b0 = _mm256_loadu_ps(B + kk * kNr), b1 = _mm256_loadu_ps(B + kk * kNr + 8);
      const float* ak = A + kk * kMr;
      for (int i = 0; i < kMr; ++i) {
        const __m256 x = _mm256_broadcast_ss(ak + i);
        c[i][0] = _mm256_fmadd_ps(x, b0, c[i][0]);
        c[i][1] = _mm256_fmadd_ps(x, b1, c[i][1]);
      }
    }
    float t[kMr][kNr];
    for (int i = 0; i < kMr; ++i) {
      _mm256_storeu_ps(t[i], c[i][0]);
      _mm256_storeu_ps(t[i] + 8, c[i][1]);
    }
    FinishTileScalar<kMr, kNr>(t, o);
  }
};

// ---- AMX-BF16, blocked (m > kAmxStreamMaxRows): 2 x 2 tiles of 16 x 16 float32 (MR 32, NR 32) ----

// Tile registers: C(i, j) is tmm 2i + j (x rows 16i.., W columns 16j..), A(i) (x rows) tmm 4 + i, B(j) (W
// pairs) tmm 6 + j; every tile 16 rows of 64 bytes.
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// A static object: GCC 12 drops stores to a local config before ldtilecfg (it does not see the read).
INFERD_GEMM_AMX void AmxConfigureTiles() {
  static const AmxTileConfig config = [] {
    AmxTileConfig c;
    for (int t = 0; t < 8; ++t) {
      c.rows[t] = 16;
      c.colsb[t] = 64;
    }
    return c;
  }();
  _tile_loadconfig(&config);
}

INFERD_GEMM_AMX void AmxReleaseTiles() {
  _tile_release();
}

// bf16 x rows [p * mr, p * mr + mr) as A tiles: [ceil(k / 32)][mr][16] slots of two bf16 (slot (g, i, t):
// elements 32 g + 2 t, 32 g + 2 t + 1 of row i: a row's own bytes, zero past k; rows past m zeros).
void PackXAmx(const GemvArgs& a, int64_t mr, int64_t p, uint32_t* out) {
  const int64_t k = a.k, groups = CeilDiv(k, 32), m0 = p * mr, rows = std::min(mr, a.m - m0);
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t e = std::min<int64_t>(32, k - 32 * g);
    for (int64_t i = 0; i < mr; ++i) {
      auto* dst = reinterpret_cast<uint16_t*>(out + (g * mr + i) * 16);
      if (i < rows) {
        std::memcpy(dst, static_cast<const uint16_t*>(a.x) + (m0 + i) * a.ldx + 32 * g, static_cast<size_t>(e) * 2);
        std::fill(dst + e, dst + 32, uint16_t{0});
      } else {
        std::fill(dst, dst + 32, uint16_t{0});
      }
    }
  }
}

// bf16 operands only: x rows are the A tiles, W's bf16 pairs (PackWPairsAvx512's micro-panel, slot rows padded
// with zeros to a multiple of 16) the B tiles, and TDPBF16PS multiplies 16 x 32 by 32 x 16 per instruction. The
// float32 tile sums of earlier K blocks are loaded back into the tiles, so each output is one chain over K.
struct AmxBf16 {
  static constexpr int kMr = 32, kNr = 32, kKPerSlot = 2;
  static constexpr int64_t kSlotAlign = 16;
  static constexpr bool kTiles = true;
  // kc 256: a 16 KiB W micro-panel and a row panel's 16-32 KiB of x tiles share the 48 KiB L1 (kc 512: 5-10% slower
  // at 512 rows, kc 128 no faster; benchmarks/kernels/RESULTS.md).
  static constexpr int64_t kMc = 4 * kMr, kKc = 256, kNc = 128, kNcOnePass = 256;

  static void BeginTask() { AmxConfigureTiles(); }
  static void EndTask() { AmxReleaseTiles(); }

  static void PackX(const GemvArgs& a, int64_t mr, int64_t p, float* out) {
    PackXAmx(a, mr, p, reinterpret_cast<uint32_t*>(out));
  }
  static void PackPanel(const GemvArgs& a, int64_t r0, int64_t rows, int64_t k0, int64_t kb, float* out) {
    auto* dst = reinterpret_cast<uint32_t*>(out);
    PackWPairsAvx512(a, r0, rows, k0, kb, kNr, dst);
    const int64_t slots = CeilDiv(kb, 2);
    std::fill(dst + slots * kNr, dst + RoundUp(slots, kSlotAlign) * kNr, 0u);
  }

  // A: this panel's x tiles from K block start on ([steps][kMr][16] slots); B: the W micro-panel
  // ([16 steps][32] slots); steps of 32 K elements.
  INFERD_GEMM_AMX static void Kernel(int64_t kc, const float* A, const float* B, const Tile& o,
                                     const Prefetch& pf = {}) {
    const auto* a32 = reinterpret_cast<const uint32_t*>(A);
    const auto* b32 = reinterpret_cast<const uint32_t*>(B);
    const int64_t ldc = o.ldc * 4;
    if (o.first) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
    } else {
      _tile_loadd(0, o.cs, ldc);
      _tile_loadd(1, o.cs + 16, ldc);
      _tile_loadd(2, o.cs + 16 * o.ldc, ldc);
      _tile_loadd(3, o.cs + 16 * o.ldc + 16, ldc);
    }
    const int64_t steps = CeilDiv(kc, 32);
    for (int64_t s = 0; s < steps; ++s) {
      if (pf.base)
        for (int64_t kp = 16 * s; kp < 16 * s + 16; ++kp) PrefetchStep<kNr>(pf, kp);
      const uint32_t* as = a32 + s * kMr * 16;
      const uint32_t* bs = b32 + s * 16 * kNr;
      _tile_loadd(6, bs, kNr * 4);
      _tile_loadd(7, bs + 16, kNr * 4);
      _tile_loadd(4, as, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, as + 16 * 16, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    if (!o.last) {
      _tile_stored(0, o.cs, ldc);
      _tile_stored(1, o.cs + 16, ldc);
      _tile_stored(2, o.cs + 16 * o.ldc, ldc);
      _tile_stored(3, o.cs + 16 * o.ldc + 16, ldc);
      return;
    }
    alignas(64) float t[kMr][kNr];
    _tile_stored(0, &t[0][0], kNr * 4);
    _tile_stored(1, &t[0][16], kNr * 4);
    _tile_stored(2, &t[16][0], kNr * 4);
    _tile_stored(3, &t[16][16], kNr * 4);
    const RowOut r = RowOutOf(o);
    for (int i = 0; i < o.rows; ++i) StoreRow512(_mm512_load_ps(t[i]), _mm512_load_ps(t[i] + 16), i, o, r);
  }
};

// Thread-local scratch that only grows (helpers of the ops pool keep theirs between calls). One set per
// thread whatever the tile (not one per RunBlocked instantiation). 64-byte aligned: the micro-kernels'
// full-width weight loads must not split cache lines (a large std::vector's data sits 16 bytes past a page).
enum class ScratchUse { kX, kW, kC };
constexpr int64_t kScratchAlignFloats = 16;
float* Scratch(ScratchUse use, int64_t floats) {
  thread_local std::vector<float> buffers[3];
  std::vector<float>& v = buffers[static_cast<int>(use)];
  if (static_cast<int64_t>(v.size()) < floats + kScratchAlignFloats)
    v.resize(static_cast<size_t>(floats + kScratchAlignFloats));
  const auto addr = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + (-addr / sizeof(float)) % kScratchAlignFloats;
}

template <typename K>
void RunBlocked(const GemvArgs& a, const GemmParallelFor& parallel_for, const GemmBlocking& blocking) {
  // Panels are 4-byte slots of kps K steps each (float32, or a bf16 pair); ks = slots of a full row.
  constexpr int64_t mr = K::kMr, nr = K::kNr, kps = K::kKPerSlot;
  const int64_t k = a.k, elem = a.type == GemvType::kFloat32 ? 4 : 2, ks = RoundUp(CeilDiv(k, kps), K::kSlotAlign);
  const int64_t kc = RoundUp(blocking.kc > 0 ? blocking.kc : K::kKc, kps * K::kSlotAlign);
  const int64_t mc_panels = CeilDiv(blocking.mc > 0 ? blocking.mc : K::kMc, mr);
  const int64_t panels = CeilDiv(a.m, mr);
  // Decode-sized products (one pass over the rows) pack no more than a micro-panel at a time, so a
  // narrower default column block costs nothing and gives every thread column tasks of its own.
  const int64_t nc_default =
      panels <= mc_panels ? std::min(K::kNcOnePass, nr * std::max<int64_t>(1, CeilDiv(a.n, nr) / kMinTasks)) : K::kNc;
  const int64_t nc = RoundUp(blocking.nc > 0 ? blocking.nc : nc_default, nr);

  // x packed once: [panels][ks][mr], owned by the calling thread for this call.
  float* xp = Scratch(ScratchUse::kX, panels * mr * ks);
  constexpr int64_t kPanelsPerPackTask = 4;
  parallel_for(CeilDiv(panels, kPanelsPerPackTask), [&](int64_t t) {
    const int64_t end = std::min(panels, (t + 1) * kPanelsPerPackTask);
    for (int64_t p = t * kPanelsPerPackTask; p < end; ++p) K::PackX(a, mr, p, xp + p * mr * ks);
  });

  const int64_t col_tasks = CeilDiv(a.n, nc);
  const int64_t row_tasks_wanted = std::min(panels, CeilDiv(kMinTasks, col_tasks));
  const int64_t panels_per_row_task = CeilDiv(panels, std::max<int64_t>(1, row_tasks_wanted));
  const int64_t row_tasks = CeilDiv(panels, panels_per_row_task);
  parallel_for(col_tasks * row_tasks, [&](int64_t task) {
    const int64_t n0 = task % col_tasks * nc, n1 = std::min(a.n, n0 + nc);
    const int64_t p_begin = task / col_tasks * panels_per_row_task;
    const int64_t p_end = std::min(panels, p_begin + panels_per_row_task);
    const int64_t jrs = CeilDiv(n1 - n0, nr), ldc = jrs * nr;
    float* cs = Scratch(ScratchUse::kC, mc_panels * mr * ldc);
    K::BeginTask();
    struct EndTask {
      ~EndTask() { K::EndTask(); }
    } end_task;
    auto tile = [&](int64_t p, int64_t pm, int64_t jr, int64_t k0, int64_t kb) {
      return Tile{cs + (p - pm) * mr * ldc + jr * nr,
                  ldc,
                  k0 == 0,
                  k0 + kb == k,
                  &a,
                  p * mr,
                  n0 + jr * nr,
                  static_cast<int>(std::min(mr, a.m - p * mr)),
                  static_cast<int>(std::min(nr, n1 - n0 - jr * nr))};
    };
    if (p_end - p_begin <= mc_panels) {
      // One pass over the rows: each kb x nr micro-panel is converted right before its use into an
      // L1-sized buffer [kb][nr] and multiplied by every row panel; the first panel's kernel prefetches
      // the weights of the micro-panel that follows (same columns' next K block, else the next columns).
      float* wp = Scratch(ScratchUse::kW, RoundUp(kc / kps, K::kSlotAlign) * nr);
      for (int64_t jr = 0; jr < jrs; ++jr) {
        const int64_t r0 = n0 + jr * nr;
        for (int64_t k0 = 0; k0 < k; k0 += kc) {
          const int64_t kb = std::min(kc, k - k0);
          K::PackPanel(a, r0, std::min(nr, n1 - r0), k0, kb, wp);
          Prefetch pf;
          const int64_t next_r0 = k0 + kb < k ? r0 : r0 + nr, next_k0 = k0 + kb < k ? k0 + kb : 0;
          if (next_r0 < n1) {
            pf.base = static_cast<const char*>(a.w) + (next_r0 * k + next_k0) * elem;
            pf.ld = k * elem;
            pf.bytes = std::min(kc, k - next_k0) * elem;
            pf.rows = static_cast<int>(std::min(nr, n1 - next_r0));
            // Lines per slot step: bf16 rows of a K block are kc * 2 bytes = kc / 32 lines over 32 rows.
            pf.lines = static_cast<int>(elem / 2 * kps);
          }
          for (int64_t p = p_begin; p < p_end; ++p)
            K::Kernel(kb, xp + p * mr * ks + k0 / kps * mr, wp, tile(p, p_begin, jr, k0, kb),
                      p == p_begin ? pf : Prefetch{});
        }
      }
      return;
    }
    // Several passes: the task's weights are converted once, [jrs][ks][nr], and reused by every pass.
    float* wp = Scratch(ScratchUse::kW, jrs * nr * ks);
    for (int64_t jr = 0; jr < jrs; ++jr) {
      const int64_t r0 = n0 + jr * nr;
      K::PackPanel(a, r0, std::min(nr, n1 - r0), 0, k, wp + jr * ks * nr);
    }
    for (int64_t pm = p_begin; pm < p_end; pm += mc_panels) {
      const int64_t pm_end = std::min(p_end, pm + mc_panels);
      for (int64_t k0 = 0; k0 < k; k0 += kc) {
        const int64_t kb = std::min(kc, k - k0);
        // The weights' kb x nr micro-panel stays in L1 while the x panels of this pass stream past it.
        for (int64_t jr = 0; jr < jrs; ++jr) {
          for (int64_t p = pm; p < pm_end; ++p)
            K::Kernel(kb, xp + p * mr * ks + k0 / kps * mr, wp + jr * ks * nr + k0 / kps * nr, tile(p, pm, jr, k0, kb));
        }
      }
    }
  });
}

// ---- AMX-BF16 for decode-sized and short products (m <= kAmxStreamMaxRows): W rows are the A tiles, read in place
// ----
//
// No weight is converted: a 32-element K step of 16 W rows is one A tile loaded straight from W (row stride
// k), x is packed once per call as B tiles (bf16 pairs, 16 of its rows per tile), and C(t, b) = W rows x (x
// rows of block b)^T is a 16 (columns n) x 16 (rows m) float32 tile, transposed into y. A group of 32 W rows
// is multiplied by two 16-row x blocks per pass (4 C tiles), so m > 32 rereads the group from L2. Each output is
// the same one chain over K in 32-element steps as the blocked AMX path's (tdpbf16ps multiplies bf16 exactly
// and adds a step's products in the same order whichever operand is A), so a row's result does not depend on m.

constexpr int64_t kAmxStreamRows = 32;  // W rows per group: two A tiles (tmm 4, 5)
// x rows the path takes (eight 16-row B tile blocks, two per pass): on dense-270m's and moe-700m's products it
// beat the blocked AMX path by 1.3-1.5x at 64-128 rows, tied at 256 and lost (0.82-0.86x) at 512
// (benchmarks/kernels/RESULTS.md).
constexpr int64_t kAmxStreamMaxRows = 128;

// x rows as B tiles: block b (rows 16 b ..) is [ceil(k / 32) * 16][16] slots (slot (kp, i): elements 2 kp,
// 2 kp + 1 of row 16 b + i; zero past k and for rows past m), blocks one after another.
void PackXAmxB(const GemvArgs& a, int64_t slots, uint32_t* out) {
  const int64_t k = a.k, blocks = CeilDiv(a.m, 16);
  std::fill(out, out + blocks * slots * 16, 0u);
  for (int64_t r = 0; r < a.m; ++r) {
    const uint16_t* src = static_cast<const uint16_t*>(a.x) + r * a.ldx;
    uint32_t* dst = out + r / 16 * slots * 16 + r % 16;
    for (int64_t kp = 0; kp < k / 2; ++kp)
      dst[kp * 16] = static_cast<uint32_t>(src[2 * kp]) | static_cast<uint32_t>(src[2 * kp + 1]) << 16;
    if (k % 2) dst[(k / 2) * 16] = src[k - 1];
  }
}

// One pass: c[b][t] (16 x 16 float32, [n][m]) = W rows [16 t, 16 t + 16) from w (row stride ldw elements) times
// x block b's B tiles (xb[b]) over `steps` K steps; C(t, b) is tmm 2 b + t, B(b) tmm 6 + b.
template <int MB>
INFERD_GEMM_AMX void AmxStreamPass(const uint16_t* w, int64_t ldw, int64_t steps, const uint32_t* const (&xb)[2],
                                   float (&c)[2][2][16][16]) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (MB == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const uint16_t* w1 = w + 16 * ldw;
  for (int64_t s = 0; s < steps; ++s) {
    _tile_loadd(4, w + s * 32, ldw * 2);
    _tile_loadd(5, w1 + s * 32, ldw * 2);
    _tile_loadd(6, xb[0] + s * 256, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 5, 6);
    if constexpr (MB == 2) {
      _tile_loadd(7, xb[1] + s * 256, 64);
      _tile_dpbf16ps(2, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, &c[0][0][0][0], 64);
  _tile_stored(1, &c[0][1][0][0], 64);
  if constexpr (MB == 2) {
    _tile_stored(2, &c[1][0][0][0], 64);
    _tile_stored(3, &c[1][1][0][0], 64);
  }
}

// W row groups [g_begin, g_end) of a stream-path product, x packed by PackXAmxB; configures the tiles itself.
void AmxStreamGroups(const GemvArgs& a, const uint32_t* xp, int64_t g_begin, int64_t g_end) {
  const int64_t k = a.k, kpad = RoundUp(k, 32), steps = kpad / 32, slots = steps * 16, blocks = CeilDiv(a.m, 16);
  AmxConfigureTiles();
  for (int64_t g = g_begin; g < g_end; ++g) {
    const int64_t n0 = g * kAmxStreamRows, rows = std::min(kAmxStreamRows, a.n - n0);
    const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * k;
    int64_t ldw = k;
    if (rows < kAmxStreamRows || kpad != k) {
      // A ragged group or K tail: the tiles would read past the rows, so the group is copied, zero-padded.
      auto* pad = reinterpret_cast<uint16_t*>(Scratch(ScratchUse::kW, kAmxStreamRows * kpad / 2));
      std::fill(pad, pad + kAmxStreamRows * kpad, uint16_t{0});
      for (int64_t r = 0; r < rows; ++r) std::memcpy(pad + r * kpad, w + r * k, static_cast<size_t>(k) * 2);
      w = pad;
      ldw = kpad;
    }
    for (int64_t b = 0; b < blocks; b += 2) {
      alignas(64) float c[2][2][16][16];
      const uint32_t* const xb[2] = {xp + b * slots * 16, xp + (b + 1) * slots * 16};
      const int mb = b + 1 < blocks ? 2 : 1;
      if (mb == 2) {
        AmxStreamPass<2>(w, ldw, steps, xb, c);
      } else {
        AmxStreamPass<1>(w, ldw, steps, xb, c);
      }
      for (int j = 0; j < mb; ++j) {
        const int64_t m0 = (b + j) * 16;
        const Tile o{nullptr,
                     0,
                     true,
                     true,
                     &a,
                     m0,
                     n0,
                     static_cast<int>(std::min<int64_t>(16, a.m - m0)),
                     static_cast<int>(rows)};
        StoreAmxStreamRows(c[j], o);
      }
    }
  }
  AmxReleaseTiles();
}

void RunAmxStream(const GemvArgs& a, const GemmParallelFor& parallel_for) {
  uint32_t* xp = reinterpret_cast<uint32_t*>(Scratch(ScratchUse::kX, GemmAmxStreamXSize(a)));
  GemmAmxStreamPackX(a, xp);
  const int64_t groups = GemmAmxStreamGroups(a);
  // At least ~128 KiB of weights per task (a group is 64 KiB at k = 1024), and at least 4 tasks where there are
  // 4 groups.
  const int64_t per_task =
      std::clamp<int64_t>((128 << 10) / (kAmxStreamRows * a.k * 2), 1, std::max<int64_t>(1, groups / 4));
  parallel_for(CeilDiv(groups, per_task),
               [&](int64_t task) { AmxStreamGroups(a, xp, task * per_task, std::min(groups, (task + 1) * per_task)); });
}

// The AVX-512 tile's rows for m rows: as few panels as 14-row tiles need, evened out (m = 16: two panels of
// 8 rows instead of 14 + 2), so that a decode batch of 16-64 rows wastes at most one row per panel.
int Avx512TileRows(int64_t m, const GemmBlocking& blocking) {
  const int64_t panels = CeilDiv(m, kAvx512MaxMr);
  const int64_t mr = blocking.mr > 0 ? blocking.mr : CeilDiv(m, panels);
  return static_cast<int>(std::clamp<int64_t>(mr, 1, kAvx512MaxMr));
}

// Runs the tile Kern<I + 1> for the one I with I + 1 == Avx512TileRows(m, blocking), I in [0, kAvx512MaxMr).
template <template <int> class Kern, int... I>
void RunAvx512(const GemvArgs& a, const GemmParallelFor& parallel_for, const GemmBlocking& blocking,
               std::integer_sequence<int, I...>) {
  const int mr = Avx512TileRows(a.m, blocking);
  ((I + 1 == mr ? RunBlocked<Kern<I + 1>>(a, parallel_for, blocking) : void()), ...);
}

// Reference path: GEMV's scalar loop (one float32 sum in k order per output), columns shared out.
void RunScalar(const GemvArgs& a, const GemmParallelFor& parallel_for) {
  constexpr int64_t kColumnsPerTask = 16;
  parallel_for(CeilDiv(a.n, kColumnsPerTask), [&](int64_t t) {
    GemvRangeIsa(a, GemvIsa::kScalar, t * kColumnsPerTask, std::min(a.n, (t + 1) * kColumnsPerTask));
  });
}

}  // namespace

bool GemmIsaSupported(GemvIsa isa) {
  return isa != GemvIsa::kScalar && GemvIsaSupported(isa);
}

GemvIsa GemmBestIsa() {
  static const GemvIsa best = [] {
    for (GemvIsa isa : {GemvIsa::kAmxBf16, GemvIsa::kAvx512Bf16, GemvIsa::kAvx512, GemvIsa::kAvx2})
      if (GemmIsaSupported(isa)) return isa;
    return GemvIsa::kScalar;
  }();
  return best;
}

int64_t GemmKBlock(GemvIsa isa, int64_t k) {
  switch (isa) {
    case GemvIsa::kAvx512:
    case GemvIsa::kAmxBf16:  // float32 operands take kAvx512; bf16 ones sum one chain over K whatever kc
      return std::min(k, Avx512<kAvx512MaxMr>::kKc);
    case GemvIsa::kAvx512Bf16:
      return std::min(k, Avx512Bf16<kAvx512MaxMr>::kKc);
    case GemvIsa::kAvx2:
      return std::min(k, Avx2::kKc);
    default:
      return k;
  }
}

void GemmIsa(const GemvArgs& a, GemvIsa isa, const GemmParallelFor& parallel_for, const GemmBlocking& blocking) {
  if (a.m <= 0 || a.n <= 0) return;
  if (a.k <= 0 || isa == GemvIsa::kScalar) {
    RunScalar(a, parallel_for);
    return;
  }
  const bool bf16 = a.type == GemvType::kBFloat16;
  if (isa == GemvIsa::kAmxBf16 && bf16) {
    if (a.m <= kAmxStreamMaxRows) {
      RunAmxStream(a, parallel_for);
    } else {
      RunBlocked<AmxBf16>(a, parallel_for, blocking);
    }
  } else if ((isa == GemvIsa::kAvx512Bf16 || isa == GemvIsa::kAmxBf16) && bf16) {
    RunAvx512<Avx512Bf16>(a, parallel_for, blocking, std::make_integer_sequence<int, kAvx512MaxMr>{});
  } else if (isa == GemvIsa::kAvx512 || isa == GemvIsa::kAvx512Bf16 || isa == GemvIsa::kAmxBf16) {
    RunAvx512<Avx512>(a, parallel_for, blocking, std::make_integer_sequence<int, kAvx512MaxMr>{});
  } else {
    RunBlocked<Avx2>(a, parallel_for, blocking);
  }
}

bool GemmAmxStreamTakes(const GemvArgs& a) {
  return a.type == GemvType::kBFloat16 && a.m >= 1 && a.m <= kAmxStreamMaxRows && a.k > 0 &&
         GemmIsaSupported(GemvIsa::kAmxBf16);
}

int64_t GemmAmxStreamXSize(const GemvArgs& a) {
  return CeilDiv(a.m, 16) * CeilDiv(a.k, 32) * 256;
}

void GemmAmxStreamPackX(const GemvArgs& a, uint32_t* out) {
  PackXAmxB(a, CeilDiv(a.k, 32) * 16, out);
}

int64_t GemmAmxStreamGroups(const GemvArgs& a) {
  return CeilDiv(a.n, kAmxStreamRows);
}

void GemmAmxStreamRange(const GemvArgs& a, const uint32_t* x_packed, int64_t g_begin, int64_t g_end) {
  AmxStreamGroups(a, x_packed, g_begin, g_end);
}

void Gemm(const GemvArgs& a, const GemmParallelFor& parallel_for) {
  GemmIsa(a, GemmBestIsa(), parallel_for);
}

}  // namespace inferd::kernels::cpu
