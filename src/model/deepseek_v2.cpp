// DeepseekV2ForCausalLM and DeepseekV3ForCausalLM: MLA attention (latent KV cache, absorbed weights for
// decode) and DeepSeekMoE (shared + routed experts, softmax/sigmoid scoring, greedy/group-limited/noaux_tc).
// The multi-token-prediction layers (model.layers.{n >= num_hidden_layers}) are not loaded.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/weights.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/moe.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace inferd::model {
namespace {

constexpr double kLoraNormEps = 1e-6;  // q_a_layernorm / kv_a_layernorm

struct MlaWeights {
  at::Tensor w_q;          // [heads * qk_head_dim, hidden] (no q_lora) or undefined
  at::Tensor w_q_a;        // [q_lora_rank, hidden]
  at::Tensor q_a_norm;     // [q_lora_rank]
  at::Tensor w_q_b;        // [heads * qk_head_dim, q_lora_rank]
  at::Tensor w_kv_a;       // [kv_lora_rank + rope_dim, hidden]
  at::Tensor kv_a_norm;    // [kv_lora_rank]
  at::Tensor w_kv_b;       // [heads * (nope_dim + v_dim), kv_lora_rank]
  at::Tensor w_uk;         // [heads, kv_lora_rank, nope_dim]  (absorbed into q for decode: q_lat = q_nope w_uk^T)
  at::Tensor w_uv;         // [heads, v_dim, kv_lora_rank]     (after latent attention: o = o_lat w_uv^T)
  at::Tensor w_o;          // [hidden, heads * v_dim]
};

struct MlpWeights {
  at::Tensor w_gate_up;  // [2 * inter, hidden]
  at::Tensor w_down;     // [hidden, inter]
};

struct MoeWeights {
  at::Tensor gate;               // [experts, hidden] float32
  at::Tensor bias;               // [experts] float32 (noaux_tc) or undefined
  std::vector<at::Tensor> w_gate_up;  // [experts] of [2 * moe_inter, hidden]; views of the checkpoint where it allows
  std::vector<at::Tensor> w_down;     // [experts] of [hidden, moe_inter]
  MlpWeights shared;             // undefined tensors when n_shared_experts == 0
};

struct DeepseekLayer {
  at::Tensor input_norm;  // [hidden]
  at::Tensor post_norm;   // [hidden]
  MlaWeights attn;
  bool moe = false;
  MlpWeights mlp;
  MoeWeights experts;
};

class DeepseekModel final : public Model {
 public:
  DeepseekModel(const ModelConfig& config, const SafetensorsCheckpoint& ckpt, c10::ScalarType dtype,
                c10::Device device)
      : Model(dtype, device), config_(config) {
    const ModelConfig& c = config_;
    WeightLoader w(ckpt, dtype, device);
    const int64_t h = c.hidden_size, nh = c.num_heads;
    const int64_t qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
    embed_ = w.Load("model.embed_tokens.weight", {c.vocab_size, h});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      DeepseekLayer l;
      l.input_norm = w.Load(p + "input_layernorm.weight", {h});
      l.post_norm = w.Load(p + "post_attention_layernorm.weight", {h});
      MlaWeights& a = l.attn;
      const std::string ap = p + "self_attn.";
      if (c.q_lora_rank > 0) {
        a.w_q_a = w.Load(ap + "q_a_proj.weight", {c.q_lora_rank, h});
        a.q_a_norm = w.Load(ap + "q_a_layernorm.weight", {c.q_lora_rank});
        a.w_q_b = w.Load(ap + "q_b_proj.weight", {nh * qk, c.q_lora_rank});
      } else {
        a.w_q = w.Load(ap + "q_proj.weight", {nh * qk, h});
      }
      a.w_kv_a = w.Load(ap + "kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, h});
      a.kv_a_norm = w.Load(ap + "kv_a_layernorm.weight", {c.kv_lora_rank});
      a.w_kv_b = w.Load(ap + "kv_b_proj.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank});
      at::Tensor kv_b = a.w_kv_b.view({nh, c.qk_nope_head_dim + c.v_head_dim, c.kv_lora_rank});
      a.w_uk = kv_b.narrow(1, 0, c.qk_nope_head_dim).transpose(1, 2).contiguous();
      a.w_uv = kv_b.narrow(1, c.qk_nope_head_dim, c.v_head_dim).contiguous();
      a.w_o = w.Load(ap + "o_proj.weight", {h, nh * c.v_head_dim});
      l.moe = c.IsMoeLayer(i);
      if (l.moe) {
        LoadMoe(w, p + "mlp.", l.experts);
      } else {
        l.mlp = LoadMlpShaped(w, p + "mlp.", c.intermediate_size);
      }
      layers_.push_back(std::move(l));
    }
    norm_ = w.Load("model.norm.weight", {h});
    if (c.tie_word_embeddings) {
      lm_head_ = embed_;
    } else {
      lm_head_ = w.Load("lm_head.weight", {c.vocab_size, h});
    }
    const int64_t num_layers = c.num_layers;
    w.CheckAllConsumed([num_layers](const std::string& name) {
      if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;
      // Multi-token-prediction layers sit after the decoder layers; they are not part of this forward.
      const std::string prefix = "model.layers.";
      if (name.rfind(prefix, 0) == 0) return std::atoll(name.c_str() + prefix.size()) >= num_layers;
      return false;
    });
    rope_ = ops::MakeRopeTable(c.rope, device);
  }

  const ModelConfig& config() const override { return config_; }

  std::vector<at::Tensor> Weights() const override {
    std::vector<at::Tensor> out = {embed_, norm_, lm_head_, rope_.inv_freq};
    auto mlp = [&](const MlpWeights& m) {
      out.push_back(m.w_gate_up);
      out.push_back(m.w_down);
    };
    for (const DeepseekLayer& l : layers_) {
      const MlaWeights& a = l.attn;
      for (const at::Tensor* t : {&l.input_norm, &l.post_norm, &a.w_q, &a.w_q_a, &a.q_a_norm, &a.w_q_b, &a.w_kv_a,
                                  &a.kv_a_norm, &a.w_kv_b, &a.w_uk, &a.w_uv, &a.w_o}) {
        out.push_back(*t);
      }
      mlp(l.mlp);
      out.push_back(l.experts.gate);
      out.push_back(l.experts.bias);
      for (const auto* experts : {&l.experts.w_gate_up, &l.experts.w_down}) {
        out.insert(out.end(), experts->begin(), experts->end());
      }
      mlp(l.experts.shared);
    }
    return out;
  }

  KvCache AllocateKvCache(int64_t num_blocks, int64_t block_size) const override {
    KvCache cache;
    cache.num_blocks = num_blocks;
    cache.block_size = block_size;
    const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
    for (int64_t i = 0; i < config_.num_layers; ++i) {
      cache.k.push_back(at::zeros({num_blocks, block_size, 1, config_.kv_lora_rank + config_.qk_rope_head_dim}, opts));
    }
    return cache;
  }

  int64_t KvBytesPerBlock(int64_t block_size) const override {
    return config_.num_layers * block_size * (config_.kv_lora_rank + config_.qk_rope_head_dim) *
           static_cast<int64_t>(c10::elementSize(dtype_));
  }

  at::Tensor Forward(const ForwardInputs& in, KvCache& cache) override {
    const ModelConfig& c = config_;
    at::Tensor hidden = at::embedding(embed_, in.token_ids);  // [T, hidden]
    const ops::RopeCosSin cs = ops::RopeCosSinFor(in.positions, rope_);
    // hidden is this forward's own tensor: the residual adds update it in place, fused with the next norm.
    at::Tensor x = c.num_layers > 0 ? ops::RmsNorm(hidden, layers_[0].input_norm, c.rms_norm_eps) : hidden;
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const DeepseekLayer& l = layers_[i];
      x = ops::AddRmsNorm(hidden, Attention(in, cs, cache.k[i], l.attn, x), l.post_norm, c.rms_norm_eps);
      at::Tensor mlp = l.moe ? Moe(l.experts, x) : Mlp(l.mlp, x);
      if (i + 1 < c.num_layers) {
        x = ops::AddRmsNorm(hidden, mlp, layers_[i + 1].input_norm, c.rms_norm_eps);
      } else {
        hidden.add_(mlp);
      }
    }
    at::Tensor last = ops::RmsNorm(hidden.index_select(0, in.logits_rows), norm_, c.rms_norm_eps);
    return ops::Linear(last, lm_head_).to(at::kFloat);
  }

