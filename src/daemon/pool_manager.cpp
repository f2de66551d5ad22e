#include "daemon/pool_manager.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <limits>
#include <stdexcept>

#include "daemon/realtime_yield.h"
#include "daemon/thread_priority.h"

namespace inferd::daemon {

struct PoolManager::Pool {
  ModelPoolConfig config;  // path = the checkpoint serving now
  std::shared_ptr<server::PoolSlot> slot;
  std::shared_ptr<PoolStatsMerger> stats;  // null without metrics
  std::string tokenizer_hash;              // of the first load's tokenizer.json: reloads must match it
  std::mutex op_mu;                        // one reload or drain at a time
  mutable std::mutex mu;                   // guards the fields below
  server::PoolState state = server::PoolState::kLoading;
  server::CheckpointInfo checkpoint;
  std::string last_error;
  uint64_t reloads_ok = 0, reloads_failed = 0;
  double last_reload_seconds = 0, reload_seconds_total = 0;  // request to switch-over
  std::atomic<int32_t> retiring{0};  // replaced generations not yet freed (their reaper still runs)
};

namespace {

// Engines of one pool number requests in disjoint ranges: generation g from (g - 1) * 2^40 + 1.
RequestId FirstRequestId(uint64_t generation) {
  return ((generation - 1) << 40) + 1;
}

int64_t DtypeFactor(const std::string& dtype) {
  return dtype == "fp32" ? 2 : 1;
}  // stored 16-bit -> fp32

using std::chrono::milliseconds;

// A reload's warm-up waits, before each of its steps and request groups, while the serving pool has realtime
// requests queued or running: at most 1 s per wait and 30 s over the whole warm-up, so a reload still
// finishes under steady realtime traffic (docs/lifecycle.md).
constexpr YieldBounds kWarmupYield{milliseconds(1000), milliseconds(30000), milliseconds(2)};
// Freeing a replaced model (unmapping and unlocking its weights and KV pool, malloc_trim) waits the same way,
// once, for at most 1 s, and for a 50 ms window without realtime work: the first request after a switch,
// sent as the ReloadPool call returns, would otherwise run beside the freeing (measured 1.7x its steady
// latency on 2 cores: benchmarks/lifecycle/RESULTS.md).
constexpr YieldBounds kFreeYield{milliseconds(1000), milliseconds(1000), milliseconds(2), milliseconds(50)};
// malloc_trim hands back the pages of every arena's free chunks, the serving engine's too, so the steps after
// it fault their temporaries in again: it waits, at most 2 s, for 200 ms without realtime work (a gap in the
// traffic), else runs at that bound (the memory must come back under steady traffic too).
constexpr YieldBounds kTrimYield{milliseconds(2000), milliseconds(2000), milliseconds(2), milliseconds(200)};
// Steps of a new generation logged at debug level once it serves (their batch and timings: the first
// requests after a switch against the ones after them).
constexpr uint64_t kLoggedServingSteps = 48;

bool HasRealtimeWork(const Engine& engine) {
  const EngineStats s = engine.LastStats();
  const int rt = static_cast<int>(RequestClass::kRealtime);
  return s.running_requests[rt] + s.waiting_requests[rt] > 0;
}

std::string DescribeStep(const EngineStats& s) {
  std::string out =
      fmt::format("{} seqs, {} prefill + {} decode tokens, execute {:.1f} ms, step {:.1f} ms", s.batch_seqs,
                  s.prefill_tokens, s.decode_tokens, s.execute_seconds * 1e3, s.step_seconds * 1e3);
  for (const FinishedRequestStats& f : s.finished) {
    out += fmt::format("; finished {} of {} prompt tokens: queue {:.1f} ms, e2e {:.1f} ms",
                       f.is_recommend ? "Recommend" : "Generate", f.prompt_tokens, f.queue_seconds * 1e3,
                       f.e2e_seconds * 1e3);
  }
  return out;
}

}  // namespace

PoolManager::PoolManager(std::shared_ptr<metrics::EngineCollector> metrics, std::chrono::milliseconds drain_timeout,
                         std::chrono::milliseconds drain_grace, ReloadScheduling reload)
    : metrics_(std::move(metrics)),
      drain_timeout_(drain_timeout),
      drain_grace_(drain_grace),
      reload_(std::move(reload)) {}

PoolManager::~PoolManager() {
  Shutdown();
}

PoolManager::Pool* PoolManager::Find(const std::string& name) const {
  for (const auto& p : pools_) {
    if (p->config.name == name) return p.get();
  }
  return nullptr;
}

std::shared_ptr<const server::PoolGeneration> PoolManager::LoadGeneration(Pool& p, const ModelPoolConfig& config,
                                                                          uint64_t generation,
                                                                          server::CheckpointInfo* info,
                                                                          bool beside_serving) {
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<ModelPool> model;
  std::chrono::duration<double> loaded{};
  WarmupReport warm;
  // Beside a serving model the warm-up yields to its realtime work; `serving` outlives the warm-up (the slot
  // holds it until this load's Swap, and one reload runs at a time).
  std::shared_ptr<RealtimeYield> yield;
  if (beside_serving) {
    const Engine* serving = p.slot->Current()->engine;
    yield = std::make_shared<RealtimeYield>([serving] { return HasRealtimeWork(*serving); }, kWarmupYield);
  }
  auto load_and_warm = [&] {
    model = ModelPool::Load(config, FirstRequestId(generation));
    loaded = std::chrono::steady_clock::now() - t0;
    // Warm-up requests are not counted: the callback forwards only once `counting` is set; before that it
    // holds the engine thread between warm-up steps while the serving pool has realtime work.
    auto counting = std::make_shared<std::atomic<bool>>(false);
    model->engine().SetStatsCallback([stats = p.stats, generation, counting, yield, name = config.name,
                                      logged = uint64_t{0}](const EngineStats& s) mutable {
      if (!counting->load(std::memory_order_acquire)) {
        if (yield) yield->Pause();
        return;
      }
      if (stats) stats->Record(generation, s);
      if (logged < kLoggedServingSteps) {
        ++logged;
        spdlog::debug("{}: generation {} serving step {}: {}", name, generation, logged, DescribeStep(s));
      }
    });
    warm = model->WarmUp(
        beside_serving ? (reload_.warmup_threads > 0 ? reload_.warmup_threads : std::numeric_limits<int32_t>::max())
                       : 0,
        yield ? std::function<void()>([yield] { yield->Pause(); }) : nullptr);
    counting->store(true, std::memory_order_release);
  };
  if (beside_serving) {
    if (Status lowered = RunAtPriority(reload_.priority, load_and_warm); !lowered.ok()) {
      spdlog::warn("{}: reload at control.reload_priority {}: {}; loaded at normal priority", config.name,
                   reload_.priority, lowered.message());
    }
    // The engine thread was started by the lowered thread: it serves from a new one at this thread's priority.
    // At `normal` it already runs at that priority and keeps its thread (and its thread-local kernel scratch,
    // sized by the warm-up).
    if (reload_.priority != "normal") model->engine().RestartThread();
  } else {
    load_and_warm();
  }
  std::vector<std::pair<std::string, double>> phases = model->phases();
  phases.emplace_back("total", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::string detail;
  for (const auto& [name, seconds] : phases)
    detail += fmt::format("{}{} {:.3f}s", detail.empty() ? "" : ", ", name, seconds);
  spdlog::info("{}: {} loaded in {:.2f}s, warmed up in {:.2f}s (generation {}; {})", config.name, config.path,
               loaded.count(), warm.total_seconds, generation, detail);
  if (yield) {
    const YieldReport y = yield->report();
    spdlog::info(
        "{}: the warm-up waited for realtime work before {} of {} steps and groups, {:.2f}s in all ({} "
        "waits ended at the bound{})",
        config.name, y.waited, y.pauses, y.waited_seconds, y.capped,
        y.budget_spent ? "; the 30 s budget was spent" : "");
  }
  StatusOr<std::string> hash = HashFile((std::filesystem::path(config.path) / "config.json").string());
  info->path = config.path;
  info->config_hash = hash.ok() ? *hash : "";
  info->load_seconds = loaded.count();
  info->warmup_seconds = warm.total_seconds;
  info->phases = std::move(phases);
  info->residency = model->residency();
  info->generation = generation;
  info->loaded_at = std::chrono::system_clock::now();
  auto gen = std::make_shared<server::PoolGeneration>();
  gen->engine = &model->engine();
  gen->tokenizer = model->tokenizer();
  gen->max_model_len = model->max_model_len();
  gen->checkpoint_id = model->checkpoint_id();
  gen->owner = std::move(model);
  return gen;
}

void PoolManager::LoadAll(const std::vector<ModelPoolConfig>& configs) {
  for (const ModelPoolConfig& c : configs) {
    auto p = std::make_unique<Pool>();
    p->config = c;
    if (metrics_) {
      std::shared_ptr<metrics::EngineMetrics> recorder = metrics_->AddModel(c.name);
      recorder->set_queue_capacity(RequestClass::kRealtime, c.scheduler.max_waiting_realtime);
      recorder->set_queue_capacity(RequestClass::kComplex, c.scheduler.max_waiting_complex);
      recorder->set_recording(true);
      p->stats = std::make_shared<PoolStatsMerger>([recorder](const EngineStats& s) { recorder->Record(s); });
    }
    StatusOr<std::string> tok = HashFile((std::filesystem::path(c.path) / "tokenizer.json").string());
    p->tokenizer_hash = tok.ok() ? *tok : "";
    server::CheckpointInfo info;
    p->slot = std::make_shared<server::PoolSlot>(LoadGeneration(*p, c, 1, &info, false));
    p->checkpoint = info;
    p->state = server::PoolState::kServing;
    pools_.push_back(std::move(p));
  }
}

std::vector<server::ServingPool> PoolManager::serving_pools() const {
  std::vector<server::ServingPool> out;
  for (const auto& p : pools_) {
    const std::shared_ptr<const server::PoolGeneration> gen = p->slot->Current();
    server::ServingPool s;
    s.name = p->config.name;
    for (const auto& c : p->config.classes) {
      s.classes.push_back(c == "realtime" ? RequestClass::kRealtime : RequestClass::kComplex);
    }
    s.tokenizer = gen->tokenizer;
    s.engine = gen->engine;
    s.limits = p->config.limits;
    s.max_model_len = gen->max_model_len;
    s.checkpoint_id = gen->checkpoint_id;
    s.slot = p->slot;
    out.push_back(std::move(s));
  }
  return out;
}

server::PoolStatus PoolManager::StatusOf(const Pool& p) const {
  server::PoolStatus s;
  s.name = p.config.name;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    s.state = p.state;
    s.checkpoint = p.checkpoint;
    s.last_error = p.last_error;
  }
  s.draining_generations = p.retiring.load();
  return s;
}

std::vector<server::PoolStatus> PoolManager::ListPools() const {
  std::vector<server::PoolStatus> out;
  for (const auto& p : pools_) out.push_back(StatusOf(*p));
  return out;
}

StatusOr<server::PoolStatus> PoolManager::Reload(const std::string& name, const std::string& requested_path) {
  const auto start = std::chrono::steady_clock::now();
  Pool* p = Find(name);
  if (p == nullptr) return NotFound("pool: no model pool named " + Excerpt(name));
  std::unique_lock<std::mutex> op(p->op_mu, std::try_to_lock);
  if (!op.owns_lock()) return FailedPrecondition("model '" + name + "': a reload or drain is already running");
  ModelPoolConfig next = p->config;
  if (!requested_path.empty()) next.path = std::filesystem::absolute(requested_path).lexically_normal().string();
  server::PoolState before;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    before = p->state;
    generation = p->checkpoint.generation + 1;
  }
  auto fail = [&](Status st) -> StatusOr<server::PoolStatus> {
    spdlog::error("{}: reload from {} failed, the serving model is unchanged: {}", name, next.path, st.message());
    std::lock_guard<std::mutex> lock(p->mu);
    p->state = before;
    p->last_error = st.message();
    ++p->reloads_failed;
    return st;
  };
  const std::filesystem::path dir(next.path);
  if (!std::filesystem::exists(dir / "config.json")) {
    return fail(NotFound("model '" + name + "': " + (dir / "config.json").string() +
                         " not found (path must be a Hugging Face checkpoint directory)"));
  }
  StatusOr<std::string> tok = HashFile((dir / "tokenizer.json").string());
  if (!tok.ok()) return fail(NotFound("model '" + name + "': " + tok.status().message()));
  if (*tok != p->tokenizer_hash) {
    return fail(FailedPrecondition("model '" + name + "': " + (dir / "tokenizer.json").string() +
                                   " differs from the serving tokenizer; a reload keeps the tokenizer (restart the "
                                   "daemon to change it)"));
  }
  if (Status mem = CheckReloadMemory(name, CheckpointWeightBytes(next.path) * DtypeFactor(next.dtype),
                                     next.kv_cache.memory_bytes, MemAvailableNow());
      !mem.ok()) {
    return fail(mem);
  }
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->state = before == server::PoolState::kServing ? server::PoolState::kReloading : server::PoolState::kLoading;
  }
  spdlog::info("{}: reloading from {} beside the serving model", name, next.path);
  server::CheckpointInfo info;
  std::shared_ptr<const server::PoolGeneration> gen;
  try {
    gen = LoadGeneration(*p, next, generation, &info, true);
  } catch (const std::exception& e) {
    return fail(InvalidArgument(e.what()));
  }
  std::shared_ptr<const server::PoolGeneration> old = p->slot->Swap(gen);
  const double switch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(p->mu);
    ++p->reloads_ok;
    p->last_reload_seconds = switch_seconds;
    p->reload_seconds_total += switch_seconds;
    p->config.path = next.path;  // also read under mu by Reconfigure
    p->checkpoint = info;
    p->state = server::PoolState::kServing;
    p->last_error.clear();
  }
  spdlog::info("{}: switched to {} (generation {}); the old model finishes its in-flight requests", name, next.path,
               generation);
  Retire(*p, std::move(old), generation - 1);
  return StatusOf(*p);
}

