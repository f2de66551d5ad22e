// Plain stats of the edge tier (DESIGN.md section 6): the realtime response cache (cache/) and upstream
// daemons behind the circuit breaker (upstream/). Those modules fill them; metrics/ exports snapshots.
// Nothing here knows gRPC or Prometheus.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace inferd {

struct ResponseCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;       // includes expired entries
  uint64_t evictions = 0;    // removed to make room
  uint64_t expirations = 0;  // found past their TTL (and removed)
  uint64_t inserts = 0;
  int64_t bytes = 0;  // charged bytes held now
  int64_t entries = 0;
  int64_t max_bytes = 0;
};

enum class BreakerState : int32_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
inline constexpr int kNumBreakerStates = 3;
const char* BreakerStateName(BreakerState state);  // "closed" | "open" | "half_open"

struct BreakerStats {
  BreakerState state = BreakerState::kClosed;
  uint64_t opened_total = 0;       // transitions into open (from closed or from a failed probe)
  uint64_t half_opened_total = 0;  // transitions into half-open (each lets one probe through)
  uint64_t closed_total = 0;       // transitions from half-open back to closed
  uint64_t rejected_total = 0;     // calls refused without trying
};

struct UpstreamReplicaStats {
  std::string address;
  bool healthy = false;
  int64_t outstanding = 0;
  uint64_t calls_total = 0;
  uint64_t ejections_total = 0;
};

struct UpstreamStats {
  std::string name;
  BreakerStats breaker;
  uint64_t calls_total = 0;     // calls started (each retry counts once more)
  uint64_t failures_total = 0;  // calls that ended UNAVAILABLE
  uint64_t retries_total = 0;
  uint64_t no_replica_total = 0;  // refused because no replica was healthy
  std::vector<UpstreamReplicaStats> replicas;
};

}  // namespace inferd
