// Model interface: one architecture per file (llama.cpp, deepseek_v2.cpp) behind `Model`.
// A Model owns its weights; the caller (worker/) owns the KV cache tensors and passes them to Forward.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/safetensors.h"

namespace inferd::model {

class SafetensorsCheckpoint;

// Host-side description of one sequence's slice of the flattened batch.
struct SeqSlice {
  int64_t token_begin = 0;  // first row in the flattened token dimension
  int64_t num_tokens = 0;
  int64_t start_pos = 0;    // position of the first token; [0, start_pos) is already cached
  bool IsDecode() const { return num_tokens == 1 && start_pos > 0; }
};

// Tensors of one forward call, built by the worker from a ForwardBatch. All on the model's device.
struct ForwardInputs {
  at::Tensor token_ids;     // [num_tokens] int64
  at::Tensor positions;     // [num_tokens] int64
  at::Tensor slot_mapping;  // [num_tokens] int64: block * block_size + offset where each token's KV goes
  at::Tensor block_tables;  // [num_seqs, max_blocks] int32 (rows padded with 0)
  at::Tensor logits_rows;   // [num_logits] int64: rows whose logits Forward returns, in this order
  std::vector<SeqSlice> seqs;  // same order as block_tables rows
  // Derived by BuildDecodeIndex(): decode sequences (one token, start_pos > 0) run batched through the
  // paged decode kernel.
  at::Tensor decode_rows;          // [num_decode] int64 token rows
  at::Tensor decode_block_tables;  // [num_decode, max_blocks] int32
  at::Tensor decode_context_lens;  // [num_decode] int32 (start_pos + 1)
  std::vector<int64_t> prefill_seqs;  // indices into seqs of the others
  bool decode_only = false;           // every sequence is a decode, so decode_rows == [0, num_tokens)
  int64_t block_size = 0;

  // Fills the decode_* fields and prefill_seqs from seqs/block_tables.
  void BuildDecodeIndex();
};

// Per-layer paged cache tensors; layout is the model's (see Model::AllocateKvCache).
struct KvCache {
  std::vector<at::Tensor> k;  // per layer
  std::vector<at::Tensor> v;  // per layer; empty for MLA (the latent holds both)
  int64_t num_blocks = 0;
  int64_t block_size = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  // Llama: k/v [num_blocks, block_size, kv_heads, head_dim] each.
  // MLA: k [num_blocks, block_size, 1, kv_lora_rank + qk_rope_head_dim] (normalised latent, then the
  // rotated rope key); v empty.
  virtual KvCache AllocateKvCache(int64_t num_blocks, int64_t block_size) const = 0;
  virtual int64_t KvBytesPerBlock(int64_t block_size) const = 0;
  // Every tensor the model holds for its lifetime (weights and tables; tied weights may appear twice), for
  // keeping their memory resident (common/memory_residency.h). Views of the model's own storage.
  virtual std::vector<at::Tensor> Weights() const = 0;
  // Runs every token of `in`, writes their KV into `cache`, returns float32 logits of in.logits_rows.
  virtual at::Tensor Forward(const ForwardInputs& in, KvCache& cache) = 0;  // -> [num_logits, vocab]
  c10::ScalarType dtype() const { return dtype_; }
  c10::Device device() const { return device_; }

 protected:
  Model(c10::ScalarType dtype, c10::Device device) : dtype_(dtype), device_(device) {}
  c10::ScalarType dtype_;
  c10::Device device_;
};

// Progress and phase times of one LoadModel call.
struct LoadObserver {
  // Called on the loading thread after each tensor was read from the checkpoint: tensor bytes read so far and
  // in all (a tensor read twice, e.g. an fp8 scale, counts twice, so done may pass total by a little).
  std::function<void(uint64_t done, uint64_t total)> on_bytes;
  double open_seconds = 0;   // out: config.json, mmap of the shards, header checks
  double copy_seconds = 0;   // out: tensors read (or mapped and locked), converted and assembled
  uint64_t total_bytes = 0;  // out: tensor bytes in the checkpoint
  uint64_t view_bytes = 0;   // out: tensor bytes that are locked views into the file mapping (no copy)
  std::string view_fallback;  // out: why views stopped and the rest was copied (SafetensorsCheckpoint)
};

// Reads config.json and the safetensors weights of `dir`. Throws std::runtime_error with a clear message
// (unsupported architecture, missing/unexpected/misshaped tensor naming the tensor and shapes).
// `observer` may be null. With `views.enabled`, a weight stored in `dtype` (and every fused weight whose
// parts lie back to back in the file) is a locked read-only view into the checkpoint's mapping
// (SafetensorsCheckpoint::TryView); the rest is copied.
std::unique_ptr<Model> LoadModel(const std::string& dir, c10::ScalarType dtype, c10::Device device,
                                 LoadObserver* observer = nullptr, const MapViewOptions& views = {});

// Architecture factories (one per file).
std::unique_ptr<Model> CreateLlama(const ModelConfig& config, const SafetensorsCheckpoint& ckpt,
                                   c10::ScalarType dtype, c10::Device device);
std::unique_ptr<Model> CreateDeepseekV2(const ModelConfig& config, const SafetensorsCheckpoint& ckpt,
                                        c10::ScalarType dtype, c10::Device device);

}  // namespace inferd::model

namespace inferd::model {
// Physical cache slots (block * block_size + offset) of positions [0, length) of sequence `seq`.
at::Tensor SeqSlots(const ForwardInputs& in, size_t seq, int64_t length);  // -> [length] int64
}  // namespace inferd::model
