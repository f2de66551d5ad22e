#include "server/rpc_stats.h"

namespace inferd::server {
namespace {
constexpr size_t kClassSlots = kNumRequestClasses + 1;
}

RpcStatsRecorder::RpcStatsRecorder(std::vector<std::string> pool_names, std::vector<std::string> rule_names)
    : pool_names_(std::move(pool_names)),
      rule_names_(std::move(rule_names)),
      rpcs_(std::make_unique<std::atomic<uint64_t>[]>((pool_names_.size() + 1) * kClassSlots * kNumRpcMethods *
                                                      kNumGrpcCodes)),
      classified_(std::make_unique<std::atomic<uint64_t>[]>(std::max<size_t>(1, pool_names_.size()) *
                                                            std::max<size_t>(1, rule_names_.size()) *
                                                            kNumRequestClasses)) {}

size_t RpcStatsRecorder::RpcIndex(size_t pool, size_t cls, RpcMethod method, int code) const {
  return ((pool * kClassSlots + cls) * kNumRpcMethods + static_cast<size_t>(method)) * kNumGrpcCodes +
         static_cast<size_t>(code);
}

void RpcStatsRecorder::RecordRpc(std::optional<size_t> pool, std::optional<RequestClass> cls, RpcMethod method,
                                 int code) {
  if (code < 0 || code >= kNumGrpcCodes) code = 2;  // UNKNOWN
  const size_t p = pool && *pool < pool_names_.size() ? *pool : pool_names_.size();
  const size_t c = cls ? static_cast<size_t>(*cls) : kNumRequestClasses;
  rpcs_[RpcIndex(p, c, method, code)].fetch_add(1, std::memory_order_relaxed);
}

void RpcStatsRecorder::RecordClass(size_t pool, size_t rule, RequestClass cls) {
  if (pool >= pool_names_.size() || rule >= rule_names_.size()) return;
  const size_t i = (pool * rule_names_.size() + rule) * kNumRequestClasses + static_cast<size_t>(cls);
  classified_[i].fetch_add(1, std::memory_order_relaxed);
}

RpcStats RpcStatsRecorder::Snapshot() const {
  RpcStats s;
  s.pool_names = pool_names_;
  s.rpcs.resize(pool_names_.size() + 1);
  for (size_t p = 0; p <= pool_names_.size(); ++p) {
    for (size_t c = 0; c < kClassSlots; ++c) {
      for (int m = 0; m < kNumRpcMethods; ++m) {
        for (int code = 0; code < kNumGrpcCodes; ++code) {
          s.rpcs[p][c][static_cast<size_t>(m)][static_cast<size_t>(code)] =
              rpcs_[RpcIndex(p, c, static_cast<RpcMethod>(m), code)].load(std::memory_order_relaxed);
        }
      }
    }
  }
  s.rule_names = rule_names_;
  s.classified.assign(pool_names_.size(), std::vector<std::array<uint64_t, kNumRequestClasses>>(rule_names_.size()));
  for (size_t p = 0; p < pool_names_.size(); ++p) {
    for (size_t r = 0; r < rule_names_.size(); ++r) {
      for (int c = 0; c < kNumRequestClasses; ++c) {
        const size_t i = (p * rule_names_.size() + r) * kNumRequestClasses + static_cast<size_t>(c);
        s.classified[p][r][static_cast<size_t>(c)] =
            classified_[i].load(std::memory_order_relaxed);
      }
    }
  }
  return s;
}

}  // namespace inferd::server
