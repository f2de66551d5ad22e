#include "inferd/model_runner.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "common/fault_injection.h"
#include "common/memory_residency.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "ops/linear.h"
#include "ops/parallel.h"
#include "ops/sampling.h"

namespace inferd::worker {
namespace {

uint64_t MixSeed(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ULL;
  return x ^ (x >> 27);
}

// Steps whose every matrix product is skinny (few tokens) run the ops work pool's kernels; libtorch's own
// intra-op threads are then switched off for the step, so its small elementwise ops never open an OpenMP
// team (a team costs a scheduler time slice whenever one of its threads is descheduled, and its spinning
// workers compete with the pool for the two cores). Other steps run on `threads` (the runner's count, or a
// background step's cap), set on this thread for the step whatever an earlier step or load left there.
// A background step also keeps its ops kernels off the shared work pool.
class IntraOpThreadsForStep {
 public:
  IntraOpThreadsForStep(const ForwardBatch& batch, int threads, bool background) {
    int64_t tokens = 0;
    for (const auto& c : batch.chunks) tokens += static_cast<int64_t>(c.tokens.size());
    const int want = tokens <= ops::kGemvMaxRows ? 1 : std::max(1, threads);
    saved_ = at::get_num_threads();
    if (want != saved_) {
      at::set_num_threads(want);
    } else {
      saved_ = 0;
    }
    inline_saved_ = ops::SetThreadRunsInline(background);
  }
  ~IntraOpThreadsForStep() {
    ops::SetThreadRunsInline(inline_saved_);
    if (saved_ > 0) at::set_num_threads(saved_);
  }
  IntraOpThreadsForStep(const IntraOpThreadsForStep&) = delete;
  IntraOpThreadsForStep& operator=(const IntraOpThreadsForStep&) = delete;

 private:
  int saved_ = 0;
  bool inline_saved_ = false;
};

struct RowPlan {
  int64_t sample_row = -1;          // index into the logits rows, or -1
  std::vector<int64_t> score_rows;  // one per score target
};

}  // namespace

struct ModelRunner::Impl {
  std::unique_ptr<model::Model> model;
  model::KvCache cache;
  ModelRunnerOptions options;
  std::vector<TokenId> eos;
  std::string arch;
  LoadPhases phases;
  int threads = 1;                           // intra-op threads of a step, resolved at Load
  std::atomic<int32_t> background{0};        // SetBackgroundThreads
  std::unique_ptr<ResidentMemory> resident;  // declared after model and cache: released before they are freed

  int StepThreads() const {
    const int32_t cap = background.load();
    return cap > 0 ? std::min<int>(cap, threads) : threads;
  }

  Status Validate(const ForwardBatch& batch) const {
    const int64_t bs = options.block_size;
    if (batch.block_size != 0 && batch.block_size != bs) {
      return InvalidArgument("block_size: batch uses " + std::to_string(batch.block_size) + ", runner has " +
                             std::to_string(bs));
    }
    const int64_t vocab = model->config().vocab_size;
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      const SequenceChunk& c = batch.chunks[i];
      const std::string where = "chunks[" + std::to_string(i) + "] (seq " + std::to_string(c.seq_id) + "): ";
      if (c.tokens.empty()) return InvalidArgument(where + "tokens: empty");
      if (c.start_pos < 0) return InvalidArgument(where + "start_pos: negative");
      for (TokenId t : c.tokens) {
        if (t < 0 || t >= vocab) return InvalidArgument(where + "tokens: id " + std::to_string(t) + " out of vocab");
      }
      const int64_t end = c.start_pos + static_cast<int64_t>(c.tokens.size());
      if (static_cast<int64_t>(c.block_table.size()) * bs < end) {
        return InvalidArgument(where + "block_table: " + std::to_string(c.block_table.size()) +
                               " blocks do not cover " + std::to_string(end) + " positions");
      }
      for (BlockId b : c.block_table) {
        if (b < 0 || b >= cache.num_blocks)
          return InvalidArgument(where + "block_table: block " + std::to_string(b) + " out of range");
      }
      if (c.score_index.size() != c.score_targets.size()) {
        return InvalidArgument(where + "score_index and score_targets differ in length");
      }
      for (int32_t s : c.score_index) {
        if (s < 0 || s >= static_cast<int32_t>(c.tokens.size()))
          return InvalidArgument(where + "score_index out of range");
      }
      for (TokenId t : c.score_targets) {
        if (t < 0 || t >= vocab) return InvalidArgument(where + "score_targets: id out of vocab");
      }
      if (c.sampling.top_logprobs < 0 || c.sampling.top_logprobs > vocab) {
        return InvalidArgument(where + "top_logprobs out of range");
      }
    }
    return Status::Ok();
  }

