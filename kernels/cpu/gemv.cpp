#include "gemv.h"

// GCC 12 flags the _mm*_undefined_*() placeholders inside AVX-512 intrinsics (masked loads, lane extracts)
// as (maybe-)uninitialized: false positives.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "elem_type.h"

namespace inferd::kernels::cpu {
namespace {

inline float XAt(const GemvArgs& a, int64_t m, int64_t kk) {
  return a.type == GemvType::kFloat32 ? static_cast<const float*>(a.x)[m * a.ldx + kk]
                                      : Bf16ToFloat(static_cast<const uint16_t*>(a.x)[m * a.ldx + kk]);
}

inline void Store(const GemvArgs& a, int64_t m, int64_t n, float v) {
  if (a.bias)
    v += a.type == GemvType::kFloat32 ? static_cast<const float*>(a.bias)[n]
                                      : Bf16ToFloat(static_cast<const uint16_t*>(a.bias)[n]);
  if (a.type == GemvType::kFloat32) {
    static_cast<float*>(a.y)[m * a.ldy + n] = v;
  } else {
    static_cast<uint16_t*>(a.y)[m * a.ldy + n] = FloatToBf16(v);
  }
}

// Software prefetch distance along the weight stream (bytes ahead of the block being read). On the Intel Xeon
// with AMX, 2 threads: batch-1 decode 1.09x the tokens/s of 1024 bytes on both bench shapes; 2048 between,
// 3072-8192 alike (benchmarks/model/RESULTS.md, "prefetch distance").
constexpr int64_t kPrefetchBytes = 4096;

// K block of a packed path: 32 elements (AVX-512: two 16-lane accumulators), 16 (AVX2: two 8-lane ones).
inline int64_t BlockOf(GemvIsa isa) {
  return isa == GemvIsa::kAvx2 ? 16 : 32;
}
inline int64_t PaddedK(int64_t k, int64_t block) {
  return (k + block - 1) / block * block;
}
inline bool Packed(GemvIsa isa, GemvType type) {
  if (isa == GemvIsa::kAmxBf16) isa = GemvIsa::kAvx512Bf16;
  return isa == GemvIsa::kAvx2 || isa == GemvIsa::kAvx512 ||
         (isa == GemvIsa::kAvx512Bf16 && type == GemvType::kFloat32);
}

// What a block kernel sees: x either packed float32 [m, kp] or the caller's (bf16 native path).
struct Ctx {
  const GemvArgs* a;
  const float* xp;  // [m, kp] packed, or null
  int64_t kp;
};

// ---- AVX-512F: bf16 widened by shift (even elements) and mask (odd elements), or float32 halves ----

#define INFERD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define INFERD_AVX2 __attribute__((target("avx2,fma")))
#define INFERD_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INFERD_INLINE __attribute__((always_inline)) inline

// Lane sums in a fixed tree: 256-bit halves, then 128-bit halves, then pairs.
INFERD_AVX2 inline float ReduceAvx2(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

#define INFERD_AVX512_REDUCE __attribute__((target("avx512f,avx2,fma")))
INFERD_AVX512_REDUCE inline float Reduce512(__m512 v) {
  const __m512 h = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));  // lanes 0-7 += lanes 8-15
  return ReduceAvx2(_mm512_castps512_ps256(h));
}

template <GemvType T>
struct Avx512 {
  static constexpr int kMaxBlock = 8;  // NR * MR: 2 accumulators each, 16 of 32 zmm

  // One K block: acc[r][i][h] += w[r][h] * x[i][block half h].
  template <int NR, int MR>
  INFERD_AVX512 static INFERD_INLINE void Step(__m512 (&acc)[NR][MR][2], const __m512 (&wv)[NR][2], const float* xp,
                                               int64_t kp, int64_t kk) {
    for (int i = 0; i < MR; ++i) {
      const __m512 x0 = _mm512_loadu_ps(xp + i * kp + kk);
      const __m512 x1 = _mm512_loadu_ps(xp + i * kp + kk + 16);
      for (int r = 0; r < NR; ++r) {
        acc[r][i][0] = _mm512_fmadd_ps(wv[r][0], x0, acc[r][i][0]);
        acc[r][i][1] = _mm512_fmadd_ps(wv[r][1], x1, acc[r][i][1]);
      }
    }
  }

