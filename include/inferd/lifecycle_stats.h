// Plain stats of model pool lifecycle (loads, reloads, residency) and of the Control service, for metrics/
// (metrics/lifecycle_collector.h). No Prometheus, no gRPC.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "inferd/serving_stats.h"  // kNumGrpcCodes

namespace inferd {

// Methods of inferd.v1.Control, in ControlStats order.
inline constexpr std::array<const char*, 4> kControlMethods = {"ListPools", "ReloadPool", "DrainPool", "AbortRequest"};

struct ControlStats {
  // Calls by method (kControlMethods) and gRPC status code, refusals by the access policy included.
  std::array<std::array<uint64_t, kNumGrpcCodes>, kControlMethods.size()> calls{};
};

struct PoolLifecycleStats {
  std::string model;
  // The serving load's phases in order: tokenizer, open, copy, kv_pool, residency, warmup_<class>..., total.
  std::vector<std::pair<std::string, double>> load_phases;
  uint64_t generation = 0;
  std::string residency;       // locked | prefaulted | none
  int64_t resident_bytes = 0;  // weights and KV pool covered
  int64_t locked_bytes = 0;
  uint64_t reloads_ok = 0;          // switched to a new model
  uint64_t reloads_failed = 0;      // refused or failed to load; the old model kept serving
  double last_reload_seconds = 0;   // the latest successful reload: request to switch-over
  double reload_seconds_total = 0;  // summed over successful reloads
};

}  // namespace inferd
