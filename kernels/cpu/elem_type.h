// Element types of the raw CPU kernels and their bf16 conversions (round to nearest even, as c10::BFloat16).
#pragma once

#include <cstdint>
#include <cstring>

namespace inferd::kernels::cpu {

enum class ElemType : int { kFloat32 = 0, kBFloat16 = 1 };

inline float Bf16ToFloat(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// NaN kept quiet. Branch-free, so loops over it vectorise.
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet = (bits >> 16) | 0x40u;
  return static_cast<uint16_t>((bits & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

}  // namespace inferd::kernels::cpu