 private:
  MlpWeights LoadMlpShaped(WeightLoader& w, const std::string& p, int64_t inter) const {
    const int64_t h = config_.hidden_size;
    MlpWeights m;
    m.w_gate_up = w.LoadRows({{p + "gate_proj.weight", {inter, h}}, {p + "up_proj.weight", {inter, h}}});
    m.w_down = w.Load(p + "down_proj.weight", {h, inter});
    return m;
  }

  void LoadMoe(WeightLoader& w, const std::string& p, MoeWeights& m) const {
    const ModelConfig& c = config_;
    const int64_t h = c.hidden_size, e = c.n_routed_experts, inter = c.moe_intermediate_size;
    // transformers upcasts the (model-dtype) gate weight to float32 for routing.
    m.gate = w.Load(p + "gate.weight", {e, h}).to(at::kFloat);
    if (c.routing.method == ops::MoeTopkMethod::kNoauxTc) {
      m.bias = w.Load(p + "gate.e_score_correction_bias", {e}, at::kFloat);
    }
    if (w.Has(p + "experts.gate_up_proj")) {
      // transformers 5 fused layout.
      m.w_gate_up = w.Load(p + "experts.gate_up_proj", {e, 2 * inter, h}).unbind(0);
      m.w_down = w.Load(p + "experts.down_proj", {e, h, inter}).unbind(0);
    } else {
      // Per-expert tensors: views of the mapping wherever each expert's gate and up lie back to back (any
      // shard, any order of experts), else copies.
      for (int64_t j = 0; j < e; ++j) {
        const std::string ep = p + "experts." + std::to_string(j) + ".";
        m.w_gate_up.push_back(w.LoadRows({{ep + "gate_proj.weight", {inter, h}}, {ep + "up_proj.weight", {inter, h}}}));
        m.w_down.push_back(w.Load(ep + "down_proj.weight", {h, inter}));
      }
    }
    if (c.n_shared_experts > 0) m.shared = LoadMlpShaped(w, p + "shared_experts.", inter * c.n_shared_experts);
  }

