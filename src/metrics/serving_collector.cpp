#include "metrics/serving_collector.h"

#include <functional>
#include <limits>

#include "metrics/family_builder.h"

namespace inferd::metrics {
namespace {

using prometheus::MetricType;

std::string ClassLabel(size_t cls) {
  return cls < kNumRequestClasses ? RequestClassName(static_cast<RequestClass>(cls)) : "none";
}

prometheus::ClientMetric::Histogram QualityHistogram(const ModelBusinessStats& m) {
  prometheus::ClientMetric::Histogram h;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kQualityBucketBounds.size(); ++i) {
    cumulative += m.quality_buckets[i];
    h.bucket.push_back({cumulative, kQualityBucketBounds[i]});
  }
  h.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  h.sample_count = cumulative;
  h.sample_sum = m.quality_sum;
  return h;
}

}  // namespace

ServingCollector::ServingCollector(std::function<RpcStats()> rpc, std::function<BusinessStats()> business)
    : rpc_(std::move(rpc)), business_(std::move(business)) {}

std::vector<prometheus::MetricFamily> ServingCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  const RpcStats r = rpc_();
  {
    FamilyBuilder f("inferd_grpc_requests_total", "Inference RPCs by method and final gRPC status code.",
                    MetricType::Counter);
    for (size_t p = 0; p < r.rpcs.size(); ++p) {
      const std::string model = p < r.pool_names.size() ? r.pool_names[p] : "none";
      for (size_t c = 0; c < r.rpcs[p].size(); ++c) {
        for (size_t m = 0; m < kNumRpcMethods; ++m) {
          for (size_t code = 0; code < kNumGrpcCodes; ++code) {
            const uint64_t n = r.rpcs[p][c][m][code];
            const bool always = code == 0 && p < r.pool_names.size() && c < kNumRequestClasses;
            if (n == 0 && !always) continue;
            f.Add({{"model", model},
                   {"class", ClassLabel(c)},
                   {"method", RpcMethodName(static_cast<RpcMethod>(m))},
                   {"code", GrpcCodeName(static_cast<int>(code))}},
                  static_cast<double>(n));
          }
        }
      }
    }
    out.push_back(f.Take());
  }
  {
    FamilyBuilder f("inferd_classifications_total",
                    "Latency-class decisions of routed requests, by the rule that decided.", MetricType::Counter);
    for (size_t p = 0; p < r.classified.size() && p < r.pool_names.size(); ++p) {
      for (size_t rule = 0; rule < r.classified[p].size() && rule < r.rule_names.size(); ++rule) {
        for (size_t c = 0; c < kNumRequestClasses; ++c) {
          f.Add({{"model", r.pool_names[p]},
                 {"rule", r.rule_names[rule]},
                 {"class", ClassLabel(c)}},
                static_cast<double>(r.classified[p][rule][c]));
        }
      }
    }
    out.push_back(f.Take());
  }

  const BusinessStats b = business_();
  // Each business series once per (pool, class), or per (pool, class, variant) when variants are configured.
  auto each = [&](const std::function<void(Labels, const ModelBusinessStats&)>& add) {
    for (size_t p = 0; p < b.per_class.size() && p < b.pool_names.size(); ++p) {
      for (size_t c = 0; c < kNumRequestClasses; ++c) {
        if (b.variants.empty()) {
          add({{"model", b.pool_names[p]}, {"class", ClassLabel(c)}}, b.per_class[p][c]);
          continue;
        }
        for (size_t v = 0; v < b.per_variant.size() && v <= b.variants.size(); ++v) {
          add({{"model", b.pool_names[p]}, {"class", ClassLabel(c)}, {"variant", v == 0 ? "none" : b.variants[v - 1]}},
              b.per_variant[v][p][c]);
        }
      }
    }
  };
  auto counter = [&](const char* name, const char* help, uint64_t ModelBusinessStats::*field) {
    FamilyBuilder f(name, help, MetricType::Counter);
    each([&](Labels l, const ModelBusinessStats& m) { f.Add(l, static_cast<double>(m.*field)); });
    out.push_back(f.Take());
  };
  counter("inferd_recommendation_impressions_total", "Impressions reported by Feedback for served requests.",
          &ModelBusinessStats::impressions);
  counter("inferd_recommendation_clicks_total", "Clicks reported by Feedback for served requests.",
          &ModelBusinessStats::clicks);
  counter("inferd_recommendation_conversions_total", "Conversions reported by Feedback for served requests.",
          &ModelBusinessStats::conversions);
  {
    FamilyBuilder f("inferd_quality_score", "Quality scores (0..1) reported by Feedback for served requests.",
                    MetricType::Histogram);
    each([&](Labels l, const ModelBusinessStats& m) { f.Add(l, QualityHistogram(m)); });
    out.push_back(f.Take());
  }
  {
    FamilyBuilder f("inferd_feedback_unknown_request_total",
                    "Feedback events whose request_id is not among the recently served requests.", MetricType::Counter);
    f.Add({}, static_cast<double>(b.unknown_request_feedback));
    out.push_back(f.Take());
  }
  return out;
}

}  // namespace inferd::metrics
