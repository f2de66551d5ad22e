// ModelRunner: the model engine behind one plain-data call per step. No torch types here (pimpl), so the
// engine and server link it without seeing libtorch headers.
//
// Ownership: the runner owns the model weights and the paged KV cache tensors (kv_num_blocks blocks of
// block_size tokens). Block ids in a ForwardBatch index that pool; the caller (scheduler) owns the
// allocation of blocks to sequences. Execute is not thread-safe: one engine thread drives a runner.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inferd/batch.h"
#include "inferd/residency.h"
#include "inferd/status.h"

namespace inferd::worker {

struct ModelRunnerOptions {
  std::string dtype = "bf16";  // "fp32" or "bf16"; "fp16" on CUDA only (INVALID_ARGUMENT on cpu)
  int32_t num_threads = 0;     // intra-op threads; 0 keeps libtorch's default
  int64_t kv_num_blocks = 256;  // 0: no pool until AllocateCache
  int32_t block_size = 16;
  std::string device = "cpu";
  uint64_t seed = 0;           // base seed for requests that carry none
  // Called on the loading thread after each checkpoint tensor was read: tensor bytes so far and in all.
  std::function<void(int64_t done, int64_t total)> on_load_bytes;
  // CPU weights stored in the run dtype are locked read-only views into the checkpoint's file mapping
  // instead of copies (model::SafetensorsCheckpoint::TryView); copies from the first failed mlock on.
  bool map_weights = true;
};

// Durations of Load's phases.
struct LoadPhases {
  double open_seconds = 0;   // config.json, mmap of the shards, header checks
  double copy_seconds = 0;   // tensors read (or mapped and locked), converted, assembled
  int64_t tensor_bytes = 0;  // in the checkpoint
  int64_t mapped_bytes = 0;  // of tensor_bytes: locked views into the file mapping
  std::string map_fallback;  // why mapping stopped and the rest was copied ("" when it did not)
};

class ModelRunner {
 public:
  // Loads config.json + safetensors from model_dir and allocates the KV pool. Errors: NOT_FOUND (no such
  // directory or config), INVALID_ARGUMENT (bad options, unsupported architecture, bad checkpoint).
  static StatusOr<std::unique_ptr<ModelRunner>> Load(const std::string& model_dir, const ModelRunnerOptions& options);
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  // Allocates (or replaces) the paged KV pool: num_blocks blocks of block_size tokens. Load with
  // kv_num_blocks = 0 defers the pool to this call, so the caller can size it from CacheLayout().
  Status AllocateCache(int64_t num_blocks, int32_t block_size);
  KvCacheLayout CacheLayout() const;  // what one cached token costs, per layer and in total
  int64_t BytesPerBlock() const;  // KV bytes one block holds across all layers
  int64_t NumBlocks() const;
  int32_t BlockSize() const;
  int32_t VocabSize() const;
  int32_t MaxPositionEmbeddings() const;  // the checkpoint's context limit
  const std::vector<TokenId>& EosTokenIds() const;
  const std::string& Architecture() const;
  const LoadPhases& load_phases() const;
  // Linear layers of up to this many rows run the GEMV kernel on CPU, more run GEMM (ops::kGemvMaxRows): a
  // shape class boundary warm-up covers.
  static int32_t GemvMaxRows();

  // Keeps the weights and the KV pool resident: mode lock | prefault | none (ResidentMemory: lock falls back to
  // prefault with the reason in the report). Held until the runner or its KV pool goes. CPU tensors only
  // (device memory is resident anyway). Mapped weights are locked since Load whatever the mode (and are
  // left out of ResidentMemory, whose fallback would unlock them); the report counts them in bytes and
  // locked_bytes. Call while no Execute runs.
  ResidencyReport MakeResident(const std::string& mode);

  // Background steps (a replacement model's warm-up beside the serving one): while threads > 0, each step runs
  // on at most `threads` intra-op threads and its ops kernels on the engine thread alone, leaving the shared
  // ops work pool to the serving engine (ops::SetThreadRunsInline). 0 = as loaded. Thread-safe: read at the
  // start of each step.
  void SetBackgroundThreads(int32_t threads);

  // Runs one flattened step (prefill chunks and decodes mixed), samples where chunks ask for it and
  // computes score log-probabilities. INVALID_ARGUMENT for malformed chunks (nothing is run),
  // INTERNAL if the forward pass fails.
  StatusOr<StepResult> Execute(const ForwardBatch& batch);

  // Like Execute but returns the float32 logits of every token of every chunk, row-major
  // [total tokens, vocab] in chunk order; samples nothing. For eval and tests.
  StatusOr<std::vector<float>> ExecuteAllLogits(const ForwardBatch& batch);

 private:
  struct Impl;
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::worker
