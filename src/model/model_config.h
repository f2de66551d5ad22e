// config.json -> ModelConfig: the validated architecture description every model file reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/moe.h"
#include "ops/rope.h"

namespace inferd::model {

enum class Architecture { kLlama, kDeepseekV2, kDeepseekV3 };

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  std::string arch_name;  // as in config.json "architectures"
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 4096;  // context limit (prompt + generated)
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;          // Llama: per-head q/k/v dim
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;
  ops::RopeParams rope;          // rotary_dim filled in (Llama: head_dim; MLA: qk_rope_head_dim)
  std::string rope_type = "default";

  // MLA (DeepSeek V2/V3).
  int64_t q_lora_rank = 0;       // 0 = plain q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool rope_interleave = true;   // DeepSeek rotates interleaved pairs
  double softmax_scale = 0.0;    // attention scale incl. yarn mscale^2 (MLA) or 1/sqrt(head_dim)

  // DeepSeekMoE.
  int64_t n_routed_experts = 0;  // 0 = dense model
  int64_t n_shared_experts = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  ops::MoeRoutingParams routing;

  bool IsMla() const { return arch != Architecture::kLlama; }
  // Layer i uses the MoE block (DeepSeek: n_routed_experts, i >= first_k_dense_replace, i % freq == 0).
  bool IsMoeLayer(int64_t layer) const;
};

// Parses `dir`/config.json. Throws std::runtime_error naming the field for anything missing, malformed or
// unsupported (unknown architecture, rope type, activation, scoring function, top-k method).
ModelConfig LoadModelConfig(const std::string& dir);
ModelConfig ParseModelConfig(const std::string& json_text);

}  // namespace inferd::model
