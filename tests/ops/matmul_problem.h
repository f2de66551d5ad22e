// Operands of one y[m, n] = x[m, k] w[n, k]^T (+ b) product for the CPU kernel tests (gemv_test, gemm_test),
// in float32 and bf16 storage, with a double-precision reference computed from the stored values.
#pragma once

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/gemv.h"

namespace inferd::kernels::cpu::testing {

inline uint16_t TruncBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}
inline float FromBf16(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// x rows strided (ldx = k + 3), y rows strided (ldy = n + 2); `ref` and `mag` are [m, n].
struct MatmulProblem {
  int64_t m, n, k, ldx, ldy;
  GemvType type;
  bool bias;
  std::vector<float> xf, wf, bf;     // float32 storage
  std::vector<uint16_t> xh, wh, bh;  // bf16 storage
  std::vector<double> ref, mag;      // sum x*w (+ b), sum |x*w| (+ |b|)

  MatmulProblem(int64_t m_, int64_t n_, int64_t k_, GemvType t, bool with_bias, uint32_t seed)
      : m(m_), n(n_), k(k_), ldx(k_ + 3), ldy(n_ + 2), type(t), bias(with_bias) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& f, std::vector<uint16_t>& h, size_t count) {
      f.resize(count);
      h.resize(count);
      for (size_t i = 0; i < count; ++i) {
        h[i] = TruncBf16(dist(gen));
        f[i] = t == GemvType::kBFloat16 ? FromBf16(h[i]) : dist(gen);
      }
    };
    fill(xf, xh, static_cast<size_t>(m * ldx));
    fill(wf, wh, static_cast<size_t>(n * k));
    fill(bf, bh, static_cast<size_t>(n));
    ref.assign(static_cast<size_t>(m * n), 0.0);
    mag.assign(static_cast<size_t>(m * n), 0.0);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = bias ? bf[static_cast<size_t>(j)] : 0.0, a = std::fabs(s);
        for (int64_t kk = 0; kk < k; ++kk) {
          const double p =
              static_cast<double>(xf[static_cast<size_t>(i * ldx + kk)]) * wf[static_cast<size_t>(j * k + kk)];
          s += p;
          a += std::fabs(p);
        }
        ref[static_cast<size_t>(i * n + j)] = s;
        mag[static_cast<size_t>(i * n + j)] = a;
      }
    }
  }

  GemvArgs Args(void* y) const {
    GemvArgs a;
    const bool h = type == GemvType::kBFloat16;
    a.x = h ? static_cast<const void*>(xh.data()) : xf.data();
    a.ldx = ldx;
    a.w = h ? static_cast<const void*>(wh.data()) : wf.data();
    a.type = type;
    a.y = y;
    a.ldy = ldy;
    a.bias = !bias ? nullptr : h ? static_cast<const void*>(bh.data()) : bf.data();
    a.m = m;
    a.n = n;
    a.k = k;
    return a;
  }

  // y as float [m][ldy] after fn(args) wrote it; initialised to -7 (columns past n must stay so).
  template <typename Fn>
  std::vector<float> RunWith(Fn fn) const {
    std::vector<float> yf(static_cast<size_t>(m * ldy), -7.0f);
    std::vector<uint16_t> yh(static_cast<size_t>(m * ldy), TruncBf16(-7.0f));
    const bool h = type == GemvType::kBFloat16;
    GemvArgs a = Args(h ? static_cast<void*>(yh.data()) : yf.data());
    fn(a);
    if (h)
      for (size_t i = 0; i < yh.size(); ++i) yf[i] = FromBf16(yh[i]);
    return yf;
  }

  // The same product for row i alone (one-row problem with the same x row and weights).
  template <typename P>
  static P RowOf(const P& all, int64_t i) {
    P one = all;
    one.m = 1;
    const size_t off = static_cast<size_t>(i * all.ldx);
    one.xf.assign(all.xf.begin() + static_cast<std::ptrdiff_t>(off),
                  all.xf.begin() + static_cast<std::ptrdiff_t>(off + all.ldx));
    one.xh.assign(all.xh.begin() + static_cast<std::ptrdiff_t>(off),
                  all.xh.begin() + static_cast<std::ptrdiff_t>(off + all.ldx));
    return one;
  }
};

// float32 accumulation of k products, in any order: error within about k * 2^-24 of sum |x*w| (each of at
// most k additions rounds by half an ulp of a partial sum no larger than sum |x*w|; products of bf16 values
// are exact in float32 and fused multiply-adds round once). Allowed: 2x that + 1e-6 relative. bf16 output
// adds one rounding, half an ulp (2^-9 relative; allowed 2^-8).
inline double Tolerance(const MatmulProblem& p, size_t idx) {
  const double acc = (1.2e-7 * static_cast<double>(p.k) + 1e-6) * p.mag[idx];
  return p.type == GemvType::kBFloat16 ? acc + std::ldexp(std::fabs(p.ref[idx]), -8) : acc;
}

}  // namespace inferd::kernels::cpu::testing
