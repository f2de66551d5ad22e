// LlamaForCausalLM (DeepSeek-LLM, DeepSeek-Coder): GQA attention with RoPE, SwiGLU MLP, tied or untied head.
#include <ATen/ATen.h>

#include <string>

#include "model/model.h"
#include "model/weights.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace inferd::model {
namespace {

struct LlamaLayer {
  at::Tensor input_norm;  // [hidden]
  at::Tensor w_qkv;       // [(heads + 2 * kv_heads) * head_dim, hidden]
  at::Tensor b_qkv;       // [(heads + 2 * kv_heads) * head_dim] or undefined
  at::Tensor w_o;         // [hidden, heads * head_dim]
  at::Tensor b_o;         // [hidden] or undefined
  at::Tensor post_norm;   // [hidden]
  at::Tensor w_gate_up;   // [2 * inter, hidden]
  at::Tensor w_down;      // [hidden, inter]
};

class LlamaModel final : public Model {
 public:
  LlamaModel(const ModelConfig& config, const SafetensorsCheckpoint& ckpt, c10::ScalarType dtype,
             c10::Device device)
      : Model(dtype, device), config_(config) {
    const ModelConfig& c = config_;
    WeightLoader w(ckpt, dtype, device);
    const int64_t h = c.hidden_size, d = c.head_dim, nq = c.num_heads * d, nkv = c.num_kv_heads * d;
    embed_ = w.Load("model.embed_tokens.weight", {c.vocab_size, h});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      LlamaLayer l;
      l.input_norm = w.Load(p + "input_layernorm.weight", {h});
      l.w_qkv = w.LoadRows({{p + "self_attn.q_proj.weight", {nq, h}},
                            {p + "self_attn.k_proj.weight", {nkv, h}},
                            {p + "self_attn.v_proj.weight", {nkv, h}}});
      l.w_o = w.Load(p + "self_attn.o_proj.weight", {h, nq});
      if (c.attention_bias) {
        l.b_qkv = at::cat({w.Load(p + "self_attn.q_proj.bias", {nq}), w.Load(p + "self_attn.k_proj.bias", {nkv}),
                           w.Load(p + "self_attn.v_proj.bias", {nkv})});
        l.b_o = w.Load(p + "self_attn.o_proj.bias", {h});
      }
      l.post_norm = w.Load(p + "post_attention_layernorm.weight", {h});
      l.w_gate_up = w.LoadRows({{p + "mlp.gate_proj.weight", {c.intermediate_size, h}},
                                {p + "mlp.up_proj.weight", {c.intermediate_size, h}}});
      l.w_down = w.Load(p + "mlp.down_proj.weight", {h, c.intermediate_size});
      layers_.push_back(std::move(l));
    }
    norm_ = w.Load("model.norm.weight", {h});
    if (c.tie_word_embeddings || !w.Has("lm_head.weight")) {
      if (!c.tie_word_embeddings) w.Load("lm_head.weight", {c.vocab_size, h});  // throws: missing
      lm_head_ = embed_;
    } else {
      lm_head_ = w.Load("lm_head.weight", {c.vocab_size, h});
    }
    w.CheckAllConsumed([](const std::string& name) { return name.find("rotary_emb.inv_freq") != std::string::npos; });
    rope_ = ops::MakeRopeTable(c.rope, device);
  }

  const ModelConfig& config() const override { return config_; }

  KvCache AllocateKvCache(int64_t num_blocks, int64_t block_size) const override {
    KvCache cache;
    cache.num_blocks = num_blocks;
    cache.block_size = block_size;
    const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
    for (int64_t i = 0; i < config_.num_layers; ++i) {
      cache.k.push_back(at::zeros({num_blocks, block_size, config_.num_kv_heads, config_.head_dim}, opts));
      cache.v.push_back(at::zeros({num_blocks, block_size, config_.num_kv_heads, config_.head_dim}, opts));
    }
    return cache;
  }

  std::vector<at::Tensor> Weights() const override {
    std::vector<at::Tensor> out = {embed_, norm_, lm_head_, rope_.inv_freq};
    for (const LlamaLayer& l : layers_) {
      for (const at::Tensor* t :
           {&l.input_norm, &l.w_qkv, &l.b_qkv, &l.w_o, &l.b_o, &l.post_norm, &l.w_gate_up, &l.w_down}) {
        out.push_back(*t);
      }
    }
    return out;
  }

  int64_t KvBytesPerBlock(int64_t block_size) const override {
    return 2 * config_.num_layers * block_size * config_.num_kv_heads * config_.head_dim *
           static_cast<int64_t>(c10::elementSize(dtype_));
  }

