#include "inferd/serving_stats.h"

#include <stdexcept>

#include "inferd/edge_stats.h"
#include "inferd/status.h"

namespace inferd {

const char* BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

const char* RpcMethodName(RpcMethod method) {
  switch (method) {
    case RpcMethod::kGenerate:
      return "Generate";
    case RpcMethod::kGenerateStream:
      return "GenerateStream";
    case RpcMethod::kRecommend:
      return "Recommend";
    case RpcMethod::kFeedback:
      return "Feedback";
  }
  return "unknown";
}

const char* GrpcCodeName(int code) {
  if (code == 16) return "UNAUTHENTICATED";
  if (code < 0 || code > 16) return "UNKNOWN";
  return StatusCodeName(static_cast<StatusCode>(code));
}

const ModelBusinessStats& BusinessStats::At(const std::string& pool, RequestClass cls) const {
  for (size_t i = 0; i < pool_names.size() && i < per_class.size(); ++i) {
    if (pool_names[i] == pool) return per_class[i][static_cast<size_t>(cls)];
  }
  throw std::out_of_range("BusinessStats: no pool named '" + pool + "'");
}

}  // namespace inferd
