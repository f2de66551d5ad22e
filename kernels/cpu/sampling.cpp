#include "sampling.h"

// GCC 12 flags _mm256_undefined_pd() inside _mm512_reduce_add_ps as maybe-uninitialized (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace inferd::kernels::cpu {
namespace {

constexpr int64_t kBlock = 512;  // block sums: the draw finds its block first, then scans one block

// exp(x) for x <= 0: 2^n * e^r with |r| <= ln2 / 2 and a degree-7 Taylor polynomial (relative error below
// 1e-7, under float32's rounding); exp(x < -87) = 0. The same arithmetic in each ISA path.
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187045e-6f;
constexpr float kC7 = 1.0f / 5040, kC6 = 1.0f / 720, kC5 = 1.0f / 120, kC4 = 1.0f / 24, kC3 = 1.0f / 6, kC2 = 0.5f;

inline float ExpNonPositive(float x) {
  if (x < -87.0f) return 0.0f;
  const float n = std::floor(x * kLog2e + 0.5f);
  const float r = x - n * kLn2Hi - n * kLn2Lo;
  float p = kC7;
  for (float c : {kC6, kC5, kC4, kC3, kC2, 1.0f, 1.0f}) p = p * r + c;
  return std::ldexp(p, static_cast<int>(n));
}

float MaxScalar(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// w[i] = exp((x[i] - m) * scale) (w may be null); returns the sum.
float ExpScalar(const float* x, float* w, int64_t n, float m, float scale) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float e = ExpNonPositive((x[i] - m) * scale);
    if (w) w[i] = e;
    s += e;
  }
  return s;
}

__attribute__((target("avx512f"))) inline __m512 Exp512(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kC7);
  for (float c : {kC6, kC5, kC4, kC3, kC2, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n));
}

__attribute__((target("avx512f"))) float Max512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  float out = _mm512_reduce_max_ps(m);
  for (; i < n; ++i) out = x[i] > out ? x[i] : out;
  return out;
}

__attribute__((target("avx512f"))) float Exp512Block(const float* x, float* w, int64_t n, float m, float scale) {
  const __m512 vm = _mm512_set1_ps(m), vs = _mm512_set1_ps(scale);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = Exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vs));
    if (w) _mm512_storeu_ps(w + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc) + ExpScalar(x + i, w ? w + i : nullptr, n - i, m, scale);
}

__attribute__((target("avx2,fma"))) inline __m256 Exp256(__m256 x) {
  const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC7);
  for (float c : {kC6, kC5, kC4, kC3, kC2, 1.0f, 1.0f}) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(live, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

__attribute__((target("avx2,fma"))) float Reduce256(__m256 v, bool max) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float out = lanes[0];
  for (int i = 1; i < 8; ++i) out = max ? (lanes[i] > out ? lanes[i] : out) : out + lanes[i];
  return out;
}

__attribute__((target("avx2,fma"))) float Max256(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  float out = Reduce256(m, true);
  for (; i < n; ++i) out = x[i] > out ? x[i] : out;
  return out;
}

__attribute__((target("avx2,fma"))) float Exp256Block(const float* x, float* w, int64_t n, float m, float scale) {
  const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(scale);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vs));
    if (w) _mm256_storeu_ps(w + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  return Reduce256(acc, false) + ExpScalar(x + i, w ? w + i : nullptr, n - i, m, scale);
}

// Chosen once from the CPU's features: AVX-512F, else AVX2 + FMA, else scalar.
struct Isa {
  float (*max)(const float*, int64_t);
  float (*exp)(const float*, float*, int64_t, float, float);
};

const Isa& Dispatch() {
  static const Isa isa = [] {
    if (__builtin_cpu_supports("avx512f")) return Isa{&Max512, &Exp512Block};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa{&Max256, &Exp256Block};
    return Isa{&MaxScalar, &ExpScalar};
  }();
  return isa;
}

inline float MaxOf(const float* x, int64_t n) {
  return Dispatch().max(x, n);
}
inline float ExpBlock(const float* x, float* w, int64_t n, float m, float scale) {
  return Dispatch().exp(x, w, n, m, scale);
}
inline float ExpSumBlock(const float* x, int64_t n, float m) {
  return Dispatch().exp(x, nullptr, n, m, 1.0f);
}

struct Scratch {
  std::vector<float> w;                         // [vocab] unnormalised probabilities
  std::vector<double> block_sum;                // [ceil(vocab / kBlock)]
  std::vector<std::pair<float, int32_t>> cand;  // kept candidates (weight, id)
};

Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}