  at::Tensor Forward(const ForwardInputs& in, KvCache& cache) override {
    const ModelConfig& c = config_;
    const int64_t t = in.token_ids.size(0), d = c.head_dim, hq = c.num_heads, hkv = c.num_kv_heads;
    at::Tensor hidden = at::embedding(embed_, in.token_ids);  // [T, hidden]
    const ops::RopeCosSin cs = ops::RopeCosSinFor(in.positions, rope_);
    // hidden is this forward's own tensor: the residual adds update it in place, fused with the next norm.
    at::Tensor x = c.num_layers > 0 ? ops::RmsNorm(hidden, layers_[0].input_norm, c.rms_norm_eps) : hidden;
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const LlamaLayer& l = layers_[i];
      at::Tensor qkv = ops::Linear(x, l.w_qkv, l.b_qkv);  // [T, (hq + 2 hkv) d]
      at::Tensor q = ops::ApplyRope(qkv.narrow(1, 0, hq * d).view({t, hq, d}), cs, false);
      at::Tensor k = ops::ApplyRope(qkv.narrow(1, hq * d, hkv * d).view({t, hkv, d}), cs, false);
      at::Tensor v = qkv.narrow(1, (hq + hkv) * d, hkv * d).reshape({t, hkv, d});
      at::Tensor attn = Attention(in, cache.k[i], cache.v[i], q, k, v);  // [T, hq, d]
      x = ops::AddRmsNorm(hidden, ops::Linear(attn.reshape({t, hq * d}), l.w_o, l.b_o), l.post_norm, c.rms_norm_eps);
      at::Tensor mlp = ops::Linear(ops::SiluAndMul(ops::Linear(x, l.w_gate_up)), l.w_down);
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
  // Writes k/v of every token into the cache, then attends: decodes batched through the paged kernel,
  // prefill chunks per sequence (fresh K/V for whole prompts, gathered from the cache for later chunks).
  at::Tensor Attention(const ForwardInputs& in, at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& q,
                       const at::Tensor& k, const at::Tensor& v) {
    const int64_t hkv = config_.num_kv_heads, d = config_.head_dim;
    at::Tensor k_flat = k_cache.view({-1, hkv, d});
    at::Tensor v_flat = v_cache.view({-1, hkv, d});
    ops::WriteCacheRows(k_flat, in.slot_mapping, k);
    ops::WriteCacheRows(v_flat, in.slot_mapping, v);
    if (in.decode_only) {  // every token is a decode: rows are already in kernel order
      return ops::PagedDecodeAttention(q, k_cache, v_cache, in.decode_block_tables, in.decode_context_lens,
                                       config_.softmax_scale);
    }
    at::Tensor out = at::empty({q.size(0), q.size(1), d}, q.options());
    if (in.decode_rows.numel() > 0) {
      at::Tensor od = ops::PagedDecodeAttention(q.index_select(0, in.decode_rows), k_cache, v_cache,
                                                in.decode_block_tables, in.decode_context_lens, config_.softmax_scale);
      out.index_copy_(0, in.decode_rows, od);
    }
    for (int64_t s : in.prefill_seqs) {
      const SeqSlice& seq = in.seqs[s];
      at::Tensor qs = q.narrow(0, seq.token_begin, seq.num_tokens);
      at::Tensor ks, vs;
      if (seq.start_pos == 0) {
        ks = k.narrow(0, seq.token_begin, seq.num_tokens);
        vs = v.narrow(0, seq.token_begin, seq.num_tokens);
      } else {
        at::Tensor slots = SeqSlots(in, s, seq.start_pos + seq.num_tokens);
        ks = k_flat.index_select(0, slots);
        vs = v_flat.index_select(0, slots);
      }
      out.narrow(0, seq.token_begin, seq.num_tokens)
          .copy_(ops::PrefillAttention(qs, ks, vs, seq.start_pos, config_.softmax_scale));
    }
    return out;
  }

  ModelConfig config_;
  at::Tensor embed_;    // [vocab, hidden]
  at::Tensor norm_;     // [hidden]
  at::Tensor lm_head_;  // [vocab, hidden] (aliases embed_ when tied)
  std::vector<LlamaLayer> layers_;
  ops::RopeTable rope_;
};

}  // namespace

std::unique_ptr<Model> CreateLlama(const ModelConfig& config, const SafetensorsCheckpoint& ckpt,
                                   c10::ScalarType dtype, c10::Device device) {
  return std::make_unique<LlamaModel>(config, ckpt, dtype, device);
}

}  // namespace inferd::model