  // Builds ForwardInputs; all_logits selects every token row, otherwise sample rows then score rows.
  model::ForwardInputs Build(const ForwardBatch& batch, bool all_logits, std::vector<RowPlan>* plans) const {
    const int64_t bs = options.block_size;
    std::vector<int64_t> ids, pos, slots, logit_rows;
    size_t max_blocks = 1;
    for (const auto& c : batch.chunks) max_blocks = std::max(max_blocks, c.block_table.size());
    std::vector<int32_t> tables(batch.chunks.size() * max_blocks, 0);
    model::ForwardInputs in;
    in.block_size = bs;
    if (plans) plans->assign(batch.chunks.size(), RowPlan{});
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      const SequenceChunk& c = batch.chunks[i];
      const int64_t begin = static_cast<int64_t>(ids.size());
      for (size_t j = 0; j < c.tokens.size(); ++j) {
        const int64_t p = c.start_pos + static_cast<int64_t>(j);
        ids.push_back(c.tokens[j]);
        pos.push_back(p);
        slots.push_back(static_cast<int64_t>(c.block_table[p / bs]) * bs + p % bs);
        if (all_logits) logit_rows.push_back(begin + static_cast<int64_t>(j));
      }
      std::copy(c.block_table.begin(), c.block_table.end(), tables.begin() + i * max_blocks);
      in.seqs.push_back({begin, static_cast<int64_t>(c.tokens.size()), c.start_pos});
      if (!all_logits) {
        RowPlan& plan = (*plans)[i];
        if (c.sample) {
          plan.sample_row = static_cast<int64_t>(logit_rows.size());
          logit_rows.push_back(begin + static_cast<int64_t>(c.tokens.size()) - 1);
        }
        for (int32_t s : c.score_index) {
          plan.score_rows.push_back(static_cast<int64_t>(logit_rows.size()));
          logit_rows.push_back(begin + s);
        }
      }
    }
    const auto dev = model->device();
    const auto i64 = at::TensorOptions().dtype(at::kLong);
    in.token_ids = at::tensor(ids, i64).to(dev);
    in.positions = at::tensor(pos, i64).to(dev);
    in.slot_mapping = at::tensor(slots, i64).to(dev);
    in.logits_rows = at::tensor(logit_rows, i64).to(dev);
    in.block_tables = at::tensor(tables, at::TensorOptions().dtype(at::kInt))
                          .view({static_cast<int64_t>(batch.chunks.size()), static_cast<int64_t>(max_blocks)})
                          .to(dev);
    in.BuildDecodeIndex();
    return in;
  }

  StepResult Sample(const ForwardBatch& batch, const std::vector<RowPlan>& plans, const at::Tensor& logits) {
    StepResult result;
    result.results.resize(batch.chunks.size());
    std::vector<int64_t> rows, hist_rows, hist_ids, top_k;
    std::vector<float> temp, top_p, min_p, rep, pres, freq, uniform;
    std::vector<size_t> chunk_of;
    int32_t max_top = 0;
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      const SequenceChunk& c = batch.chunks[i];
      result.results[i].seq_id = c.seq_id;
      if (plans[i].sample_row < 0) continue;
      const SamplingParams& s = c.sampling;
      const int64_t r = static_cast<int64_t>(rows.size());
      rows.push_back(plans[i].sample_row);
      chunk_of.push_back(i);
      temp.push_back(s.temperature);
      top_k.push_back(s.top_k);
      top_p.push_back(s.top_p);
      min_p.push_back(s.min_p);
      rep.push_back(s.repetition_penalty);
      pres.push_back(s.presence_penalty);
      freq.push_back(s.frequency_penalty);
      const uint64_t seed = s.has_seed ? s.seed : MixSeed(options.seed, static_cast<uint64_t>(c.seq_id));
      uniform.push_back(static_cast<float>(ops::SeededUniform(seed, c.sample_index)));
      max_top = std::max(max_top, s.top_logprobs);
      const bool penalised = s.repetition_penalty != 1.0f || s.presence_penalty != 0.0f || s.frequency_penalty != 0.0f;
      if (penalised) {
        for (TokenId t : c.history) {
          hist_rows.push_back(r);
          hist_ids.push_back(t);
        }
      }
    }
    if (!rows.empty()) {
      const auto dev = logits.device();
      auto f32 = [&](const std::vector<float>& v) {
        return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).to(dev);
      };
      auto i64 = [&](const std::vector<int64_t>& v) {
        return at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(dev);
      };
      at::Tensor raw = logits.index_select(0, i64(rows));  // [B, vocab]
      at::Tensor penalised = ops::ApplyPenalties(raw, i64(hist_rows), i64(hist_ids), f32(rep), f32(pres), f32(freq));
      at::Tensor chosen = ops::SampleFromLogits(penalised, f32(temp), i64(top_k), f32(top_p), f32(min_p), f32(uniform));
      // log_softmax(raw) at the few entries wanted: raw - logsumexp(raw), no [B, vocab] result.
      at::Tensor lse = ops::RowLogSumExp(raw).unsqueeze(1);  // [B, 1]
      at::Tensor chosen_lp = (raw.gather(1, chosen.unsqueeze(1)) - lse).squeeze(1).to(at::kCPU);
      at::Tensor chosen_cpu = chosen.to(at::kCPU);
      at::Tensor top_lp, top_ids;
      if (max_top > 0) {
        auto top = raw.topk(max_top, -1);
        top_lp = (std::get<0>(top) - lse).to(at::kCPU);
        top_ids = std::get<1>(top).to(at::kCPU);
      }
      for (size_t b = 0; b < chunk_of.size(); ++b) {
        SequenceResult& out = result.results[chunk_of[b]];
        out.sampled = true;
        out.token = {static_cast<TokenId>(chosen_cpu[b].item<int64_t>()), chosen_lp[b].item<float>()};
        const int32_t n = batch.chunks[chunk_of[b]].sampling.top_logprobs;
        for (int32_t k = 0; k < n; ++k) {
          out.top.push_back({static_cast<TokenId>(top_ids[b][k].item<int64_t>()), top_lp[b][k].item<float>()});
        }
      }
    }
    // Scoring: log p(target | prefix) at each requested position.
    std::vector<int64_t> score_rows, score_targets;
    for (size_t i = 0; i < batch.chunks.size(); ++i) {
      for (size_t k = 0; k < plans[i].score_rows.size(); ++k) {
        score_rows.push_back(plans[i].score_rows[k]);
        score_targets.push_back(batch.chunks[i].score_targets[k]);
      }
    }
    if (!score_rows.empty()) {
      const auto dev = logits.device();
      at::Tensor sel = logits.index_select(0, at::tensor(score_rows).to(dev));  // [S, vocab]
      at::Tensor got =
          (sel.gather(1, at::tensor(score_targets).to(dev).unsqueeze(1)).squeeze(1) - ops::RowLogSumExp(sel))
              .to(at::kCPU)
              .contiguous();
      const float* g = got.data_ptr<float>();
      size_t at_idx = 0;
      for (size_t i = 0; i < batch.chunks.size(); ++i) {
        for (size_t k = 0; k < plans[i].score_rows.size(); ++k) result.results[i].score_logprobs.push_back(g[at_idx++]);
      }
    }
    return result;
  }
};

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Load(const std::string& model_dir,
                                                         const ModelRunnerOptions& options) {
  if (!std::filesystem::exists(model_dir + "/config.json")) return NotFound(model_dir + "/config.json: not found");
  if (options.device == "cpu") {
    if (const std::string isa_error = ops::CpuIsaEnvError(); !isa_error.empty()) return InvalidArgument(isa_error);
  }
  c10::ScalarType dtype;
  if (options.dtype == "fp32" || options.dtype == "float32") {
    dtype = at::kFloat;
  } else if (options.dtype == "bf16" || options.dtype == "bfloat16") {
    dtype = at::kBFloat16;
  } else if (options.dtype == "fp16" || options.dtype == "float16") {
    // The CPU paged decode kernel (kernels/cpu/paged_attention) reads float32 and bfloat16 only.
    if (options.device == "cpu") return InvalidArgument("dtype: fp16 runs on CUDA only; use bf16 or fp32 on cpu");
    dtype = at::kHalf;
  } else {
    return InvalidArgument("dtype: '" + options.dtype + "' (expected fp32, bf16, or fp16 on CUDA)");
  }
  if (options.block_size <= 0) return InvalidArgument("block_size: must be positive");
  if (options.kv_num_blocks < 0) return InvalidArgument("kv_num_blocks: must be >= 0");
  if (options.num_threads < 0) return InvalidArgument("num_threads: must be >= 0");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  try {
    c10::Device device(options.device);
    if (options.num_threads > 0) at::set_num_threads(options.num_threads);
    // Not at::get_num_threads(): on a reload that reads this thread's count, which a serving engine's step may
    // just have lowered through the process-wide default that new threads start from.
    impl->threads = options.num_threads > 0 ? options.num_threads : at::intraop_default_num_threads();
    ops::SetPoolThreads(impl->threads);
    c10::InferenceMode guard;
    model::LoadObserver observer;
    if (options.on_load_bytes) {
      observer.on_bytes = [&options](uint64_t done, uint64_t total) {
        options.on_load_bytes(static_cast<int64_t>(done), static_cast<int64_t>(total));
      };
    }
    model::MapViewOptions views;
    views.enabled = options.map_weights;
    impl->model = model::LoadModel(model_dir, dtype, device, &observer, views);
    impl->phases.open_seconds = observer.open_seconds;
    impl->phases.copy_seconds = observer.copy_seconds;
    impl->phases.tensor_bytes = static_cast<int64_t>(observer.total_bytes);
    impl->phases.mapped_bytes = static_cast<int64_t>(observer.view_bytes);
    impl->phases.map_fallback = observer.view_fallback;
    impl->options.on_load_bytes = nullptr;  // refers to the caller's state, valid only during Load
    if (options.kv_num_blocks > 0)
      impl->cache = impl->model->AllocateKvCache(options.kv_num_blocks, options.block_size);
  } catch (const std::exception& e) {
    return InvalidArgument(model_dir + ": " + e.what());
  }
  const auto& cfg = impl->model->config();
  impl->eos.assign(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
  impl->arch = cfg.arch_name;
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

Status ModelRunner::AllocateCache(int64_t num_blocks, int32_t block_size) {
  if (num_blocks <= 0) return InvalidArgument("num_blocks: must be positive");
  if (block_size <= 0) return InvalidArgument("block_size: must be positive");
  try {
    c10::InferenceMode guard;
    impl_->resident.reset();          // unlock before the old pool's memory goes
    impl_->cache = model::KvCache{};  // free the old pool before allocating the new one
    impl_->options.block_size = block_size;
    impl_->options.kv_num_blocks = num_blocks;
    impl_->cache = impl_->model->AllocateKvCache(num_blocks, block_size);
  } catch (const std::exception& e) {
    return ResourceExhausted("KV cache of " + std::to_string(num_blocks) + " blocks: " + e.what());
  }
  return Status::Ok();
}

KvCacheLayout ModelRunner::CacheLayout() const {
  const auto& c = impl_->model->config();
  KvCacheLayout layout;
  layout.num_layers = static_cast<int32_t>(c.num_layers);
  if (c.IsMla()) {
    layout.kind = KvCacheKind::kMla;
    layout.kv_lora_rank = static_cast<int32_t>(c.kv_lora_rank);
    layout.qk_rope_head_dim = static_cast<int32_t>(c.qk_rope_head_dim);
  } else {
    layout.kind = KvCacheKind::kMha;
    layout.num_kv_heads = static_cast<int32_t>(c.num_kv_heads);
    layout.head_dim = static_cast<int32_t>(c.head_dim);
  }
  layout.dtype_bytes = impl_->options.dtype == "fp32" || impl_->options.dtype == "float32" ? 4 : 2;
  return layout;
}

int64_t ModelRunner::BytesPerBlock() const {
  return impl_->model->KvBytesPerBlock(impl_->options.block_size);
}
int64_t ModelRunner::NumBlocks() const {
  return impl_->cache.num_blocks;
}
int32_t ModelRunner::BlockSize() const {
  return impl_->options.block_size;
}
int32_t ModelRunner::MaxPositionEmbeddings() const {
  return static_cast<int32_t>(impl_->model->config().max_position_embeddings);
}
int32_t ModelRunner::VocabSize() const {
  return static_cast<int32_t>(impl_->model->config().vocab_size);
}
const std::vector<TokenId>& ModelRunner::EosTokenIds() const {
  return impl_->eos;
}
const std::string& ModelRunner::Architecture() const {
  return impl_->arch;
}
const LoadPhases& ModelRunner::load_phases() const {
  return impl_->phases;
}
int32_t ModelRunner::GemvMaxRows() {
  return static_cast<int32_t>(ops::kGemvMaxRows);
}

void ModelRunner::SetBackgroundThreads(int32_t threads) {
  impl_->background.store(std::max<int32_t>(0, threads));
}

ResidencyReport ModelRunner::MakeResident(const std::string& mode) {
  impl_->resident.reset();
  std::vector<MemoryRange> ranges, mapped;
  auto add = [&](const at::Tensor& t) {
    if (!t.defined() || !t.device().is_cpu() || !t.has_storage()) return;
    const c10::Storage& s = t.storage();
    if (s.data() == nullptr || s.nbytes() == 0) return;
    (model::IsCheckpointView(t) ? mapped : ranges).push_back({s.data(), s.nbytes()});
  };
  for (const at::Tensor& t : impl_->model->Weights()) add(t);
  for (const at::Tensor& t : impl_->cache.k) add(t);
  for (const at::Tensor& t : impl_->cache.v) add(t);
  impl_->resident = ResidentMemory::Make(std::move(ranges), mode);
  ResidencyReport report = impl_->resident->report();
  int64_t mapped_bytes = 0;
  for (const MemoryRange& r : MergeRanges(std::move(mapped))) mapped_bytes += static_cast<int64_t>(r.bytes);
  report.bytes += mapped_bytes;
  report.locked_bytes += mapped_bytes;
  return report;
}

StatusOr<StepResult> ModelRunner::Execute(const ForwardBatch& batch) {
  if (Status s = impl_->Validate(batch); !s.ok()) return s;
  if (batch.chunks.empty()) return StepResult{};
  try {
    c10::InferenceMode guard;
    IntraOpThreadsForStep threads(batch, impl_->StepThreads(), impl_->background.load() > 0);
    std::vector<RowPlan> plans;
    model::ForwardInputs in = impl_->Build(batch, /*all_logits=*/false, &plans);
    if (INFERD_FAULT("forward_throw")) throw std::runtime_error("injected fault forward_throw");
    at::Tensor logits = impl_->model->Forward(in, impl_->cache);  // [num_logit_rows, vocab] float32
    if (INFERD_FAULT("nan_logits")) logits.fill_(std::numeric_limits<float>::quiet_NaN());
    // A NaN or infinite logit (overflow, corrupt weights) would sample garbage: the batch fails instead.
    if (logits.numel() > 0 && !ops::AllFinite(logits)) {
      return Internal("forward pass produced non-finite logits");
    }
    return impl_->Sample(batch, plans, logits);
  } catch (const std::exception& e) {
    return Internal(std::string("forward failed: ") + e.what());
  }
}

StatusOr<std::vector<float>> ModelRunner::ExecuteAllLogits(const ForwardBatch& batch) {
  if (Status s = impl_->Validate(batch); !s.ok()) return s;
  try {
    c10::InferenceMode guard;
    IntraOpThreadsForStep threads(batch, impl_->StepThreads(), impl_->background.load() > 0);
    model::ForwardInputs in = impl_->Build(batch, /*all_logits=*/true, nullptr);
    at::Tensor logits = impl_->model->Forward(in, impl_->cache).to(at::kCPU).contiguous();
    const float* p = logits.data_ptr<float>();
    return std::vector<float>(p, p + logits.numel());
  } catch (const std::exception& e) {
    return Internal(std::string("forward failed: ") + e.what());
  }
}

}  // namespace inferd::worker