  template <int NR, int MR>
  INFERD_AVX512 static void Block(const Ctx& c, int64_t n0, int64_t m0) {
    const GemvArgs& a = *c.a;
    const int64_t k = a.k;
    __m512 acc[NR][MR][2];
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) acc[r][i][0] = acc[r][i][1] = _mm512_setzero_ps();
    const float* xp = c.xp + m0 * c.kp;
    const int64_t kfull = k / 32 * 32;
    if constexpr (T == GemvType::kBFloat16) {
      const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * k;
      const __m512i hi = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
      int64_t kk = 0;
      for (; kk < kfull; kk += 32) {
        __m512 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          const uint16_t* p = w + r * k + kk;
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          const __m512i v = _mm512_loadu_si512(p);
          wv[r][0] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
          wv[r][1] = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
      if (kk < k) {
        const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << (k - kk)) - 1);
        __m512 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          const __m512i v = _mm512_maskz_loadu_epi16(mask, w + r * k + kk);
          wv[r][0] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
          wv[r][1] = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
    } else {
      const float* w = static_cast<const float*>(a.w) + n0 * k;
      int64_t kk = 0;
      for (; kk < kfull; kk += 32) {
        __m512 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          const float* p = w + r * k + kk;
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          wv[r][0] = _mm512_loadu_ps(p);
          wv[r][1] = _mm512_loadu_ps(p + 16);
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
      if (kk < k) {
        const int64_t rest = k - kk;
        const __mmask16 m0m = static_cast<__mmask16>(rest >= 16 ? 0xffff : (1u << rest) - 1);
        const __mmask16 m1m = static_cast<__mmask16>(rest <= 16 ? 0 : (1u << (rest - 16)) - 1);
        __m512 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          wv[r][0] = _mm512_maskz_loadu_ps(m0m, w + r * k + kk);
          wv[r][1] = _mm512_maskz_loadu_ps(m1m, w + r * k + kk + 16);
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) Store(a, m0 + i, n0 + r, Reduce512(_mm512_add_ps(acc[r][i][0], acc[r][i][1])));
  }
};

// ---- AVX2 + FMA: the same scheme on 8-lane vectors, K blocks of 16 ----

template <GemvType T>
struct Avx2 {
  static constexpr int kMaxBlock = 4;  // NR * MR: 2 accumulators each, 8 of 16 ymm

  template <int NR, int MR>
  INFERD_AVX2 static INFERD_INLINE void Step(__m256 (&acc)[NR][MR][2], const __m256 (&wv)[NR][2], const float* xp,
                                             int64_t kp, int64_t kk) {
    for (int i = 0; i < MR; ++i) {
      const __m256 x0 = _mm256_loadu_ps(xp + i * kp + kk);
      const __m256 x1 = _mm256_loadu_ps(xp + i * kp + kk + 8);
      for (int r = 0; r < NR; ++r) {
        acc[r][i][0] = _mm256_fmadd_ps(wv[r][0], x0, acc[r][i][0]);
        acc[r][i][1] = _mm256_fmadd_ps(wv[r][1], x1, acc[r][i][1]);
      }
    }
  }

  INFERD_AVX2 static INFERD_INLINE void Widen(__m256i v, __m256 (&out)[2]) {
    out[0] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    out[1] = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }

  template <int NR, int MR>
  INFERD_AVX2 static void Block(const Ctx& c, int64_t n0, int64_t m0) {
    const GemvArgs& a = *c.a;
    const int64_t k = a.k;
    __m256 acc[NR][MR][2];
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) acc[r][i][0] = acc[r][i][1] = _mm256_setzero_ps();
    const float* xp = c.xp + m0 * c.kp;
    const int64_t kfull = k / 16 * 16;
    if constexpr (T == GemvType::kBFloat16) {
      const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * k;
      int64_t kk = 0;
      for (; kk < kfull; kk += 16) {
        __m256 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          const uint16_t* p = w + r * k + kk;
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          Widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), wv[r]);
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
      if (kk < k) {
        __m256 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          alignas(32) uint16_t tail[16] = {};
          std::memcpy(tail, w + r * k + kk, static_cast<size_t>(k - kk) * sizeof(uint16_t));
          Widen(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)), wv[r]);
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
    } else {
      const float* w = static_cast<const float*>(a.w) + n0 * k;
      int64_t kk = 0;
      for (; kk < kfull; kk += 16) {
        __m256 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          const float* p = w + r * k + kk;
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          wv[r][0] = _mm256_loadu_ps(p);
          wv[r][1] = _mm256_loadu_ps(p + 8);
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
      if (kk < k) {
        __m256 wv[NR][2];
        for (int r = 0; r < NR; ++r) {
          alignas(32) float tail[16] = {};
          std::memcpy(tail, w + r * k + kk, static_cast<size_t>(k - kk) * sizeof(float));
          wv[r][0] = _mm256_load_ps(tail);
          wv[r][1] = _mm256_load_ps(tail + 8);
        }
        Step<NR, MR>(acc, wv, xp, c.kp, kk);
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) Store(a, m0 + i, n0 + r, ReduceAvx2(_mm256_add_ps(acc[r][i][0], acc[r][i][1])));
  }
};

// ---- AVX512-BF16: vdpbf16ps on bf16 x and w as they are (no packing) ----

struct Avx512Bf16 {
  static constexpr int kMaxBlock = 8;

  // K block at kk (32 elements, `mask` of them valid) into accumulator J.
  template <int NR, int MR, int J>
  INFERD_AVX512BF16 static INFERD_INLINE void Step(__m512 (&acc)[NR][MR][2], const uint16_t* w, int64_t k,
                                                   const uint16_t* x, int64_t ldx, int64_t kk, __mmask32 mask) {
    __m512bh wv[NR];
    for (int r = 0; r < NR; ++r) {
      const uint16_t* p = w + r * k + kk;
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, p);
    }
    for (int i = 0; i < MR; ++i) {
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + i * ldx + kk);
      for (int r = 0; r < NR; ++r) acc[r][i][J] = _mm512_dpbf16_ps(acc[r][i][J], wv[r], xv);
    }
  }

  template <int NR, int MR>
  INFERD_AVX512BF16 static void Block(const Ctx& c, int64_t n0, int64_t m0) {
    const GemvArgs& a = *c.a;
    const int64_t k = a.k;
    const uint16_t* x = static_cast<const uint16_t*>(a.x) + m0 * a.ldx;
    const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * k;
    __m512 acc[NR][MR][2];
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) acc[r][i][0] = acc[r][i][1] = _mm512_setzero_ps();
    // Block b of 32 elements goes to accumulator b % 2.
    const __mmask32 all = static_cast<__mmask32>(~0u);
    int64_t kk = 0;
    for (; kk + 64 <= k; kk += 64) {
      Step<NR, MR, 0>(acc, w, k, x, a.ldx, kk, all);
      Step<NR, MR, 1>(acc, w, k, x, a.ldx, kk + 32, all);
    }
    // At most 63 left: a full or partial even block, then a partial odd one.
    auto tail = [k](int64_t at) {
      const int64_t rest = k - at;
      return rest >= 32 ? static_cast<__mmask32>(~0u) : static_cast<__mmask32>((uint64_t{1} << rest) - 1);
    };
    if (kk < k) Step<NR, MR, 0>(acc, w, k, x, a.ldx, kk, tail(kk));
    if (kk + 32 < k) Step<NR, MR, 1>(acc, w, k, x, a.ldx, kk + 32, tail(kk + 32));
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) Store(a, m0 + i, n0 + r, Reduce512(_mm512_add_ps(acc[r][i][0], acc[r][i][1])));
  }
};

// ---- block loops: x rows in groups of MR (register block), W rows in groups of NR (stream) ----

// W rows [n_begin, n_end) against x rows [m0, m0 + MR); a ragged W tail goes one row at a time.
template <typename K, int NR, int MR>
void Columns(const Ctx& c, int64_t n_begin, int64_t n_end, int64_t m0) {
  int64_t n0 = n_begin;
  for (; n0 + NR <= n_end; n0 += NR) K::template Block<NR, MR>(c, n0, m0);
  if constexpr (NR > 1) {
    for (; n0 < n_end; ++n0) K::template Block<1, MR>(c, n0, m0);
  }
}

