// PoolManager: owns every local model pool through its lifecycle (docs/lifecycle.md): the first load,
// zero-downtime reloads (Control.ReloadPool, SIGHUP), drains, and freeing replaced models once their
// in-flight requests finished. Each pool serves through a server::PoolSlot; a reload loads and warms the new
// model beside the old one, swaps the slot (new requests go to the new model at once), and a reaper thread
// frees the old model when no request holds it any more (or cancels what is left after
// control.drain_timeout_seconds).
// Threading: Control RPC threads and the signal loop call in; one reload or drain per pool at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/lifecycle_util.h"
#include "daemon/model_pool.h"
#include "inferd/config.h"
#include "inferd/lifecycle_stats.h"
#include "metrics/engine_collector.h"
#include "server/pool_controller.h"
#include "server/serving_pool.h"

namespace inferd::daemon {

class PoolManager final : public server::PoolController {
 public:
  // How a reload's load and warm-up share the cores with the serving model (control.reload_priority,
  // control.reload_warmup_threads): they run on a thread at `priority` (daemon/thread_priority.h), the
  // warm-up's steps on at most `warmup_threads` intra-op threads (0 = the pool's) and off the shared ops work
  // pool; the new engine's thread is restarted at normal priority before the switch. The first load at
  // start-up runs at normal priority (nothing serves yet).
  struct ReloadScheduling {
    std::string priority = "low";
    int32_t warmup_threads = 1;
  };
  // `metrics` may be null (metrics off).
  PoolManager(std::shared_ptr<metrics::EngineCollector> metrics, std::chrono::milliseconds drain_timeout,
              std::chrono::milliseconds drain_grace, ReloadScheduling reload);
  ~PoolManager() override;

  // Loads, warms and registers each pool in order (state LOADING until it is warm). Throws
  // std::runtime_error naming the pool, as ModelPool::Load does.
  void LoadAll(const std::vector<ModelPoolConfig>& pools);
  // One per pool, in config order, with its slot set; valid for this object's lifetime.
  std::vector<server::ServingPool> serving_pools() const;

  std::vector<server::PoolStatus> ListPools() const override;
  StatusOr<server::PoolStatus> Reload(const std::string& pool, const std::string& path) override;
  StatusOr<server::PoolStatus> Drain(const std::string& pool, std::chrono::milliseconds timeout) override;

  // SIGHUP: reloads the pools of `next` whose path differs from the one serving now and logs every other
  // change against `running` as ignored; `running`'s paths follow what serves.
  void Reconfigure(Config* running, const Config& next);
  // Per pool: the serving load's phases and residency, reload counts and times. Thread-safe (metrics thread).
  std::vector<PoolLifecycleStats> lifecycle_stats() const;
  // Stops every engine (anything still queued ends CANCELLED) and joins the reapers.
  void Shutdown();

 private:
  struct Pool;
  Pool* Find(const std::string& name) const;
  server::PoolStatus StatusOf(const Pool& p) const;
  // Loads and warms `config` as generation `generation` of `p`, wired to its metrics; `beside_serving`: as
  // reload_ says (a reload), else on the calling thread.
  std::shared_ptr<const server::PoolGeneration> LoadGeneration(Pool& p, const ModelPoolConfig& config,
                                                               uint64_t generation, server::CheckpointInfo* info,
                                                               bool beside_serving);
  // Frees `old` on a reaper thread once nothing holds it (or after drain_timeout_, cancelling the rest).
  void Retire(Pool& p, std::shared_ptr<const server::PoolGeneration> old, uint64_t generation);

  const std::shared_ptr<metrics::EngineCollector> metrics_;
  const std::chrono::milliseconds drain_timeout_;
  const std::chrono::milliseconds drain_grace_;
  const ReloadScheduling reload_;
  std::vector<std::unique_ptr<Pool>> pools_;  // fixed after LoadAll
  std::mutex reapers_mu_;
  std::vector<std::thread> reapers_;  // guarded by reapers_mu_
  std::atomic<bool> stopping_{false};
};

}  // namespace inferd::daemon
