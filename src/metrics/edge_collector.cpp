#include "metrics/edge_collector.h"

#include "metrics/family_builder.h"

namespace inferd::metrics {
namespace {

using prometheus::MetricType;

// One family with one unlabelled series.
prometheus::MetricFamily Single(const char* name, const char* help, MetricType type, double value) {
  FamilyBuilder f(name, help, type);
  f.Add({}, value);
  return f.Take();
}

// One family with a series per upstream.
template <typename Value>
prometheus::MetricFamily PerUpstream(const char* name, const char* help, MetricType type,
                                     const std::vector<UpstreamStats>& ups, Value value) {
  FamilyBuilder f(name, help, type);
  for (const UpstreamStats& u : ups) f.Add({{"upstream", u.name}}, static_cast<double>(value(u)));
  return f.Take();
}

// One family with a series per replica of each upstream.
template <typename Value>
prometheus::MetricFamily PerReplica(const char* name, const char* help, MetricType type,
                                    const std::vector<UpstreamStats>& ups, Value value) {
  FamilyBuilder f(name, help, type);
  for (const UpstreamStats& u : ups) {
    for (const UpstreamReplicaStats& r : u.replicas) {
      f.Add({{"upstream", u.name}, {"replica", r.address}}, static_cast<double>(value(r)));
    }
  }
  return f.Take();
}

}  // namespace

EdgeCollector::EdgeCollector(std::function<std::optional<ResponseCacheStats>()> cache,
                             std::function<std::vector<UpstreamStats>()> upstreams)
    : cache_(std::move(cache)), upstreams_(std::move(upstreams)) {}

std::vector<prometheus::MetricFamily> EdgeCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  if (const std::optional<ResponseCacheStats> c = cache_ ? cache_() : std::nullopt) {
    const auto counter = MetricType::Counter;
    const auto gauge = MetricType::Gauge;
    out.push_back(Single("inferd_response_cache_hits_total", "Realtime Recommends answered from the response cache.",
                         counter, static_cast<double>(c->hits)));
    out.push_back(Single("inferd_response_cache_misses_total",
                         "Response cache lookups that found no live entry (expired entries included).", counter,
                         static_cast<double>(c->misses)));
    out.push_back(Single("inferd_response_cache_evictions_total",
                         "Response cache entries removed to make room (least recently used first).", counter,
                         static_cast<double>(c->evictions)));
    out.push_back(Single("inferd_response_cache_expirations_total",
                         "Response cache entries found past their TTL and removed.", counter,
                         static_cast<double>(c->expirations)));
    out.push_back(Single("inferd_response_cache_inserts_total", "Rankings stored in the response cache.", counter,
                         static_cast<double>(c->inserts)));
    out.push_back(Single("inferd_response_cache_bytes", "Bytes the response cache holds now.", gauge,
                         static_cast<double>(c->bytes)));
    out.push_back(Single("inferd_response_cache_entries", "Entries the response cache holds now.", gauge,
                         static_cast<double>(c->entries)));
    out.push_back(Single("inferd_response_cache_max_bytes", "Configured bound of the response cache (cache.max_bytes).",
                         gauge, static_cast<double>(c->max_bytes)));
  }

  const std::vector<UpstreamStats> ups = upstreams_ ? upstreams_() : std::vector<UpstreamStats>{};
  if (ups.empty()) return out;
  const auto counter = MetricType::Counter;
  const auto gauge = MetricType::Gauge;
  out.push_back(PerUpstream("inferd_upstream_calls_total", "Calls to an upstream daemon (each retry counts).", counter,
                            ups, [](const UpstreamStats& u) { return u.calls_total; }));
  out.push_back(PerUpstream("inferd_upstream_failures_total", "Upstream calls that ended UNAVAILABLE.", counter, ups,
                            [](const UpstreamStats& u) { return u.failures_total; }));
  out.push_back(PerUpstream("inferd_upstream_retries_total", "Upstream calls retried on another replica.", counter, ups,
                            [](const UpstreamStats& u) { return u.retries_total; }));
  out.push_back(PerUpstream("inferd_upstream_no_healthy_replica_total",
                            "Forwarded requests refused because no replica passed its health checks.", counter, ups,
                            [](const UpstreamStats& u) { return u.no_replica_total; }));
  out.push_back(PerUpstream("inferd_upstream_breaker_rejected_total",
                            "Forwarded requests refused at once by an open circuit breaker.", counter, ups,
                            [](const UpstreamStats& u) { return u.breaker.rejected_total; }));
  out.push_back(PerUpstream("inferd_upstream_replicas", "Replicas of an upstream.", gauge, ups,
                            [](const UpstreamStats& u) { return u.replicas.size(); }));
  out.push_back(PerUpstream("inferd_upstream_healthy_replicas", "Replicas of an upstream passing their health checks.",
                            gauge, ups, [](const UpstreamStats& u) {
                              size_t n = 0;
                              for (const UpstreamReplicaStats& r : u.replicas) n += r.healthy ? 1 : 0;
                              return n;
                            }));
  {
    FamilyBuilder state("inferd_upstream_breaker_state",
                        "Circuit breaker state of an upstream: 1 for the current state, 0 for the others.", gauge);
    FamilyBuilder moves("inferd_upstream_breaker_transitions_total",
                        "Circuit breaker transitions into a state (half_open: one probe let through each).", counter);
    for (const UpstreamStats& u : ups) {
      const uint64_t into[kNumBreakerStates] = {u.breaker.closed_total, u.breaker.opened_total,
                                                u.breaker.half_opened_total};
      for (int s = 0; s < kNumBreakerStates; ++s) {
        const auto st = static_cast<BreakerState>(s);
        state.Add({{"upstream", u.name}, {"state", BreakerStateName(st)}}, u.breaker.state == st ? 1.0 : 0.0);
        moves.Add({{"upstream", u.name}, {"state", BreakerStateName(st)}}, static_cast<double>(into[s]));
      }
    }
    out.push_back(state.Take());
    out.push_back(moves.Take());
  }
  out.push_back(PerReplica("inferd_upstream_replica_healthy", "1 while a replica passes its health checks.", gauge, ups,
                           [](const UpstreamReplicaStats& r) { return r.healthy ? 1 : 0; }));
  out.push_back(PerReplica("inferd_upstream_replica_outstanding_calls", "Calls in flight to a replica.", gauge, ups,
                           [](const UpstreamReplicaStats& r) { return r.outstanding; }));
  out.push_back(PerReplica("inferd_upstream_replica_calls_total", "Calls sent to a replica.", counter, ups,
                           [](const UpstreamReplicaStats& r) { return r.calls_total; }));
  out.push_back(PerReplica("inferd_upstream_replica_ejections_total",
                           "Times a replica was ejected after failing health checks.", counter, ups,
                           [](const UpstreamReplicaStats& r) { return r.ejections_total; }));
  return out;
}

}  // namespace inferd::metrics
