// Edge-tier series from the response cache's and the upstreams' plain stats (inferd/edge_stats.h), taken
// on each scrape.
//
// Series (labels; cardinality):
//   without labels, when the cache is enabled: inferd_response_cache_hits_total, _misses_total (expired
//     entries included), _evictions_total, _expirations_total, _inserts_total; gauges
//     inferd_response_cache_bytes, inferd_response_cache_entries, inferd_response_cache_max_bytes.
//   {upstream} (one per configured upstream): inferd_upstream_calls_total (each retry counts),
//     inferd_upstream_failures_total (calls ending UNAVAILABLE), inferd_upstream_retries_total,
//     inferd_upstream_no_healthy_replica_total, inferd_upstream_breaker_rejected_total,
//     inferd_upstream_healthy_replicas, inferd_upstream_replicas.
//   {upstream, state} (x 3): inferd_upstream_breaker_state (1 for the current state, 0 for the others),
//     inferd_upstream_breaker_transitions_total (transitions into the state).
//   {upstream, replica} (replicas: the configured addresses or what the DNS name resolved to):
//     inferd_upstream_replica_healthy, inferd_upstream_replica_outstanding_calls,
//     inferd_upstream_replica_calls_total, inferd_upstream_replica_ejections_total.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <optional>
#include <vector>

#include "inferd/edge_stats.h"

namespace inferd::metrics {

class EdgeCollector : public prometheus::Collectable {
 public:
  // Both are called on every scrape, from the metrics thread; they must be thread-safe. `cache` returns
  // nullopt when no cache is configured (its series are then absent).
  EdgeCollector(std::function<std::optional<ResponseCacheStats>()> cache,
                std::function<std::vector<UpstreamStats>()> upstreams);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<std::optional<ResponseCacheStats>()> cache_;
  std::function<std::vector<UpstreamStats>()> upstreams_;
};

}  // namespace inferd::metrics
