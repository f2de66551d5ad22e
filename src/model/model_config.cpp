#include "model/model_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace inferd::model {
namespace {

using nlohmann::json;

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error("config.json: " + what); }

bool Present(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

int64_t GetInt(const json& j, const char* key) {
  if (!Present(j, key)) Fail(std::string("missing required field '") + key + "'");
  if (!j.at(key).is_number_integer()) Fail(std::string("field '") + key + "' must be an integer");
  return j.at(key).get<int64_t>();
}
int64_t GetInt(const json& j, const char* key, int64_t def) { return Present(j, key) ? GetInt(j, key) : def; }
double GetDouble(const json& j, const char* key, double def) {
  if (!Present(j, key)) return def;
  if (!j.at(key).is_number()) Fail(std::string("field '") + key + "' must be a number");
  return j.at(key).get<double>();
}
bool GetBool(const json& j, const char* key, bool def) {
  if (!Present(j, key)) return def;
  if (!j.at(key).is_boolean()) Fail(std::string("field '") + key + "' must be a boolean");
  return j.at(key).get<bool>();
}
std::string GetString(const json& j, const char* key, const std::string& def) {
  if (!Present(j, key)) return def;
  if (!j.at(key).is_string()) Fail(std::string("field '") + key + "' must be a string");
  return j.at(key).get<std::string>();
}

void ParseRope(const json& j, ModelConfig& c) {
  // transformers 5 writes `rope_parameters` (with rope_theta inside); older configs `rope_scaling` + `rope_theta`.
  json rp = json::object();
  if (Present(j, "rope_parameters")) {
    rp = j.at("rope_parameters");
  } else if (Present(j, "rope_scaling")) {
    rp = j.at("rope_scaling");
  }
  if (!rp.is_object()) Fail("rope_parameters/rope_scaling must be an object");
  c.rope.theta = GetDouble(rp, "rope_theta", GetDouble(j, "rope_theta", 10000.0));
  std::string type = GetString(rp, "rope_type", GetString(rp, "type", "default"));
  c.rope_type = type;
  const int64_t max_pos = GetInt(j, "max_position_embeddings", 0);
  if (type == "default") {
    c.rope.kind = ops::RopeKind::kDefault;
  } else if (type == "linear") {
    c.rope.kind = ops::RopeKind::kLinear;
    c.rope.factor = GetDouble(rp, "factor", 0.0);
    if (c.rope.factor <= 0) Fail("rope 'linear' needs a positive 'factor'");
  } else if (type == "llama3") {
    c.rope.kind = ops::RopeKind::kLlama3;
    c.rope.factor = GetDouble(rp, "factor", 0.0);
    c.rope.low_freq_factor = GetDouble(rp, "low_freq_factor", 1.0);
    c.rope.high_freq_factor = GetDouble(rp, "high_freq_factor", 4.0);
    c.rope.original_max_position = GetInt(rp, "original_max_position_embeddings", max_pos);
    if (c.rope.factor <= 0 || c.rope.original_max_position <= 0) {
      Fail("rope 'llama3' needs 'factor' and 'original_max_position_embeddings'");
    }
  } else if (type == "yarn") {
    c.rope.kind = ops::RopeKind::kYarn;
    c.rope.original_max_position = GetInt(rp, "original_max_position_embeddings", 0);
    if (c.rope.original_max_position <= 0) Fail("rope 'yarn' needs 'original_max_position_embeddings'");
    c.rope.factor = GetDouble(rp, "factor", 0.0);
    if (c.rope.factor <= 0) c.rope.factor = static_cast<double>(max_pos) / c.rope.original_max_position;
    c.rope.beta_fast = GetDouble(rp, "beta_fast", 32.0);
    c.rope.beta_slow = GetDouble(rp, "beta_slow", 1.0);
    if (c.rope.beta_fast == 0) c.rope.beta_fast = 32.0;
    if (c.rope.beta_slow == 0) c.rope.beta_slow = 1.0;
    c.rope.mscale = GetDouble(rp, "mscale", 0.0);
    c.rope.mscale_all_dim = GetDouble(rp, "mscale_all_dim", 0.0);
    c.rope.attention_factor = GetDouble(rp, "attention_factor", 0.0);
    c.rope.truncate = GetBool(rp, "truncate", true);
  } else {
    Fail("unsupported rope type '" + type + "' (supported: default, linear, llama3, yarn)");
  }
}

std::vector<int32_t> ParseTokenIds(const json& j, const char* key) {
  std::vector<int32_t> ids;
  if (!Present(j, key)) return ids;
  const json& v = j.at(key);
  if (v.is_number_integer()) {
    ids.push_back(v.get<int32_t>());
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_number_integer()) Fail(std::string("field '") + key + "' must hold integers");
      ids.push_back(e.get<int32_t>());
    }
  } else {
    Fail(std::string("field '") + key + "' must be an integer or a list of integers");
  }
  return ids;
}

