#include "rowwise.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "fast_exp.h"

namespace inferd::kernels::cpu {
namespace {

// Element access by type; the loops below are instantiated per type so they vectorise.
template <ElemType T>
struct Elem;
template <>
struct Elem<ElemType::kFloat32> {
  using Store = float;
  static float Load(float v) { return v; }
  static float Round(float v) { return v; }
  static float Put(float v) { return v; }
};
template <>
struct Elem<ElemType::kBFloat16> {
  using Store = uint16_t;
  static float Load(uint16_t v) { return Bf16ToFloat(v); }
  static float Round(float v) { return Bf16ToFloat(FloatToBf16(v)); }
  static uint16_t Put(float v) { return FloatToBf16(v); }
};

template <ElemType T>
void NormRow(const typename Elem<T>::Store* x, const typename Elem<T>::Store* w, typename Elem<T>::Store* y,
             int64_t dim, float eps) {
  using E = Elem<T>;
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < dim; ++i) {
    const float v = E::Load(x[i]);
    ss += v * v;
  }
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) y[i] = E::Put(E::Load(w[i]) * E::Round(E::Load(x[i]) * inv));
}

template <ElemType T>
void Norm(const void* x, int64_t ldx, const void* hw, void* hy, int64_t ldy, int64_t rows, int64_t dim, float eps) {
  using S = typename Elem<T>::Store;
  for (int64_t r = 0; r < rows; ++r) {
    NormRow<T>(static_cast<const S*>(x) + r * ldx, static_cast<const S*>(hw), static_cast<S*>(hy) + r * ldy, dim, eps);
  }
}

template <ElemType T>
void AddNorm(void* h, int64_t ldh, const void* d, int64_t ldd, const void* w, void* y, int64_t ldy, int64_t rows,
             int64_t dim, float eps) {
  using E = Elem<T>;
  using S = typename E::Store;
  for (int64_t r = 0; r < rows; ++r) {
    S* hr = static_cast<S*>(h) + r * ldh;
    const S* dr = static_cast<const S*>(d) + r * ldd;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) hr[i] = E::Put(E::Load(hr[i]) + E::Load(dr[i]));
    NormRow<T>(hr, static_cast<const S*>(w), static_cast<S*>(y) + r * ldy, dim, eps);
  }
}

template <ElemType T>
__attribute__((always_inline)) inline void SiluMul(const void* g, int64_t ldg, void* y, int64_t ldy, int64_t rows,
                                                   int64_t inter) {
  using E = Elem<T>;
  using S = typename E::Store;
  for (int64_t r = 0; r < rows; ++r) {
    const S* gr = static_cast<const S*>(g) + r * ldg;
    const S* ur = gr + inter;
    S* yr = static_cast<S*>(y) + r * ldy;
#pragma omp simd
    for (int64_t i = 0; i < inter; ++i) {
      const float v = E::Load(gr[i]);
      yr[i] = E::Put(E::Round(v / (1.0f + FastExp(-v))) * E::Load(ur[i]));
    }
  }
}

template <ElemType T>
void Rope(const void* src, int64_t sts, int64_t shs, void* dst, int64_t dts, int64_t dhs, const float* cos,
          const float* sin, int64_t tokens, int64_t heads, int64_t half, bool interleaved) {
  using E = Elem<T>;
  using S = typename E::Store;
  // Per-thread scratch: calls from the pool's threads run concurrently, and a step makes many calls.
  thread_local std::vector<float> x1, x2;
  if (x1.size() < static_cast<size_t>(half)) {
    x1.resize(static_cast<size_t>(half));
    x2.resize(static_cast<size_t>(half));
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < heads; ++h) {
      const S* in = static_cast<const S*>(src) + t * sts + h * shs;
      S* out = static_cast<S*>(dst) + t * dts + h * dhs;
      // Read the whole head first: dst may alias src.
      if (interleaved) {
        for (int64_t i = 0; i < half; ++i) {
          x1[i] = E::Load(in[2 * i]);
          x2[i] = E::Load(in[2 * i + 1]);
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          x1[i] = E::Load(in[i]);
          x2[i] = E::Load(in[half + i]);
        }
      }
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        out[i] = E::Put(x1[i] * c[i] - x2[i] * s[i]);
        out[half + i] = E::Put(x2[i] * c[i] + x1[i] * s[i]);
      }
    }
  }
}

}  // namespace

void RmsNormRows(const void* x, int64_t ldx, const void* w, void* y, int64_t ldy, ElemType type, int64_t rows,
                 int64_t dim, float eps) {
  if (type == ElemType::kFloat32) {
    Norm<ElemType::kFloat32>(x, ldx, w, y, ldy, rows, dim, eps);
  } else {
    Norm<ElemType::kBFloat16>(x, ldx, w, y, ldy, rows, dim, eps);
  }
}

void AddRmsNormRows(void* hidden, int64_t ldh, const void* delta, int64_t ldd, const void* w, void* y, int64_t ldy,
                    ElemType type, int64_t rows, int64_t dim, float eps) {
  if (type == ElemType::kFloat32) {
    AddNorm<ElemType::kFloat32>(hidden, ldh, delta, ldd, w, y, ldy, rows, dim, eps);
  } else {
    AddNorm<ElemType::kBFloat16>(hidden, ldh, delta, ldd, w, y, ldy, rows, dim, eps);
  }
}

// Cloned per ISA: the exp polynomial is most of this loop's work and vectorises with the vector width.
__attribute__((target_clones("avx512f", "avx2", "default"))) void SiluMulRows(const void* gate_up, int64_t ldg, void* y,
                                                                              int64_t ldy, ElemType type, int64_t rows,
                                                                              int64_t inter) {
  if (type == ElemType::kFloat32) {
    SiluMul<ElemType::kFloat32>(gate_up, ldg, y, ldy, rows, inter);
  } else {
    SiluMul<ElemType::kBFloat16>(gate_up, ldg, y, ldy, rows, inter);
  }
}

void RopeRows(const void* src, int64_t sts, int64_t shs, void* dst, int64_t dts, int64_t dhs, const float* cos,
              const float* sin, ElemType type, int64_t tokens, int64_t heads, int64_t half, bool interleaved) {
  if (type == ElemType::kFloat32) {
    Rope<ElemType::kFloat32>(src, sts, shs, dst, dts, dhs, cos, sin, tokens, heads, half, interleaved);
  } else {
    Rope<ElemType::kBFloat16>(src, sts, shs, dst, dts, dhs, cos, sin, tokens, heads, half, interleaved);
  }
}

void CopyRowsToSlots(const void* src, int64_t src_row_stride_bytes, void* dst, int64_t dst_row_stride_bytes,
                     const int64_t* slots, int64_t rows, int64_t row_bytes) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(static_cast<char*>(dst) + slots[r] * dst_row_stride_bytes,
                static_cast<const char*>(src) + r * src_row_stride_bytes, static_cast<size_t>(row_bytes));
  }
}

}  // namespace inferd::kernels::cpu
