#include "daemon/model_pool.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "inferd/model_runner.h"
#include "server/text_stream.h"
#include "worker/model_executor.h"

namespace inferd::daemon {
namespace {

RequestClass ParseClass(const std::string& name) {
  return name == "realtime" ? RequestClass::kRealtime : RequestClass::kComplex;
}

EngineOptions ToEngineOptions(const ModelPoolConfig& c, int32_t max_model_len, const std::vector<TokenId>& eos,
                              RequestId first_request_id) {
  EngineOptions o;
  o.first_request_id = first_request_id;
  o.kv_cache.block_size = c.kv_cache.block_size;
  o.kv_cache.memory_budget_bytes = c.kv_cache.memory_bytes;
  o.kv_cache.enable_prefix_caching = c.kv_cache.prefix_caching;
  o.scheduler.max_num_batched_tokens = c.scheduler.max_batched_tokens;
  o.scheduler.max_running = c.scheduler.max_running;
  o.scheduler.max_prefill_chunk_tokens = c.scheduler.prefill_chunk_tokens;
  o.scheduler.max_waiting_realtime = c.scheduler.max_waiting_realtime;
  o.scheduler.max_waiting_complex = c.scheduler.max_waiting_complex;
  o.scheduler.realtime_default_deadline =
      std::chrono::milliseconds(static_cast<int64_t>(c.scheduler.realtime_deadline_ms));
  o.scheduler.complex_max_wait = std::chrono::milliseconds(static_cast<int64_t>(c.scheduler.complex_max_wait_ms));
  o.scheduler.realtime_step_budget =
      std::chrono::microseconds(static_cast<int64_t>(c.scheduler.realtime_step_budget_ms * 1000.0));
  o.scheduler.complex_min_share = c.scheduler.complex_min_share;
  o.scheduler.realtime_max_request_share = c.scheduler.realtime_max_request_share;
  o.scheduler.realtime_refuse_unmeetable = c.scheduler.realtime_overload == "refuse";
  o.scheduler.max_model_len = max_model_len;
  o.scheduler.eos_token_ids = eos;
  o.scheduler.max_candidates = c.limits.max_candidates;
  return o;
}

}  // namespace

std::unique_ptr<ModelPool> ModelPool::Load(const ModelPoolConfig& config, RequestId first_request_id) {
  auto pool = std::unique_ptr<ModelPool>(new ModelPool());
  pool->config_ = config;
  const std::string where = "model '" + config.name + "' (" + config.path + ")";

  auto tok = Tokenizer::Load(config.path);
  if (!tok.ok()) throw std::runtime_error(where + ": tokenizer: " + tok.status().message());
  pool->tokenizer_ = *tok;

  worker::ModelRunnerOptions ro;
  ro.dtype = config.dtype;
  ro.device = config.device;
  ro.num_threads = config.num_threads;
  ro.block_size = config.kv_cache.block_size;
  ro.kv_num_blocks = 0;  // the engine sizes the pool from the memory budget
  auto runner = worker::ModelRunner::Load(config.path, ro);
  if (!runner.ok()) throw std::runtime_error(where + ": " + runner.status().message());
  spdlog::info("{}: {} loaded ({}, {})", config.name, (*runner)->Architecture(), config.dtype, config.device);
  std::vector<TokenId> eos = (*runner)->EosTokenIds();
  if (eos.empty() && pool->tokenizer_->eos_id()) eos.push_back(*pool->tokenizer_->eos_id());

  pool->max_model_len_ = (*runner)->MaxPositionEmbeddings();
  pool->checkpoint_id_ = config.path + "@" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  auto executor = std::make_unique<worker::ModelExecutor>(std::move(*runner));
  auto engine = Engine::Create(ToEngineOptions(config, pool->max_model_len_, eos, first_request_id), std::move(executor),
                               server::TokenizerTextStreamFactory(pool->tokenizer_));
  if (!engine.ok()) throw std::runtime_error(where + ": engine: " + engine.status().message());
  pool->engine_ = std::move(*engine);
  spdlog::info("{}: KV pool of {} blocks x {} tokens", config.name, pool->engine_->num_blocks(),
               config.kv_cache.block_size);
  return pool;
}

std::chrono::duration<double> ModelPool::WarmUp() {
  const auto start = std::chrono::steady_clock::now();
  const int32_t vocab = tokenizer_->vocab_size();
  auto prompt = [&](int32_t n, int32_t salt) {
    std::vector<TokenId> ids(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 7919 + salt * 104729) % vocab;
    return ids;
  };
  auto wait_all = [](std::vector<SubmitResult>& submitted) {
    for (auto& s : submitted) {
      if (!s.status.ok()) throw std::runtime_error("warm-up request rejected: " + s.status.ToString());
      const RequestOutcome& out = s.stream->Wait();
      if (!out.status.ok()) throw std::runtime_error("warm-up request failed: " + out.status.ToString());
    }
  };
  // A chunked prefill (longer than one chunk when the model allows) followed by single decodes; then batched
  // decodes and a Recommend. Three rounds: the step-cost model behind realtime admission learns from them,
  // and the Recommend carries a far deadline so admission never refuses it while the model is still coarse.
  const int32_t long_len =
      std::min(config_.scheduler.prefill_chunk_tokens + 8, std::max(8, max_model_len_ - 8));
  std::vector<SubmitResult> runs;
  for (int32_t round = 0; round < 3; ++round) {
  GenerateRequest g;
  g.prompt = prompt(long_len, 1 + round);
  g.max_tokens = 4;
  g.ignore_eos = true;
  runs.push_back(engine_->Submit(g));
  wait_all(runs);
  // Batched decodes at a few batch sizes, then a Recommend (shared context, several candidates).
  for (int32_t batch : {2, 4, 8}) {
    runs.clear();
    for (int32_t i = 0; i < batch; ++i) {
      GenerateRequest r;
      r.prompt = prompt(16 + i, 100 + batch * 10 + i + round * 1000);
      r.max_tokens = 3;
      r.ignore_eos = true;
      runs.push_back(engine_->Submit(r));
    }
    wait_all(runs);
  }
  RecommendRequest rec;
  rec.context = prompt(48, 7 + round);
  for (int32_t i = 0; i < 8; ++i) rec.candidates.push_back(prompt(4 + i % 3, 200 + i));
  rec.deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  runs.clear();
  runs.push_back(engine_->Submit(rec));
  wait_all(runs);
  }
  return std::chrono::steady_clock::now() - start;
}

server::ServingPool ModelPool::serving_pool() const {
  server::ServingPool p;
  p.name = config_.name;
  for (const auto& c : config_.classes) p.classes.push_back(ParseClass(c));
  p.tokenizer = tokenizer_;
  p.engine = engine_.get();
  p.limits = config_.limits;
  p.max_model_len = max_model_len_;
  p.checkpoint_id = checkpoint_id_;
  return p;
}

}  // namespace inferd::daemon
