// Plain data that crosses the scheduler -> worker boundary (DESIGN.md section 2, rule 1).
// The scheduler fills a ForwardBatch each step; the worker turns it into tensors, runs the model and
// returns a StepResult. Neither side sees the other's types: no torch, no request objects here.
#pragma once

#include <cstdint>
#include <vector>

namespace inferd {

using TokenId = int32_t;
using SeqId = int64_t;
using BlockId = int32_t;

// Per-sequence sampling parameters, copied into the batch so the worker needs no request state.
struct SamplingParams {
  float temperature = 0.0f;       // 0 = greedy
  int32_t top_k = 0;              // 0 = off
  float top_p = 1.0f;             // 1 = off
  float min_p = 0.0f;             // 0 = off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;              // used when has_seed
  bool has_seed = false;
  int32_t top_logprobs = 0;       // how many alternatives to report per sampled token
};

// One sequence's slice of a step: the tokens it contributes and where its KV lives.
struct SequenceChunk {
  SeqId seq_id = 0;
  std::vector<TokenId> tokens;      // new tokens fed this step (prefill chunk, or 1 decode token)
  int32_t start_pos = 0;            // position of tokens[0]; positions [0, start_pos) are already cached
  std::vector<BlockId> block_table; // physical KV blocks covering positions [0, start_pos + tokens.size())
  bool sample = false;              // sample a next token after the last position of this chunk
  SamplingParams sampling;
  std::vector<TokenId> history;     // prompt + generated ids so far, for penalties (may be empty)
  uint64_t sample_index = 0;        // how many tokens this sequence sampled before; keys the seeded RNG
  // Positions of `tokens` whose next-token log-probability is wanted (Recommend scoring):
  // for i in score_targets_index, the worker returns log p(score_targets[k] | ..., tokens[i]).
  std::vector<int32_t> score_index;
  std::vector<TokenId> score_targets;
};

struct ForwardBatch {
  std::vector<SequenceChunk> chunks;  // flattened in this order; prefills and decodes mixed
  int32_t block_size = 0;             // tokens per KV block
  // Sequences finished, cancelled or preempted since the previous batch: the worker may drop any
  // per-sequence state it keeps (RNG, penalty counts). Their blocks may already be reused by this batch.
  std::vector<SeqId> released;
};

// What one token costs in the KV cache. The worker reports it; kv_cache sizes its block pool from it.
// Both layouts hold the same tokens per block, only the bytes per block differ.
enum class KvCacheKind : int32_t {
  kMha = 0,  // keys and values per KV head (MHA and GQA)
  kMla = 1,  // compressed latent plus the decoupled rope key (DeepSeek V2/V3)
};

struct KvCacheLayout {
  KvCacheKind kind = KvCacheKind::kMha;
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;       // kMha only
  int32_t head_dim = 0;           // kMha only: width of one key (and one value) head
  int32_t kv_lora_rank = 0;       // kMla only: latent width (512 for V3)
  int32_t qk_rope_head_dim = 0;   // kMla only: rope key width (64 for V3)
  int32_t dtype_bytes = 2;        // bytes per cached element

  // 0 when the layout is incomplete.
  int64_t BytesPerToken() const {
    const int64_t per_layer = kind == KvCacheKind::kMha
                                  ? int64_t{2} * num_kv_heads * head_dim
                                  : int64_t{kv_lora_rank} + qk_rope_head_dim;
    return per_layer * num_layers * dtype_bytes;
  }
};

struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0.0f;
};

struct SequenceResult {
  SeqId seq_id = 0;
  bool sampled = false;
  TokenLogprob token;                     // the sampled token (when sampled)
  std::vector<TokenLogprob> top;          // top_logprobs alternatives, best first
  std::vector<float> score_logprobs;      // one per score_targets entry
};

struct StepResult {
  std::vector<SequenceResult> results;  // same order as ForwardBatch::chunks
};

}  // namespace inferd
