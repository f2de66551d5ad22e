// Front-end and business-tier series from snapshots the gRPC server keeps (inferd/serving_stats.h),
// taken on each scrape.
//
// Series (labels; cardinality):
//   inferd_grpc_requests_total {model, class, method, code}: every RPC by its final gRPC code. model and
//     class are "none" when the RPC was refused before it was routed or classified. OK is always exported
//     for each pool, class and method; other codes once seen: at most (pools + 1) x 3 x 4 x 17.
//   inferd_classifications_total {model, rule, class}: latency-class decisions, pools x 4 x 2.
//   inferd_recommendation_impressions_total, inferd_recommendation_clicks_total,
//     inferd_recommendation_conversions_total {model, class}: Feedback counts attributed to the request they
//     name, pools x 2 each.
//   inferd_quality_score {model, class}: histogram of Feedback quality scores (0..1), pools x 2.
//   With experiment variants configured, these four carry a `variant` label too: x (variants + 1).
//   inferd_feedback_unknown_request_total: Feedback events naming a request id not remembered.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <vector>

#include "inferd/serving_stats.h"

namespace inferd::metrics {

class ServingCollector : public prometheus::Collectable {
 public:
  // Both are called on every scrape, from the metrics thread; they must be thread-safe.
  ServingCollector(std::function<RpcStats()> rpc, std::function<BusinessStats()> business);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<RpcStats()> rpc_;
  std::function<BusinessStats()> business_;
};

}  // namespace inferd::metrics
