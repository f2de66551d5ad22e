// PoolController: what the Control service asks of whoever owns the model pools (the daemon, which alone can
// load checkpoints). Plain types: no gRPC, no torch. Thread-safe: methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "inferd/residency.h"
#include "inferd/status.h"

namespace inferd::server {

enum class PoolState { kLoading, kServing, kReloading, kDraining, kDrained };

struct CheckpointInfo {
  std::string path;
  std::string config_hash;                            // "fnv1a64:<16 hex>" of config.json
  std::chrono::system_clock::time_point loaded_at{};  // when it started serving
  double load_seconds = 0.0;
  double warmup_seconds = 0.0;
  uint64_t generation = 0;  // 1 = first load; +1 per successful reload
  // Load phases in order, seconds each (tokenizer, open, copy, kv_pool, residency, warmup_<class>..., total).
  std::vector<std::pair<std::string, double>> phases;
  ResidencyReport residency;  // of the weights and KV pool
};

struct PoolStatus {
  std::string name;
  PoolState state = PoolState::kLoading;
  CheckpointInfo checkpoint;         // generation 0 = none yet
  int32_t draining_generations = 0;  // replaced models still finishing in-flight requests
  std::string last_error;            // the last failed reload's reason
};

// The grpc.health.v1 service name of pool `name`.
std::string PoolHealthService(const std::string& name);

class PoolController {
 public:
  virtual ~PoolController() = default;
  virtual std::vector<PoolStatus> ListPools() const = 0;
  // Loads and warms `path` (empty = the pool's current path) beside the serving model and switches to it;
  // returns after the switch. NOT_FOUND for an unknown pool or a missing checkpoint; RESOURCE_EXHAUSTED
  // naming the bytes missing; INVALID_ARGUMENT for an unusable checkpoint; FAILED_PRECONDITION while the
  // pool already reloads. On any error the serving model is untouched.
  virtual StatusOr<PoolStatus> Reload(const std::string& pool, const std::string& path) = 0;
  // Refuses new requests to the pool, then waits for in-flight ones until `timeout` and cancels the rest.
  virtual StatusOr<PoolStatus> Drain(const std::string& pool, std::chrono::milliseconds timeout) = 0;
};

}  // namespace inferd::server
