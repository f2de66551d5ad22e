#include "daemon/model_pool.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "daemon/load_progress.h"
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
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto pool = std::unique_ptr<ModelPool>(new ModelPool());
  pool->config_ = config;
  const std::string where = "model '" + config.name + "' (" + config.path + ")";

  const auto t_tok = Clock::now();
  auto tok = Tokenizer::Load(config.path);
  if (!tok.ok()) throw std::runtime_error(where + ": tokenizer: " + tok.status().message());
  pool->tokenizer_ = *tok;
  pool->phases_.emplace_back("tokenizer", seconds_since(t_tok));

  LoadProgress progress(config.name + ": loading " + config.path, [](const std::string& line) { spdlog::info(line); });
  worker::ModelRunnerOptions ro;
  ro.dtype = config.dtype;
  ro.device = config.device;
  ro.num_threads = config.num_threads;
  ro.block_size = config.kv_cache.block_size;
  ro.kv_num_blocks = 0;  // the engine sizes the pool from the memory budget
  ro.on_load_bytes = [&progress](int64_t done, int64_t total) { progress.Update(done, total); };
  ro.map_weights = config.weights == "map" && config.residency == "lock";
  auto runner = worker::ModelRunner::Load(config.path, ro);
  if (!runner.ok()) throw std::runtime_error(where + ": " + runner.status().message());
  progress.Finish();
  spdlog::info("{}: {} loaded ({}, {})", config.name, (*runner)->Architecture(), config.dtype, config.device);
  pool->phases_.emplace_back("open", (*runner)->load_phases().open_seconds);
  pool->phases_.emplace_back("copy", (*runner)->load_phases().copy_seconds);
  const worker::LoadPhases& lp = (*runner)->load_phases();
  if (ro.map_weights) {
    spdlog::info("{}: {} of {} MiB of weights mapped (locked views of the checkpoint), the rest copied", config.name,
                 lp.mapped_bytes >> 20, lp.tensor_bytes >> 20);
  }
  if (!lp.map_fallback.empty()) {
    spdlog::warn(
        "{}: weights: map: {}; the remaining weights were copied (raise the limit: ulimit -l, systemd "
        "LimitMEMLOCK=infinity, or grant CAP_IPC_LOCK)",
        config.name, lp.map_fallback);
  }
  std::vector<TokenId> eos = (*runner)->EosTokenIds();
  if (eos.empty() && pool->tokenizer_->eos_id()) eos.push_back(*pool->tokenizer_->eos_id());

  pool->max_model_len_ = (*runner)->MaxPositionEmbeddings();
  pool->gemv_max_rows_ = worker::ModelRunner::GemvMaxRows();
  pool->checkpoint_id_ =
      config.path + "@" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  worker::ModelRunner* model = runner->get();  // owned by the engine below, which this pool owns
  pool->runner_ = model;
  auto executor = std::make_unique<worker::ModelExecutor>(std::move(*runner));
  auto t = Clock::now();
  auto engine = Engine::Create(ToEngineOptions(config, pool->max_model_len_, eos, first_request_id),
                               std::move(executor), server::TokenizerTextStreamFactory(pool->tokenizer_));
  if (!engine.ok()) throw std::runtime_error(where + ": engine: " + engine.status().message());
  pool->engine_ = std::move(*engine);
  pool->phases_.emplace_back("kv_pool", seconds_since(t));  // allocated and zeroed: every page touched
  spdlog::info("{}: KV pool of {} blocks x {} tokens", config.name, pool->engine_->num_blocks(),
               config.kv_cache.block_size);
  // No request has been submitted yet, so nothing executes on the runner while this runs.
  pool->residency_ = model->MakeResident(config.residency);
  pool->phases_.emplace_back("residency", pool->residency_.seconds);
  const ResidencyReport& r = pool->residency_;
  if (!r.fallback_reason.empty()) {
    spdlog::warn("{}: residency lock: {}; prefaulted instead (the weights may still be evicted under memory pressure)",
                 config.name, r.fallback_reason);
  }
  spdlog::info("{}: weights and KV pool {} ({} MiB) in {:.2f}s", config.name, r.achieved, r.bytes >> 20, r.seconds);
  return pool;
}

WarmupReport ModelPool::WarmUp(int32_t background_threads, const std::function<void()>& before_group) {
  WarmupModel m;
  m.max_model_len = max_model_len_;
  m.vocab_size = tokenizer_->vocab_size();
  m.kv_num_blocks = engine_->num_blocks();
  m.block_size = config_.kv_cache.block_size;
  m.gemv_max_rows = gemv_max_rows_;
  const std::vector<WarmupClass> plan = PlanWarmup(config_, m);
  for (const WarmupClass& k : plan) {
    std::string labels;
    for (const std::string& l : k.labels) labels += (labels.empty() ? "" : ", ") + l;
    spdlog::debug("{}: warm-up {}: {}", config_.name, k.name, labels);
  }
  // Background only while the warm-up runs: the steps after it serve.
  struct Background {
    worker::ModelRunner* runner;
    explicit Background(worker::ModelRunner* r, int32_t threads) : runner(r) { runner->SetBackgroundThreads(threads); }
    ~Background() { runner->SetBackgroundThreads(0); }
  } background(runner_, background_threads);
  WarmupReport report = RunWarmup(*engine_, plan, m.vocab_size, before_group);
  for (const WarmupTiming& t : report.classes) phases_.emplace_back("warmup_" + t.name, t.seconds);
  return report;
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
