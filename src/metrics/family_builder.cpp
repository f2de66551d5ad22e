#include "metrics/family_builder.h"

namespace inferd::metrics {

prometheus::ClientMetric& FamilyBuilder::New(Labels labels) {
  prometheus::ClientMetric& m = family_.metric.emplace_back();
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}

void FamilyBuilder::Add(Labels labels, double value) {
  prometheus::ClientMetric& m = New(labels);
  if (family_.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

void FamilyBuilder::Add(Labels labels, prometheus::ClientMetric::Histogram histogram) {
  New(labels).histogram = std::move(histogram);
}

}  // namespace inferd::metrics
