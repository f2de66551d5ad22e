// exp(x) for float32 in plain arithmetic that compilers vectorise inside `#pragma omp simd` loops
// (libm's expf is a call per element). Cephes' expf scheme: x = n ln2 + r with |r| <= ln2 / 2, a degree-6
// polynomial for e^r, 2^n by building the exponent bits. Relative error about 2e-7 (2 float32 ulps) over
// [-87.3, 88.3]; inputs are clamped to that range (results 1.2e-38 .. 2.1e38), NaN stays NaN.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace inferd::kernels::cpu {

// Vectorises only without -ftrapping-math (the kernels using it are compiled with -fno-trapping-math).
inline float FastExp(float in) {
  float x = in > -87.3f ? in : -87.3f;  // NaN too: the integer conversion below sees a finite value
  x = x < 88.3f ? x : 88.3f;
  const float fn = std::floor(x * 1.44269504088896341f + 0.5f);
  const int32_t n = static_cast<int32_t>(fn);
  const float r = (x - fn * 0.693359375f) - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float e = p * std::bit_cast<float>((n + 127) << 23);
  return in == in ? e : in;
}

}  // namespace inferd::kernels::cpu
