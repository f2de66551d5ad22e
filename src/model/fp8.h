// Blockwise float8 weights in DeepSeek-V3's release format: an F8_E4M3 weight [rows, cols] and a float
// `weight_scale_inv` [ceil(rows/block), ceil(cols/block)]; the real weight is fp8 * scale_inv per block
// (the last row/column blocks may be partial).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace inferd::model {

inline constexpr int64_t kFp8BlockSize = 128;

// Returns a new float32 tensor [rows, cols] = weight * scale_inv (expanded blockwise), on weight's device.
// weight: [rows, cols] Float8_e4m3fn (any float dtype is accepted); scale_inv: [ceil(rows/block),
// ceil(cols/block)] any float dtype, same device. Throws std::runtime_error naming `name` on a shape mismatch.
at::Tensor DequantizeFp8Blockwise(const at::Tensor& weight, const at::Tensor& scale_inv,
                                  const std::string& name, int64_t block = kFp8BlockSize);

}  // namespace inferd::model