template <typename K, int NR, int R>
void RaggedRows(const Ctx& c, int64_t n_begin, int64_t n_end, int64_t m0, int64_t rows) {
  if constexpr (R >= 1) {
    if (rows == R) {
      Columns<K, NR, R>(c, n_begin, n_end, m0);
    } else {
      RaggedRows<K, NR, R - 1>(c, n_begin, n_end, m0, rows);
    }
  }
}

// Every x row against W rows [n_begin, n_end): the column range (a chunk, sized to stay in L2) is walked
// once per MR-row group, so its weights come from memory once and from cache for the other groups.
template <typename K, int NR>
void AllRows(const Ctx& c, int64_t n_begin, int64_t n_end) {
  constexpr int kMr = K::kMaxBlock / NR;
  const int64_t m = c.a->m;
  int64_t m0 = 0;
  for (; m0 + kMr <= m; m0 += kMr) Columns<K, NR, kMr>(c, n_begin, n_end, m0);
  if (m0 < m) RaggedRows<K, NR, kMr - 1>(c, n_begin, n_end, m0, m - m0);
}

template <typename K>
void ByWeightRows(const Ctx& c, int64_t n_begin, int64_t n_end, int weight_rows) {
  switch (weight_rows) {
    case 4:
      AllRows<K, 4>(c, n_begin, n_end);
      break;
    case 2:
      AllRows<K, 2>(c, n_begin, n_end);
      break;
    default:
      AllRows<K, 1>(c, n_begin, n_end);
      break;
  }
}

