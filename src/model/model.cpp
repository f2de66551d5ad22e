#include "model/model.h"

#include <ATen/ATen.h>

#include <chrono>
#include <stdexcept>

#include "model/safetensors.h"

namespace inferd::model {

void ForwardInputs::BuildDecodeIndex() {
  std::vector<int64_t> rows, seq_idx;
  std::vector<int32_t> ctx;
  prefill_seqs.clear();
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].IsDecode()) {
      rows.push_back(seqs[i].token_begin);
      seq_idx.push_back(static_cast<int64_t>(i));
      ctx.push_back(static_cast<int32_t>(seqs[i].start_pos + 1));
    } else {
      prefill_seqs.push_back(static_cast<int64_t>(i));
    }
  }
  const auto dev = token_ids.device();
  const auto n = static_cast<int64_t>(rows.size());
  decode_only = prefill_seqs.empty() && n == token_ids.size(0);
  decode_rows = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(dev);
  decode_context_lens = at::tensor(ctx, at::TensorOptions().dtype(at::kInt)).to(dev);
  decode_block_tables = n == 0 ? at::empty({0, block_tables.size(1)}, block_tables.options())
                               : block_tables.index_select(0, at::tensor(seq_idx).to(dev));
}

at::Tensor SeqSlots(const ForwardInputs& in, size_t seq, int64_t length) {
  const auto opts = in.positions.options().dtype(at::kLong);
  at::Tensor pos = at::arange(length, opts);
  at::Tensor blocks = in.block_tables[static_cast<int64_t>(seq)].to(at::kLong).index_select(0, at::floor_divide(pos, in.block_size));
  return blocks * in.block_size + at::remainder(pos, in.block_size);
}

std::unique_ptr<Model> LoadModel(const std::string& dir, c10::ScalarType dtype, c10::Device device,
                                 LoadObserver* observer, const MapViewOptions& views) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    throw std::runtime_error("model dtype must be float32, bfloat16 or float16");
  }
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  ModelConfig config = LoadModelConfig(dir);
  std::unique_ptr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::Open(dir, views);
  const auto t1 = Clock::now();
  if (observer != nullptr) {
    observer->open_seconds = std::chrono::duration<double>(t1 - t0).count();
    observer->total_bytes = ckpt->TensorBytes();
    if (observer->on_bytes) {
      ckpt->SetReadObserver([observer, done = uint64_t{0}](uint64_t bytes) mutable {
        done += bytes;
        observer->on_bytes(done, observer->total_bytes);
      });
    }
  }
  std::unique_ptr<Model> model;
  switch (config.arch) {
    case Architecture::kLlama:
      model = CreateLlama(config, *ckpt, dtype, device);
      break;
    case Architecture::kDeepseekV2:
    case Architecture::kDeepseekV3:
      model = CreateDeepseekV2(config, *ckpt, dtype, device);
      break;
  }
  if (!model) throw std::runtime_error("unreachable architecture");
  if (observer != nullptr) {
    observer->copy_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
    observer->view_bytes = ckpt->ViewBytes();
    observer->view_fallback = ckpt->ViewFallbackReason();
  }
  return model;
}

}  // namespace inferd::model
