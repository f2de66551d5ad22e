// ModelPool: one configured model, loaded and running: tokenizer, model runner behind an Engine thread.
// The daemon is the composition root: the only place that joins worker/ (torch) to engine/ and server/.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/warmup.h"
#include "inferd/config.h"
#include "inferd/engine.h"
#include "inferd/residency.h"
#include "inferd/tokenizer.h"
#include "server/serving_pool.h"

namespace inferd::worker {
class ModelRunner;
}

namespace inferd::daemon {

class ModelPool {
 public:
  // Loads the tokenizer and weights of `config.path` (a progress line per second while that takes long:
  // daemon/load_progress.h), allocates the KV pool from the memory budget, starts the engine thread and keeps
  // the weights and KV pool resident as config.residency says. Throws std::runtime_error naming the pool and
  // the cause. The engine numbers its requests from `first_request_id` (disjoint per load of one pool).
  static std::unique_ptr<ModelPool> Load(const ModelPoolConfig& config, RequestId first_request_id = 1);

  // Runs config.warmup's shape classes (daemon/warmup.h) so the first real request of each shape costs about
  // what a steady-state one does; appends a warmup_<class> phase per class. Nothing when warm-up is disabled.
  // `background_threads` > 0: beside a serving model (a reload), its steps run on at most that many intra-op
  // threads and off the shared ops work pool (worker::ModelRunner::SetBackgroundThreads), until it returns.
  // `before_group` as RunWarmup's.
  WarmupReport WarmUp(int32_t background_threads = 0, const std::function<void()>& before_group = nullptr);

  // Phases so far, in order (tokenizer, open, copy, kv_pool, residency, then warmup_<class> after WarmUp),
  // seconds.
  const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }
  const ResidencyReport& residency() const { return residency_; }

  // The view the gRPC server serves from; the engine stays owned here.
  server::ServingPool serving_pool() const;
  Engine& engine() { return *engine_; }
  const std::string& name() const { return config_.name; }
  const ModelPoolConfig& config() const { return config_; }
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }
  int32_t max_model_len() const { return max_model_len_; }
  const std::string& checkpoint_id() const { return checkpoint_id_; }

 private:
  ModelPoolConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
  worker::ModelRunner* runner_ = nullptr;  // owned by engine_ (through its executor)
  int32_t max_model_len_ = 0;
  std::string checkpoint_id_;  // path + load time: new on every load
  int32_t gemv_max_rows_ = 0;
  std::vector<std::pair<std::string, double>> phases_;
  ResidencyReport residency_;
};

}  // namespace inferd::daemon