void ScalarRange(const GemvArgs& a, int64_t n_begin, int64_t n_end) {
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

// AMX-TILE and AMX-BF16 in CPUID, and Linux's permission for this process to use the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM, granted once for all of its threads).
bool AmxBf16Usable() {
#if defined(__linux__) && defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  if (!(edx & (1u << 22)) || !(edx & (1u << 24))) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool HasAvx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

constexpr GemvIsa kAllIsas[] = {GemvIsa::kScalar, GemvIsa::kAvx2, GemvIsa::kAvx512, GemvIsa::kAvx512Bf16,
                                GemvIsa::kAmxBf16};

// INFERD_CPU_ISA's cap: the highest path allowed (kAmxBf16 when unset or invalid), and the error if invalid.
struct IsaCap {
  GemvIsa max = GemvIsa::kAmxBf16;
  std::string error;
};

const IsaCap& EnvIsaCap() {
  static const IsaCap cap = [] {
    IsaCap c;
    const char* v = std::getenv("INFERD_CPU_ISA");
    if (v == nullptr || *v == '\0') return c;
    for (GemvIsa isa : kAllIsas) {
      if (std::strcmp(v, GemvIsaName(isa)) == 0) {
        c.max = isa;
        return c;
      }
    }
    c.error = std::string("INFERD_CPU_ISA=") + std::string(v).substr(0, 64) +
              ": not one of scalar, avx2, avx512, avx512bf16, amxbf16";
    return c;
  }();
  return cap;
}

}  // namespace

std::string GemvIsaEnvError() {
  return EnvIsaCap().error;
}

const char* GemvIsaName(GemvIsa isa) {
  switch (isa) {
    case GemvIsa::kScalar:
      return "scalar";
    case GemvIsa::kAvx2:
      return "avx2";
    case GemvIsa::kAvx512:
      return "avx512";
    case GemvIsa::kAvx512Bf16:
      return "avx512bf16";
    case GemvIsa::kAmxBf16:
      return "amxbf16";
  }
  return "?";
}

bool GemvIsaSupported(GemvIsa isa) {
  // Probed once (the AMX probe is a system call); indexed by GemvIsa.
  static const std::array<bool, 5> supported = [] {
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = HasAvx512();
    const bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    std::array<bool, 5> s = {true, avx2, avx512, bf16, bf16 && AmxBf16Usable()};
    for (GemvIsa i : kAllIsas)
      if (static_cast<int>(i) > static_cast<int>(EnvIsaCap().max)) s[static_cast<size_t>(i)] = false;
    return s;
  }();
  const auto i = static_cast<size_t>(isa);
  return i < supported.size() && supported[i];
}

GemvIsa GemvBestIsa(GemvType type) {
  if (type == GemvType::kBFloat16 && GemvIsaSupported(GemvIsa::kAvx512Bf16)) return GemvIsa::kAvx512Bf16;
  if (GemvIsaSupported(GemvIsa::kAvx512)) return GemvIsa::kAvx512;
  if (GemvIsaSupported(GemvIsa::kAvx2)) return GemvIsa::kAvx2;
  return GemvIsa::kScalar;
}

bool GemvFast(GemvType type) {
  return GemvBestIsa(type) != GemvIsa::kScalar;
}

int64_t GemvPackedXSize(const GemvArgs& a, GemvIsa isa) {
  return Packed(isa, a.type) ? a.m * PaddedK(a.k, BlockOf(isa)) : 0;
}

void GemvPackX(const GemvArgs& a, GemvIsa isa, float* out) {
  if (!Packed(isa, a.type)) return;
  const int64_t block = BlockOf(isa), half = block / 2, kp = PaddedK(a.k, block);
  for (int64_t m = 0; m < a.m; ++m) {
    float* o = out + m * kp;
    if (a.type == GemvType::kFloat32) {
      // Plain copy: accumulator 0 reads each block's first half, accumulator 1 its second.
      for (int64_t kk = 0; kk < a.k; ++kk) o[kk] = XAt(a, m, kk);
      for (int64_t kk = a.k; kk < kp; ++kk) o[kk] = 0.0f;
    } else {
      // Per block: the even elements, then the odd ones (the order the shift / mask widen W to).
      for (int64_t b = 0; b < kp; b += block) {
        for (int64_t j = 0; j < half; ++j) {
          const int64_t e = b + 2 * j, od = e + 1;
          o[b + j] = e < a.k ? XAt(a, m, e) : 0.0f;
          o[b + half + j] = od < a.k ? XAt(a, m, od) : 0.0f;
        }
      }
    }
  }
}

void GemvRangeIsa(const GemvArgs& a, GemvIsa isa, int64_t n_begin, int64_t n_end, int weight_rows) {
  if (n_begin >= n_end || a.m <= 0) return;
  if (isa == GemvIsa::kAmxBf16) isa = GemvIsa::kAvx512Bf16;
  if (isa == GemvIsa::kScalar) {
    ScalarRange(a, n_begin, n_end);
    return;
  }
  Ctx c{&a, nullptr, PaddedK(a.k, BlockOf(isa))};
  if (Packed(isa, a.type)) {
    if (a.x_packed) {
      c.xp = a.x_packed;
    } else {
      thread_local std::vector<float> scratch;
      scratch.resize(static_cast<size_t>(GemvPackedXSize(a, isa)));
      GemvPackX(a, isa, scratch.data());
      c.xp = scratch.data();
    }
  }
  const bool bf16 = a.type == GemvType::kBFloat16;
  switch (isa) {
    case GemvIsa::kAvx512Bf16:
      if (bf16) {
        ByWeightRows<Avx512Bf16>(c, n_begin, n_end, weight_rows);
        break;
      }
      [[fallthrough]];
    case GemvIsa::kAvx512:
      if (bf16) {
        ByWeightRows<Avx512<GemvType::kBFloat16>>(c, n_begin, n_end, weight_rows);
      } else {
        ByWeightRows<Avx512<GemvType::kFloat32>>(c, n_begin, n_end, weight_rows);
      }
      break;
    case GemvIsa::kAvx2:
      if (bf16) {
        ByWeightRows<Avx2<GemvType::kBFloat16>>(c, n_begin, n_end, weight_rows);
      } else {
        ByWeightRows<Avx2<GemvType::kFloat32>>(c, n_begin, n_end, weight_rows);
      }
      break;
    case GemvIsa::kScalar:
    case GemvIsa::kAmxBf16:
      break;
  }
}

void GemvRange(const GemvArgs& a, int64_t n_begin, int64_t n_end) {
  GemvRangeIsa(a, GemvBestIsa(a.type), n_begin, n_end, 0);
}

}  // namespace inferd::kernels::cpu
