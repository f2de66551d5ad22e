// RpcStatsRecorder: RPCs by (route, class, method, final gRPC code) and class decisions by rule, as
// lock-free counters fixed at construction. metrics/ exports snapshots (inferd/serving_stats.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inferd/request_types.h"
#include "inferd/serving_stats.h"

namespace inferd::server {

class RpcStatsRecorder {
 public:
  // `rule_names`: what may decide a class (RpcStats::rule_names), indexed by RecordClass's `rule`.
  RpcStatsRecorder(std::vector<std::string> pool_names, std::vector<std::string> rule_names);

  // `pool` unset: refused before routing; `cls` unset: before classification. `code` in 0..16.
  void RecordRpc(std::optional<size_t> pool, std::optional<RequestClass> cls, RpcMethod method, int code);
  void RecordClass(size_t pool, size_t rule, RequestClass cls);
  RpcStats Snapshot() const;

 private:
  size_t RpcIndex(size_t pool, size_t cls, RpcMethod method, int code) const;

  const std::vector<std::string> pool_names_;
  const std::vector<std::string> rule_names_;
  std::unique_ptr<std::atomic<uint64_t>[]> rpcs_;        // [pool + 1][class + 1][method][code]
  std::unique_ptr<std::atomic<uint64_t>[]> classified_;  // [pool][rule][class]
};

// The tag a handler fills in as it learns where a request goes; RecordRpc reads it once at the end.
struct RpcTag {
  std::optional<size_t> pool;  // route index: local pools first, then upstreams
  std::optional<RequestClass> cls;
};

}  // namespace inferd::server
