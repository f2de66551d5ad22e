#include "ops/rope.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/rowwise.h"
#include "ops/cuda_ops.h"
#include "ops/parallel.h"

namespace inferd::ops {

double YarnGetMscale(double scale, double m) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * m * std::log(scale) + 1.0;
}

RopeTable MakeRopeTable(const RopeParams& p, c10::Device device) {
  if (p.rotary_dim <= 0 || p.rotary_dim % 2 != 0) throw std::invalid_argument("rope: rotary_dim must be even and > 0");
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const int64_t dim = p.rotary_dim;
  // Same float32 arithmetic as transformers: base ** (arange(0, dim, 2).float() / dim).
  at::Tensor exponents = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong).device(device)).to(at::kFloat) /
                         static_cast<double>(dim);
  at::Tensor pos_freqs = at::pow(at::scalar_tensor(p.theta, f32), exponents);
  RopeTable table;
  switch (p.kind) {
    case RopeKind::kDefault:
      table.inv_freq = 1.0 / pos_freqs;
      break;
    case RopeKind::kLinear:
      table.inv_freq = (1.0 / pos_freqs) / p.factor;
      break;
    case RopeKind::kLlama3: {
      at::Tensor inv_freq = 1.0 / pos_freqs;
      const double old_ctx = static_cast<double>(p.original_max_position);
      const double low_wavelen = old_ctx / p.low_freq_factor;
      const double high_wavelen = old_ctx / p.high_freq_factor;
      at::Tensor wavelen = 2 * M_PI / inv_freq;
      at::Tensor llama = at::where(wavelen > low_wavelen, inv_freq / p.factor, inv_freq);
      at::Tensor smooth = (old_ctx / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
      at::Tensor smoothed = (1 - smooth) * llama / p.factor + smooth * llama;
      at::Tensor medium = at::logical_not(wavelen < high_wavelen).logical_and(at::logical_not(wavelen > low_wavelen));
      table.inv_freq = at::where(medium, smoothed, llama);
      break;
    }
    case RopeKind::kYarn: {
      auto get_mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
      double attention_factor = p.attention_factor;
      if (attention_factor == 0.0) {
        attention_factor = (p.mscale != 0.0 && p.mscale_all_dim != 0.0)
                               ? get_mscale(p.factor, p.mscale) / get_mscale(p.factor, p.mscale_all_dim)
                               : get_mscale(p.factor, 1.0);
      }
      auto correction_dim = [&](double rotations) {
        return (dim * std::log(p.original_max_position / (rotations * 2 * M_PI))) / (2 * std::log(p.theta));
      };
      double low = correction_dim(p.beta_fast);
      double high = correction_dim(p.beta_slow);
      if (p.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      at::Tensor ramp = ((at::arange(dim / 2, f32) - low) / (high - low)).clamp(0, 1);
      at::Tensor extrapolation_factor = 1 - ramp;
      at::Tensor inv_extra = 1.0 / pos_freqs;
      at::Tensor inv_inter = 1.0 / (p.factor * pos_freqs);
      table.inv_freq = inv_inter * (1 - extrapolation_factor) + inv_extra * extrapolation_factor;
      table.attention_scaling = attention_factor;
      break;
    }
  }
  table.inv_freq = table.inv_freq.contiguous();
  return table;
}

RopeCosSin RopeCosSinFor(const at::Tensor& positions, const RopeTable& table) {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(1) * table.inv_freq.unsqueeze(0);  // [T, half]
  at::Tensor cos = freqs.cos();
  at::Tensor sin = freqs.sin();
  if (table.attention_scaling != 1.0) {
    cos = cos * table.attention_scaling;
    sin = sin * table.attention_scaling;
  }
  return {cos.unsqueeze(1), sin.unsqueeze(1)};  // [T, 1, half]
}

at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& positions, const RopeTable& table, bool interleaved) {
  TORCH_CHECK(table.inv_freq.size(0) == x.size(-1) / 2, "rope: rotary dim ", x.size(-1), " does not match table ",
              2 * table.inv_freq.size(0));
  return ApplyRope(x, RopeCosSinFor(positions, table), interleaved);
}

at::Tensor ApplyRope(const at::Tensor& x, const RopeCosSin& cs, bool interleaved) {
  const int64_t dim = x.size(-1);
  const int64_t half = dim / 2;
  TORCH_CHECK(cs.cos.size(-1) == half, "rope: rotary dim ", dim, " does not match table ", 2 * cs.cos.size(-1));
  if (x.is_cuda()) return CudaApplyRope(x, cs, interleaved);
  const at::Tensor& cos = cs.cos;
  const at::Tensor& sin = cs.sin;
  const auto t = x.scalar_type();
  if (x.device().is_cpu() && x.dim() == 3 && x.stride(2) == 1 && (t == at::kFloat || t == at::kBFloat16) &&
      cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat && cos.is_contiguous() &&
      sin.is_contiguous() && cos.numel() == x.size(0) * half && sin.numel() == cos.numel()) {
    at::Tensor out = at::empty(x.sizes(), x.options());
    const int64_t es = static_cast<int64_t>(x.element_size());
    const char* xp = static_cast<const char*>(x.data_ptr());
    char* op = static_cast<char*>(out.data_ptr());
    ParallelRows(x.size(0), x.size(1) * dim, [&](int64_t b, int64_t e) {
      kernels::cpu::RopeRows(xp + b * x.stride(0) * es, x.stride(0), x.stride(1), op + b * out.stride(0) * es,
                             out.stride(0), out.stride(1), cos.data_ptr<float>() + b * half,
                             sin.data_ptr<float>() + b * half,
                             t == at::kFloat ? kernels::cpu::ElemType::kFloat32 : kernels::cpu::ElemType::kBFloat16,
                             e - b, x.size(1), half, interleaved);
    });
    return out;
  }
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor x1, x2;
  if (interleaved) {
    at::Tensor pairs = xf.reshape({x.size(0), x.size(1), half, 2});
    x1 = pairs.select(-1, 0);
    x2 = pairs.select(-1, 1);
  } else {
    x1 = xf.narrow(-1, 0, half);
    x2 = xf.narrow(-1, half, half);
  }
  at::Tensor out = at::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
  return out.to(x.scalar_type());
}

}  // namespace inferd::ops
