// Plain stats the gRPC front end keeps (DESIGN.md section 6): RPCs by method and status code, class
// decisions by rule, and the business counters fed by Feedback. server/ records them; metrics/ exports
// snapshots. Nothing here knows gRPC or Prometheus.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "inferd/request_types.h"

namespace inferd {

enum class RpcMethod : int32_t { kGenerate = 0, kGenerateStream, kRecommend, kFeedback };
inline constexpr int kNumRpcMethods = 4;
const char* RpcMethodName(RpcMethod method);  // "Generate", "GenerateStream", "Recommend", "Feedback"

// gRPC status codes 0..16, as numbered by gRPC (and inferd::StatusCode).
inline constexpr int kNumGrpcCodes = 17;
const char* GrpcCodeName(int code);  // "OK", "CANCELLED", ..., "UNAUTHENTICATED"

// Counters since start. Index `pools` (= pool_names.size()) and class index kNumRequestClasses stand for
// "not known": an RPC refused before it was routed or classified.
struct RpcStats {
  std::vector<std::string> pool_names;
  // rpcs[pool][class][method][code]; sizes pool_names.size() + 1, kNumRequestClasses + 1.
  std::vector<std::array<std::array<std::array<uint64_t, kNumGrpcCodes>, kNumRpcMethods>, kNumRequestClasses + 1>> rpcs;
  // What decided a latency class: the classification rules by name in config order, then "class_hint",
  // then "default:<rpc>" (classify::Classifier's sources; bounded by the config).
  std::vector<std::string> rule_names;
  // classified[pool][rule][class]: decisions of requests that were routed to a local pool.
  std::vector<std::vector<std::array<uint64_t, kNumRequestClasses>>> classified;
};

// Upper bounds (inclusive) of the quality-score histogram buckets; scores are in [0, 1].
inline constexpr std::array<double, 10> kQualityBucketBounds = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};

struct ModelBusinessStats {
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  uint64_t conversions = 0;
  uint64_t quality_count = 0;
  double quality_sum = 0.0;
  // quality_buckets[i] counts scores s with bound[i-1] < s <= bound[i] (not cumulative).
  std::array<uint64_t, kQualityBucketBounds.size()> quality_buckets{};
};

// Feedback counters since start, attributed to the model and class of the request a Feedback names.
struct BusinessStats {
  std::vector<std::string> pool_names;
  // per_class[pool][class], over all variants
  std::vector<std::array<ModelBusinessStats, kNumRequestClasses>> per_class;
  // The configured experiment variants; when not empty, per_variant[slot][pool][class] with slot 0 for
  // requests without a listed variant and slot i + 1 for variants[i].
  std::vector<std::string> variants;
  std::vector<std::vector<std::array<ModelBusinessStats, kNumRequestClasses>>> per_variant;
  uint64_t unknown_request_feedback = 0;  // Feedback events whose request_id is not (or no longer) remembered

  const ModelBusinessStats& At(const std::string& pool, RequestClass cls) const;  // throws std::out_of_range
};

}  // namespace inferd