  static at::Tensor Mlp(const MlpWeights& m, const at::Tensor& x) {
    return ops::Linear(ops::SiluAndMul(ops::Linear(x, m.w_gate_up)), m.w_down);
  }

  at::Tensor Moe(const MoeWeights& m, const at::Tensor& x) const {
    at::Tensor logits = ops::Linear(x.to(at::kFloat), m.gate);  // [T, experts] float32
    auto [ids, weights] = ops::MoeRoute(logits, m.bias, config_.routing);
    return ops::MoeExperts(x, m.w_gate_up, m.w_down, ids, weights, m.shared.w_gate_up, m.shared.w_down);
  }

  // MLA. Cache row per token: [normalised latent (kv_lora_rank) | rotated rope key (rope_dim)].
  at::Tensor Attention(const ForwardInputs& in, const ops::RopeCosSin& cs, at::Tensor& cache, const MlaWeights& a,
                       const at::Tensor& x) {
    const ModelConfig& c = config_;
    const int64_t t = x.size(0), nh = c.num_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
    const int64_t dv = c.v_head_dim, r = c.kv_lora_rank;
    at::Tensor q = a.w_q.defined()
                       ? ops::Linear(x, a.w_q)
                       : ops::Linear(ops::RmsNorm(ops::Linear(x, a.w_q_a), a.q_a_norm, kLoraNormEps), a.w_q_b);
    q = q.view({t, nh, dn + dr});
    at::Tensor q_nope = q.narrow(2, 0, dn);
    at::Tensor q_pe = ops::ApplyRope(q.narrow(2, dn, dr), cs, c.rope_interleave);
    at::Tensor kv_a = ops::Linear(x, a.w_kv_a);  // [T, r + dr]
    at::Tensor latent = ops::RmsNorm(kv_a.narrow(1, 0, r), a.kv_a_norm, kLoraNormEps);
    at::Tensor k_pe = ops::ApplyRope(kv_a.narrow(1, r, dr).reshape({t, 1, dr}), cs, c.rope_interleave);
    at::Tensor rows = at::cat({latent, k_pe.view({t, dr})}, 1);  // [T, r + dr]
    at::Tensor cache_flat = cache.view({-1, r + dr});
    ops::WriteCacheRows(cache_flat, in.slot_mapping, rows);

    if (in.decode_only) {  // every token is a decode: rows are already in kernel order
      return ops::Linear(AbsorbedDecode(in, cache, a, q_nope, q_pe).reshape({t, nh * dv}), a.w_o);
    }
    at::Tensor out = at::empty({t, nh, dv}, x.options());
    if (in.decode_rows.numel() > 0) {
      out.index_copy_(0, in.decode_rows,
                      AbsorbedDecode(in, cache, a, q_nope.index_select(0, in.decode_rows),
                                     q_pe.index_select(0, in.decode_rows)));
    }
    for (int64_t s : in.prefill_seqs) {
      const SeqSlice& seq = in.seqs[s];
      at::Tensor q_nope_s = q_nope.narrow(0, seq.token_begin, seq.num_tokens);
      at::Tensor q_pe_s = q_pe.narrow(0, seq.token_begin, seq.num_tokens);
      at::Tensor dst = out.narrow(0, seq.token_begin, seq.num_tokens);
      if (seq.start_pos > 0) {
        // A later chunk: absorbed attention over the cached latent rows (prefix and this chunk), so kv_b_proj
        // is never recomputed over the prefix.
        at::Tensor cached = cache_flat.index_select(0, SeqSlots(in, s, seq.start_pos + seq.num_tokens));
        dst.copy_(AbsorbedPrefill(cached, a, q_nope_s, q_pe_s, seq.start_pos));
        continue;
      }
      at::Tensor seq_rows = rows.narrow(0, seq.token_begin, seq.num_tokens).to(cache.scalar_type());
      const int64_t nk = seq_rows.size(0);
      at::Tensor kv = ops::Linear(seq_rows.narrow(1, 0, r).to(x.scalar_type()), a.w_kv_b).view({nk, nh, dn + dv});
      at::Tensor k_full = at::cat(
          {kv.narrow(2, 0, dn), seq_rows.narrow(1, r, dr).to(x.scalar_type()).unsqueeze(1).expand({nk, nh, dr})}, 2);
      at::Tensor q_full = at::cat({q_nope_s, q_pe_s}, 2);
      dst.copy_(ops::PrefillAttention(q_full, k_full, kv.narrow(2, dn, dv), seq.start_pos, c.softmax_scale));
    }
    return ops::Linear(out.reshape({t, nh * dv}), a.w_o);
  }