void ParseDeepseek(const json& j, ModelConfig& c) {
  c.q_lora_rank = GetInt(j, "q_lora_rank", 0);
  c.kv_lora_rank = GetInt(j, "kv_lora_rank");
  c.qk_nope_head_dim = GetInt(j, "qk_nope_head_dim");
  c.qk_rope_head_dim = GetInt(j, "qk_rope_head_dim");
  c.v_head_dim = GetInt(j, "v_head_dim");
  // transformers' DeepseekV2 always rotates interleaved pairs; V3 follows `rope_interleave` (default true).
  c.rope_interleave = c.arch == Architecture::kDeepseekV2 ? true : GetBool(j, "rope_interleave", true);
  c.rope.rotary_dim = c.qk_rope_head_dim;
  c.softmax_scale = 1.0 / std::sqrt(static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim));
  if (c.rope.kind == ops::RopeKind::kYarn && c.rope.mscale_all_dim != 0.0) {
    const double m = ops::YarnGetMscale(c.rope.factor, c.rope.mscale_all_dim);
    c.softmax_scale *= m * m;
  }

  c.n_routed_experts = GetInt(j, "n_routed_experts", 0);
  if (c.n_routed_experts > 0) {
    c.n_shared_experts = GetInt(j, "n_shared_experts", 0);
    c.moe_intermediate_size = GetInt(j, "moe_intermediate_size");
    c.first_k_dense_replace = GetInt(j, "first_k_dense_replace", 0);
    c.moe_layer_freq = GetInt(j, "moe_layer_freq", 1);
    if (c.moe_layer_freq <= 0) Fail("field 'moe_layer_freq' must be positive");
    auto& r = c.routing;
    r.top_k = GetInt(j, "num_experts_per_tok");
    if (r.top_k <= 0 || r.top_k > c.n_routed_experts) Fail("field 'num_experts_per_tok' out of range");
    const bool v3 = c.arch == Architecture::kDeepseekV3;
    const std::string scoring = GetString(j, "scoring_func", v3 ? "sigmoid" : "softmax");
    if (scoring == "softmax") {
      r.scoring = ops::MoeScoring::kSoftmax;
    } else if (scoring == "sigmoid") {
      r.scoring = ops::MoeScoring::kSigmoid;
    } else {
      Fail("unsupported scoring_func '" + scoring + "' (softmax, sigmoid)");
    }
    const std::string method = GetString(j, "topk_method", v3 ? "noaux_tc" : "greedy");
    if (method == "greedy") {
      r.method = ops::MoeTopkMethod::kGreedy;
    } else if (method == "group_limited_greedy") {
      r.method = ops::MoeTopkMethod::kGroupLimitedGreedy;
    } else if (method == "noaux_tc") {
      r.method = ops::MoeTopkMethod::kNoauxTc;
    } else {
      Fail("unsupported topk_method '" + method + "' (greedy, group_limited_greedy, noaux_tc)");
    }
    r.n_group = GetInt(j, "n_group", 1);
    r.topk_group = GetInt(j, "topk_group", 1);
    if (r.method != ops::MoeTopkMethod::kGreedy) {
      if (r.n_group <= 0 || c.n_routed_experts % r.n_group != 0) Fail("'n_group' must divide 'n_routed_experts'");
      if (r.topk_group <= 0 || r.topk_group > r.n_group) Fail("'topk_group' must be in [1, n_group]");
      if (r.method == ops::MoeTopkMethod::kNoauxTc && c.n_routed_experts / r.n_group < 2) {
        Fail("noaux_tc needs at least 2 experts per group");
      }
    }
    // transformers' DeepseekV2 ignores norm_topk_prob (weights are always scores * routed_scaling_factor);
    // DeepseekV3 renormalises then scales. Both are followed so logits match the reference.
    r.norm_topk_prob = v3 ? GetBool(j, "norm_topk_prob", false) : false;
    r.routed_scaling_factor = GetDouble(j, "routed_scaling_factor", 1.0);
  }
}

}  // namespace

