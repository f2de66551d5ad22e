#include "metrics/edge_collector.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace inferd::metrics {
namespace {

using testing::Line;
using testing::Render;

ResponseCacheStats Cache() {
  ResponseCacheStats c;
  c.hits = 11;
  c.misses = 4;
  c.evictions = 2;
  c.expirations = 1;
  c.inserts = 5;
  c.bytes = 4096;
  c.entries = 3;
  c.max_bytes = 1 << 20;
  return c;
}

std::vector<UpstreamStats> Upstreams() {
  UpstreamStats u;
  u.name = "central";
  u.breaker.state = BreakerState::kOpen;
  u.breaker.opened_total = 2;
  u.breaker.half_opened_total = 1;
  u.breaker.closed_total = 1;
  u.breaker.rejected_total = 17;
  u.calls_total = 40;
  u.failures_total = 9;
  u.retries_total = 3;
  u.no_replica_total = 6;
  u.replicas = {{"10.0.0.1:50051", true, 2, 25, 0}, {"10.0.0.2:50051", false, 0, 15, 1}};
  return {u};
}

TEST(EdgeCollectorTest, ExportsCacheCountersAndGauges) {
  EdgeCollector c([] { return std::optional<ResponseCacheStats>(Cache()); },
                  [] { return std::vector<UpstreamStats>{}; });
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_response_cache_hits_total"), "inferd_response_cache_hits_total 11");
  EXPECT_EQ(Line(t, "inferd_response_cache_misses_total"), "inferd_response_cache_misses_total 4");
  EXPECT_EQ(Line(t, "inferd_response_cache_evictions_total"), "inferd_response_cache_evictions_total 2");
  EXPECT_EQ(Line(t, "inferd_response_cache_expirations_total"), "inferd_response_cache_expirations_total 1");
  EXPECT_EQ(Line(t, "inferd_response_cache_inserts_total"), "inferd_response_cache_inserts_total 5");
  EXPECT_EQ(Line(t, "inferd_response_cache_bytes"), "inferd_response_cache_bytes 4096");
  EXPECT_EQ(Line(t, "inferd_response_cache_entries"), "inferd_response_cache_entries 3");
  EXPECT_EQ(Line(t, "inferd_response_cache_max_bytes"), "inferd_response_cache_max_bytes 1048576");
  EXPECT_EQ(t.find("inferd_upstream_"), std::string::npos);
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

TEST(EdgeCollectorTest, NoCacheNoCacheSeries) {
  EdgeCollector c([] { return std::optional<ResponseCacheStats>(); }, Upstreams);
  const std::string t = Render(c);
  EXPECT_EQ(t.find("inferd_response_cache_"), std::string::npos);
  EXPECT_NE(t.find("inferd_upstream_calls_total"), std::string::npos);
}

TEST(EdgeCollectorTest, ExportsUpstreamBreakerAndReplicaSeries) {
  EdgeCollector c([] { return std::optional<ResponseCacheStats>(); }, Upstreams);
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_upstream_calls_total{upstream=\"central\"}"),
            "inferd_upstream_calls_total{upstream=\"central\"} 40");
  EXPECT_EQ(Line(t, "inferd_upstream_failures_total{upstream=\"central\"}"),
            "inferd_upstream_failures_total{upstream=\"central\"} 9");
  EXPECT_EQ(Line(t, "inferd_upstream_retries_total{upstream=\"central\"}"),
            "inferd_upstream_retries_total{upstream=\"central\"} 3");
  EXPECT_EQ(Line(t, "inferd_upstream_no_healthy_replica_total{upstream=\"central\"}"),
            "inferd_upstream_no_healthy_replica_total{upstream=\"central\"} 6");
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_rejected_total{upstream=\"central\"}"),
            "inferd_upstream_breaker_rejected_total{upstream=\"central\"} 17");
  EXPECT_EQ(Line(t, "inferd_upstream_replicas{upstream=\"central\"}"),
            "inferd_upstream_replicas{upstream=\"central\"} 2");
  EXPECT_EQ(Line(t, "inferd_upstream_healthy_replicas{upstream=\"central\"}"),
            "inferd_upstream_healthy_replicas{upstream=\"central\"} 1");
  // One state series is 1, the others 0.
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_state{upstream=\"central\",state=\"open\"}"),
            "inferd_upstream_breaker_state{upstream=\"central\",state=\"open\"} 1");
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_state{upstream=\"central\",state=\"closed\"}"),
            "inferd_upstream_breaker_state{upstream=\"central\",state=\"closed\"} 0");
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_state{upstream=\"central\",state=\"half_open\"}"),
            "inferd_upstream_breaker_state{upstream=\"central\",state=\"half_open\"} 0");
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"open\"}"),
            "inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"open\"} 2");
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"half_open\"}"),
            "inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"half_open\"} 1");
  EXPECT_EQ(Line(t, "inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"closed\"}"),
            "inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"closed\"} 1");
  EXPECT_EQ(Line(t, "inferd_upstream_replica_healthy{upstream=\"central\",replica=\"10.0.0.2:50051\"}"),
            "inferd_upstream_replica_healthy{upstream=\"central\",replica=\"10.0.0.2:50051\"} 0");
  EXPECT_EQ(Line(t, "inferd_upstream_replica_outstanding_calls{upstream=\"central\",replica=\"10.0.0.1:50051\"}"),
            "inferd_upstream_replica_outstanding_calls{upstream=\"central\",replica=\"10.0.0.1:50051\"} 2");
  EXPECT_EQ(Line(t, "inferd_upstream_replica_calls_total{upstream=\"central\",replica=\"10.0.0.2:50051\"}"),
            "inferd_upstream_replica_calls_total{upstream=\"central\",replica=\"10.0.0.2:50051\"} 15");
  EXPECT_EQ(Line(t, "inferd_upstream_replica_ejections_total{upstream=\"central\",replica=\"10.0.0.2:50051\"}"),
            "inferd_upstream_replica_ejections_total{upstream=\"central\",replica=\"10.0.0.2:50051\"} 1");
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

}  // namespace
}  // namespace inferd::metrics