  // Absorbed MLA decode: q_lat = q_nope W_UK, attention over the latent rows (MQA, one kv head), then W_UV.
  at::Tensor AbsorbedDecode(const ForwardInputs& in, const at::Tensor& cache, const MlaWeights& a,
                            const at::Tensor& q_nope,  // [B, H, dn] (decode rows only)
                            const at::Tensor& q_pe) const {  // [B, H, dr]
    const int64_t r = config_.kv_lora_rank;
    at::Tensor q_lat = ops::HeadLinear(q_nope, a.w_uk);  // [B, H, r]
    at::Tensor qd = at::cat({q_lat, q_pe}, 2);           // [B, H, r + dr]
    at::Tensor o_lat = ops::PagedDecodeAttention(qd, cache, cache.narrow(3, 0, r), in.decode_block_tables,
                                                 in.decode_context_lens, config_.softmax_scale);  // [B, H, r]
    return ops::HeadLinear(o_lat, a.w_uv);  // [B, H, dv]
  }

  // Absorbed MLA prefill of a chunk at start_pos > 0: queries [T, H, r + dr] = [q_nope W_UK | q_pe] attend
  // causally (query t at start_pos + t) to the cached rows [start_pos + T, r + dr] as one shared kv head
  // (K = the whole row, V = its latent part), then W_UV. The same products as AbsorbedDecode, T queries each.
  at::Tensor AbsorbedPrefill(const at::Tensor& cached, const MlaWeights& a,
                             const at::Tensor& q_nope,  // [T, H, dn]
                             const at::Tensor& q_pe,    // [T, H, dr]
                             int64_t start_pos) const {
    const int64_t r = config_.kv_lora_rank;
    at::Tensor qa = at::cat({ops::HeadLinear(q_nope, a.w_uk), q_pe}, 2);  // [T, H, r + dr]
    at::Tensor k = cached.unsqueeze(1);                                   // [nk, 1, r + dr]
    at::Tensor o_lat = ops::PrefillAttention(qa, k, k.narrow(2, 0, r), start_pos, config_.softmax_scale);
    return ops::HeadLinear(o_lat, a.w_uv);  // [T, H, dv]
  }

  ModelConfig config_;
  at::Tensor embed_;    // [vocab, hidden]
  at::Tensor norm_;     // [hidden]
  at::Tensor lm_head_;  // [vocab, hidden]
  std::vector<DeepseekLayer> layers_;
  ops::RopeTable rope_;
};

}  // namespace

std::unique_ptr<Model> CreateDeepseekV2(const ModelConfig& config, const SafetensorsCheckpoint& ckpt,
                                        c10::ScalarType dtype, c10::Device device) {
  return std::make_unique<DeepseekModel>(config, ckpt, dtype, device);
}

}  // namespace inferd::model