bool ModelConfig::IsMoeLayer(int64_t layer) const {
  return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
}

ModelConfig ParseModelConfig(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    Fail(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) Fail("top level must be an object");
  ModelConfig c;
  if (!Present(j, "architectures") || !j.at("architectures").is_array() || j.at("architectures").empty() ||
      !j.at("architectures")[0].is_string()) {
    Fail("missing 'architectures'");
  }
  c.arch_name = j.at("architectures")[0].get<std::string>();
  if (c.arch_name == "LlamaForCausalLM") {
    c.arch = Architecture::kLlama;
  } else if (c.arch_name == "DeepseekV2ForCausalLM") {
    c.arch = Architecture::kDeepseekV2;
  } else if (c.arch_name == "DeepseekV3ForCausalLM") {
    c.arch = Architecture::kDeepseekV3;
  } else {
    Fail("unsupported architecture '" + c.arch_name +
         "' (supported: LlamaForCausalLM, DeepseekV2ForCausalLM, DeepseekV3ForCausalLM)");
  }
  c.vocab_size = GetInt(j, "vocab_size");
  c.max_position_embeddings = GetInt(j, "max_position_embeddings", 4096);
  c.hidden_size = GetInt(j, "hidden_size");
  c.intermediate_size = GetInt(j, "intermediate_size");
  c.num_layers = GetInt(j, "num_hidden_layers");
  c.num_heads = GetInt(j, "num_attention_heads");
  c.num_kv_heads = GetInt(j, "num_key_value_heads", c.num_heads);
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0) {
    Fail("vocab_size, hidden_size, num_hidden_layers and head counts must be positive");
  }
  if (c.num_heads % c.num_kv_heads != 0) Fail("num_attention_heads must be a multiple of num_key_value_heads");
  c.head_dim = GetInt(j, "head_dim", c.hidden_size / c.num_heads);
  c.rms_norm_eps = GetDouble(j, "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = GetBool(j, "tie_word_embeddings", false);
  c.attention_bias = GetBool(j, "attention_bias", false);
  c.mlp_bias = GetBool(j, "mlp_bias", false);
  const std::string act = GetString(j, "hidden_act", "silu");
  if (act != "silu") Fail("unsupported hidden_act '" + act + "' (silu)");
  c.eos_token_ids = ParseTokenIds(j, "eos_token_id");
  auto bos = ParseTokenIds(j, "bos_token_id");
  if (!bos.empty()) c.bos_token_id = bos[0];
  ParseRope(j, c);
  if (c.arch == Architecture::kLlama) {
    if (c.mlp_bias) Fail("mlp_bias=true is not supported");
    c.rope.rotary_dim = c.head_dim;
    c.softmax_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  } else {
    if (c.attention_bias) Fail("attention_bias=true is not supported for DeepSeek MLA");
    ParseDeepseek(j, c);
  }
  return c;
}

ModelConfig LoadModelConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return ParseModelConfig(ss.str());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(dir + "/" + e.what());
  }
}

}  // namespace inferd::model