std::vector<PoolLifecycleStats> PoolManager::lifecycle_stats() const {
  std::vector<PoolLifecycleStats> out;
  for (const auto& p : pools_) {
    PoolLifecycleStats s;
    s.model = p->config.name;
    std::lock_guard<std::mutex> lock(p->mu);
    s.load_phases = p->checkpoint.phases;
    s.generation = p->checkpoint.generation;
    s.residency = p->checkpoint.residency.achieved;
    s.resident_bytes = p->checkpoint.residency.bytes;
    s.locked_bytes = p->checkpoint.residency.locked_bytes;
    s.reloads_ok = p->reloads_ok;
    s.reloads_failed = p->reloads_failed;
    s.last_reload_seconds = p->last_reload_seconds;
    s.reload_seconds_total = p->reload_seconds_total;
    out.push_back(std::move(s));
  }
  return out;
}

void PoolManager::Retire(Pool& p, std::shared_ptr<const server::PoolGeneration> old, uint64_t generation) {
  std::lock_guard<std::mutex> lock(reapers_mu_);
  const std::string name = p.config.name;
  std::shared_ptr<PoolStatsMerger> stats = p.stats;
  std::shared_ptr<server::PoolSlot> slot = p.slot;
  p.retiring.fetch_add(1);
  reapers_.emplace_back([this, &p, old = std::move(old), generation, name, stats, slot]() mutable {
    const auto until = std::chrono::steady_clock::now() + drain_timeout_;
    // Only this thread holds `old` once every call that acquired it has ended (the slot hands it out no more).
    while (old.use_count() > 1 && std::chrono::steady_clock::now() < until && !stopping_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (old.use_count() > 1) {
      spdlog::warn("{}: generation {} still has in-flight requests after {:.1f}s; cancelling them", name, generation,
                   std::chrono::duration<double>(drain_timeout_).count());
    }
    old->engine->Drain(std::chrono::milliseconds(0));
    while (old.use_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // Unmapping and unlocking take the kernel a while: not while the serving model runs realtime work.
    RealtimeYield([&slot] { return HasRealtimeWork(*slot->Current()->engine); }, kFreeYield).Pause();
    const auto free_begin = std::chrono::steady_clock::now();
    old.reset();  // frees the model and its KV pool
    const auto freed = std::chrono::steady_clock::now();
    RealtimeYield([&slot] { return HasRealtimeWork(*slot->Current()->engine); }, kTrimYield).Pause();
    const auto trim_begin = std::chrono::steady_clock::now();
    malloc_trim(0);
    const auto free_end = std::chrono::steady_clock::now();
    if (stats) stats->Retire(generation);
    const struct mallinfo2 mi = mallinfo2();  // summed over every arena
    constexpr double kMiB = 1 << 20;
    spdlog::info(
        "{}: generation {} freed in {:.1f} ms (malloc_trim {:.1f} ms); malloc: {:.1f} MiB in use, {:.1f} MiB free "
        "(arena {:.1f} MiB, mmap {:.1f} MiB)",
        name, generation, std::chrono::duration<double, std::milli>(freed - free_begin).count(),
        std::chrono::duration<double, std::milli>(free_end - trim_begin).count(),
        static_cast<double>(mi.uordblks) / kMiB, static_cast<double>(mi.fordblks) / kMiB,
        static_cast<double>(mi.arena) / kMiB, static_cast<double>(mi.hblkhd) / kMiB);
    p.retiring.fetch_sub(1);  // after the memory went back: ListPools' draining_generations reaches 0 then
  });
}

StatusOr<server::PoolStatus> PoolManager::Drain(const std::string& name, std::chrono::milliseconds timeout) {
  Pool* p = Find(name);
  if (p == nullptr) return NotFound("pool: no model pool named " + Excerpt(name));
  std::unique_lock<std::mutex> op(p->op_mu, std::try_to_lock);
  if (!op.owns_lock()) return FailedPrecondition("model '" + name + "': a reload or drain is already running");
  if (timeout.count() == 0) timeout = drain_grace_;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->state == server::PoolState::kDrained) return StatusOf(*p);
    p->state = server::PoolState::kDraining;
  }
  p->slot->StopAccepting();
  spdlog::info("{}: draining for up to {:.1f}s", name, std::chrono::duration<double>(timeout).count());
  p->slot->Current()->engine->Drain(timeout);
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->state = server::PoolState::kDrained;
  }
  spdlog::info("{}: drained; ReloadPool brings it back", name);
  return StatusOf(*p);
}

void PoolManager::Reconfigure(Config* running, const Config& next) {
  // Compared with what serves now: Control reloads may have moved pools off their configured paths.
  for (size_t i = 0; i < running->models.size() && i < pools_.size(); ++i) {
    std::lock_guard<std::mutex> lock(pools_[i]->mu);
    running->models[i].path = pools_[i]->config.path;
  }
  const ConfigChanges changes = DiffForReload(*running, next);
  for (const std::string& why : changes.ignored) spdlog::warn("SIGHUP: {}: ignored: {}", next.source_path, why);
  if (changes.reload.empty()) spdlog::info("SIGHUP: no model path changed");
  for (size_t i : changes.reload) {
    const std::string& name = next.models[i].name;
    StatusOr<server::PoolStatus> r = Reload(name, next.models[i].path);
    if (r.ok()) running->models[i].path = next.models[i].path;
  }
}

void PoolManager::Shutdown() {
  stopping_.store(true);
  std::vector<std::thread> reapers;
  {
    std::lock_guard<std::mutex> lock(reapers_mu_);
    reapers.swap(reapers_);
  }
  for (auto& t : reapers) t.join();
  pools_.clear();
}

}  // namespace inferd::daemon
