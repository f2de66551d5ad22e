// Torch-free parts of model pool lifecycle (reload, SIGHUP), kept apart from ModelPool so they build and test
// without the model engine: checkpoint identity, the memory check before a reload, what a re-read config may
// change at run time, and engine stats merged across the engines a pool runs in turn.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inferd/config.h"
#include "inferd/engine.h"
#include "inferd/status.h"

namespace inferd::daemon {

// "fnv1a64:<16 lowercase hex>" of `bytes`.
std::string Fnv1a64(std::string_view bytes);
// Fnv1a64 of a file's bytes; NOT_FOUND naming the path when it cannot be read.
StatusOr<std::string> HashFile(const std::string& path);

// Bytes of the *.safetensors files in checkpoint directory `dir` (header bytes included: a few KiB).
int64_t CheckpointWeightBytes(const std::string& dir);
// MemAvailable of /proc/meminfo's text, in bytes; none when the line is missing.
std::optional<int64_t> ParseMemAvailable(std::string_view meminfo);
// MemAvailable of this machine now (reads /proc/meminfo); none when unknown.
std::optional<int64_t> MemAvailableNow();

// Whether a second copy of a model fits beside the serving one: `weights` (tensor bytes, as converted to the
// pool's dtype) + `kv` (the pool's KV budget) against `available`. RESOURCE_EXHAUSTED naming the need, what
// is available and the amount missing; OK when `available` is unknown (nothing to check against).
Status CheckReloadMemory(const std::string& pool, int64_t weights, int64_t kv, std::optional<int64_t> available);

// What a config re-read on SIGHUP changes. Only models[].path may change at run time (a pool reload);
// anything else is ignored with a reason naming the key, and the running config stays in force.
struct ConfigChanges {
  std::vector<size_t> reload;        // indices into models whose path changed
  std::vector<std::string> ignored;  // one reason per ignored change
};
ConfigChanges DiffForReload(const Config& running, const Config& next);

// Engine stats of the generations one pool runs in turn (and side by side while a replaced one drains),
// merged into one stream for the pool's metrics: cumulative totals are summed over every generation the pool
// ever ran (so exported counters never go back on a reload), running and waiting requests over the live ones.
// Thread-safe: Record may be called from the engine threads of several generations at once.
class PoolStatsMerger {
 public:
  explicit PoolStatsMerger(std::function<void(const EngineStats&)> sink) : sink_(std::move(sink)) {}
  // Stats of a step of generation `generation`, handed to the sink merged.
  void Record(uint64_t generation, const EngineStats& stats);
  // The generation ended: its requests no longer count as running or waiting; its totals stay.
  void Retire(uint64_t generation);

 private:
  struct Last {
    std::array<int32_t, kNumRequestClasses> running{};
    std::array<int32_t, kNumRequestClasses> waiting{};
    std::array<int32_t, kNumRequestClasses> running_seqs{};
    std::array<int32_t, kNumRequestClasses> waiting_seqs{};
    uint64_t preemptions = 0, prefix_queried = 0, prefix_hit = 0;
    uint64_t realtime_refused = 0, realtime_predicted_late = 0, realtime_late = 0;
  };
  const std::function<void(const EngineStats&)> sink_;
  std::mutex mu_;
  std::map<uint64_t, Last> last_;  // guarded by mu_
};

}  // namespace inferd::daemon
