// Rotary position embeddings: inverse frequencies for the scaling kinds of HF `rope_parameters`
// (default, linear, llama3, yarn) and application in neox (rotate-half) or interleaved-pair layout.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

namespace inferd::ops {

enum class RopeKind { kDefault, kLinear, kLlama3, kYarn };

struct RopeParams {
  RopeKind kind = RopeKind::kDefault;
  int64_t rotary_dim = 0;            // dims rotated per head (even)
  double theta = 10000.0;
  double factor = 1.0;               // linear / llama3 / yarn
  int64_t original_max_position = 0; // llama3 / yarn
  double low_freq_factor = 1.0;      // llama3
  double high_freq_factor = 4.0;     // llama3
  double beta_fast = 32.0;           // yarn
  double beta_slow = 1.0;            // yarn
  double mscale = 0.0;               // yarn (0 = unset)
  double mscale_all_dim = 0.0;       // yarn (0 = unset)
  double attention_factor = 0.0;     // yarn cos/sin scale; 0 = derive as transformers does
  bool truncate = true;              // yarn correction range rounding
};

// DeepSeek's yarn helper: 0.1 * m * ln(scale) + 1 for scale > 1, else 1.
double YarnGetMscale(double scale, double m);

// Inverse frequencies (float32, computed like transformers) and the cos/sin scale.
struct RopeTable {
  at::Tensor inv_freq;  // [rotary_dim / 2] float32
  double attention_scaling = 1.0;
};
RopeTable MakeRopeTable(const RopeParams& params, c10::Device device);

// Rotates x in place semantics-free (returns a new tensor of x's dtype). cos/sin are computed in float32.
// On CPU (float32/bfloat16, last dim contiguous) one raw kernel call (kernels/cpu/rowwise.*) computes it.
// interleaved=false: neox rotate-half on the last dim.
// interleaved=true: pairs (2i, 2i+1) rotate together (DeepSeek/GPT-J); the output is written in
// de-interleaved order [evens..., odds...] as transformers' DeepseekV3 does. Dot products between two
// tensors rotated the same way are identical to the interleaved form, so q and k must use the same flag.
at::Tensor ApplyRope(const at::Tensor& x,          // [num_tokens, heads, rotary_dim]
                     const at::Tensor& positions,  // [num_tokens] int64
                     const RopeTable& table, bool interleaved);

// cos/sin of positions x inv_freq (times attention_scaling), float32 [num_tokens, 1, rotary_dim / 2]: compute
// once per forward and reuse for every layer's q and k.
struct RopeCosSin {
  at::Tensor cos, sin;
};
RopeCosSin RopeCosSinFor(const at::Tensor& positions, const RopeTable& table);
at::Tensor ApplyRope(const at::Tensor& x, const RopeCosSin& cs, bool interleaved);  // same result as above

}  // namespace inferd::ops