// More probable first; the lower id first on ties.
inline bool Before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// Length of the shortest most-probable-first prefix of cand[0, n) whose mass reaches `target` (n if none):
// the number of ranks whose mass strictly before them is below target. Expected O(n): each round
// partitions at the middle rank and keeps the half that holds the boundary.
int64_t TopPLength(std::pair<float, int32_t>* cand, int64_t n, double target) {
  int64_t lo = 0, hi = n;
  double acc = 0.0;  // mass of cand[0, lo), all of it kept
  while (hi - lo > 64) {
    const int64_t mid = lo + (hi - lo) / 2;
    std::nth_element(cand + lo, cand + mid, cand + hi, Before);
    double left = 0.0;
    for (int64_t i = lo; i < mid; ++i) left += cand[i].first;
    if (acc + left >= target) {
      hi = mid;  // the boundary rank is in [lo, mid)
    } else {
      acc += left;
      lo = mid;
    }
  }
  std::sort(cand + lo, cand + hi, Before);
  int64_t kept = lo;
  for (int64_t i = lo; i < hi && acc < target; ++i, ++kept) acc += cand[i].first;
  return kept;
}

int64_t DrawFromCandidates(const std::pair<float, int32_t>* cand, int64_t n, double uniform) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += cand[i].first;
  const double target = uniform * total;
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    acc += cand[i].first;
    if (acc > target) return cand[i].second;
  }
  for (int64_t i = n - 1; i > 0; --i) {  // uniform rounded to 1: the last token with mass
    if (cand[i].first > 0.0f) return cand[i].second;
  }
  return cand[0].second;
}

int64_t DrawFromRow(const float* w, const std::vector<double>& block_sum, int64_t vocab, double total, double uniform) {
  const double target = uniform * total;
  double acc = 0.0;
  const int64_t blocks = static_cast<int64_t>(block_sum.size());
  int64_t b = 0;
  for (; b < blocks - 1 && acc + block_sum[b] <= target; ++b) acc += block_sum[b];
  const int64_t end = std::min(vocab, (b + 1) * kBlock);
  int64_t last_nonzero = -1;
  for (int64_t i = b * kBlock; i < end; ++i) {
    if (w[i] > 0.0f) last_nonzero = i;
    acc += w[i];
    if (acc > target && w[i] > 0.0f) return i;
  }
  if (last_nonzero >= 0) return last_nonzero;
  return ArgMax(w, vocab);
}

}  // namespace

int64_t ArgMax(const float* x, int64_t n) {
  const float m = MaxOf(x, n);
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] == m) return i;
  }
  return 0;  // every value NaN
}

// Cloned per ISA: one pass of integer compares over the bits, which vectorises at any width.
__attribute__((target_clones("avx512f", "avx2", "default"))) bool AllFinite(const float* x, int64_t n) {
  uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

float LogSumExp(const float* x, int64_t n) {
  const float m = MaxOf(x, n);
  if (!std::isfinite(m)) return m;
  double s = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) s += ExpSumBlock(x + b, std::min(kBlock, n - b), m);
  return m + static_cast<float>(std::log(s));
}

int64_t SampleRow(const SampleRowArgs& a) {
  Scratch& s = ThreadScratch();
  const int64_t vocab = a.vocab;
  const float m = MaxOf(a.logits, vocab);
  if (!std::isfinite(m)) return ArgMax(a.logits, vocab);
  s.w.resize(static_cast<size_t>(vocab));
  s.block_sum.resize(static_cast<size_t>((vocab + kBlock - 1) / kBlock));
  const float scale = 1.0f / a.temperature;
  double total = 0.0;
  for (int64_t b = 0, i = 0; b < vocab; b += kBlock, ++i) {
    s.block_sum[i] = ExpBlock(a.logits + b, s.w.data() + b, std::min(kBlock, vocab - b), m, scale);
    total += s.block_sum[i];
  }
  const bool top_k = a.top_k > 0 && a.top_k < vocab;
  const bool top_p = a.top_p < 1.0f;
  const bool min_p = a.min_p > 0.0f;
  if (!top_k && !top_p && !min_p) return DrawFromRow(s.w.data(), s.block_sum, vocab, total, a.uniform);

  // The most probable token has weight exp(0) = 1, so min_p compares weights with min_p itself.
  const float floor_w = min_p ? a.min_p : 0.0f;
  s.cand.clear();
  const float* w = s.w.data();
  for (int64_t i = 0; i < vocab; ++i) {
    if (w[i] >= floor_w && w[i] > 0.0f) s.cand.emplace_back(w[i], static_cast<int32_t>(i));
  }
  if (s.cand.empty()) return ArgMax(a.logits, vocab);
  int64_t n = static_cast<int64_t>(s.cand.size());
  if (top_k && a.top_k < n) {
    std::nth_element(s.cand.begin(), s.cand.begin() + (a.top_k - 1), s.cand.end(), Before);
    n = a.top_k;
  }
  if (top_p) n = std::max<int64_t>(1, TopPLength(s.cand.data(), n, static_cast<double>(a.top_p) * total));
  return DrawFromCandidates(s.cand.data(), n, a.uniform);
}

}  // namespace inferd::kernels::cpu
