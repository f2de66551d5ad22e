// Builds prometheus::MetricFamily values: one family per name, series appended with their labels.
#pragma once

#include <prometheus/metric_family.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace inferd::metrics {

using Labels = std::initializer_list<std::pair<const char*, std::string>>;

class FamilyBuilder {
 public:
  FamilyBuilder(const char* name, const char* help, prometheus::MetricType type) : family_{name, help, type, {}} {}

  void Add(Labels labels, double value);  // counter or gauge
  void Add(Labels labels, prometheus::ClientMetric::Histogram histogram);
  prometheus::MetricFamily Take() { return std::move(family_); }

 private:
  prometheus::ClientMetric& New(Labels labels);
  prometheus::MetricFamily family_;
};

}  // namespace inferd::metrics
